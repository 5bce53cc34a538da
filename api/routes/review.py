"""Pair sets (leads and engineers; core checks the role): make one from a generation set with
its plan figure, list and show them, assign raters, watch progress per rater, read the results
(win rates with intervals, the verdict in sentences, the Bradley-Terry ladder, agreement, rater
quality) and export them.

Results are the stored ones (core.review.results): a GET computes and stores a new result only
when the votes, exclusions or pairs changed since the newest, as the Results page does;
`refresh=false` serves the newest stored result as it is, without that check.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from api.auth import caller, the_owner
from api.fields import described
from core.auth import User
from core.fields import about
from core.owner import Owner
from core.review import pairs, results, stats
from core.review.pairs import PairSetSpec

router = APIRouter(prefix="/pair-sets", tags=["review"])


# ---- bodies and answers ----------------------------------------------------------------------
class PairSetRequest(BaseModel):
    name: str = Field("", max_length=120, description="Shown to raters; must not name a model or run.")
    generation_set_id: str = Field(max_length=200, description="The generation set whose outputs are paired.")
    variants: list[str] = Field(description="Variant ids of the generation set to compare (two or more).")
    design: Literal["baseline", "all-pairs"] = described(PairSetSpec, "design")
    baseline: str = Field("base", description="The variant the others are compared with (design baseline).")
    raters: list[str] = Field(default_factory=list, description="Rater accounts to assign now (optional).")
    raters_per_pair: int | None = described(PairSetSpec, "raters_per_pair", None, "Default: review.raters_per_pair.")
    gold_rate: float | None = described(PairSetSpec, "gold_rate", None, "Default: review.gold_rate.")
    seed: int = Field(0, ge=0, description="Seeds the left/right coin flips and the assignment.")
    instructions: str = Field("", max_length=4000, description=about(PairSetSpec, "instructions").help)
    max_prompts: int = described(PairSetSpec, "max_prompts")

    def spec(self, owner: Owner) -> PairSetSpec:
        review = owner.settings.review
        return PairSetSpec(name=self.name, generation_set_id=self.generation_set_id, variants=list(self.variants),
                           design=self.design, baseline=self.baseline, raters=list(self.raters),
                           raters_per_pair=review.raters_per_pair if self.raters_per_pair is None
                           else self.raters_per_pair,
                           gold_rate=review.gold_rate if self.gold_rate is None else self.gold_rate,
                           seed=self.seed, instructions=self.instructions, max_prompts=self.max_prompts)


class Plan(BaseModel):
    sentence: str = Field(description="What the set can detect, in words.")
    prompts: int
    raters_per_prompt: int
    icc: float = Field(description="The intra-class correlation assumed (or measured once votes exist).")
    design_effect: float
    effective_votes: float
    detectable_rate: float = Field(description="The smallest win rate above 50% found with 80% power.")


class Created(BaseModel):
    pair_set_id: str
    plan: Plan | None = Field(None, description="What the set can detect (None with fewer than two variants).")


class Assign(BaseModel):
    raters: list[str] = Field(description="Rater accounts who rate this set (replaces the list; votes are kept).")
    raters_per_pair: int | None = Field(None, description="Raters per pair (default: the set's).")


class Assigned(BaseModel):
    added: dict[str, int] = Field(description="New pairs per rater.")


class Progress(BaseModel):
    rater: str
    assigned: int
    voted: int
    skipped: int
    last_vote: datetime | None


class Results(BaseModel):
    pair_set_id: str
    result_id: str | None = Field(description="The stored result shown (None while the set has no votes).")
    computed_at: datetime | None
    n_votes: int = Field(description="Votes counted, gold pairs included (excluded raters left out).")
    ballots: int = Field(description="Votes on the compared pairs (the rest are on gold pairs and judge raters).")
    n_prompts: int | None = Field(description="Prompts: the unit of analysis.")
    excluded: list[str] = Field(description="Raters left out of every statistic.")
    verdict: list[str] = Field(description="The result in sentences; each word follows from its interval.")
    plan: Plan | None
    comparisons: list[dict[str, Any]] = Field(description="Per comparison: the first variant's win rate over "
                                              "prompts (rate, lo, hi), n, significant, p and robustness.")
    ladder: list[dict[str, Any]] = Field(description="Bradley-Terry ratings with intervals and rank ranges.")
    agreement: list[dict[str, Any]] = Field(description="Cohen's kappa per pair of raters.")
    raters: list[dict[str, Any]] = Field(description="Per rater: votes, gold accuracy, speed and flags.")
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    icc: float | None
    position_bias: dict[str, Any]
    leader: dict[str, Any]
    settings: dict[str, Any] = Field(description="What the result was computed with (intervals, rounds, method).")
    rules: list[str] = Field(description="How to read the figures (the unit, ties).")


def _plan(plan: stats.Plan | None) -> Plan | None:
    if plan is None:
        return None
    return Plan(sentence=plan.sentence(), prompts=plan.prompts, raters_per_prompt=plan.raters_per_prompt,
                icc=plan.icc, design_effect=plan.design_effect, effective_votes=plan.effective_votes,
                detectable_rate=plan.detectable_rate)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON records (NaN as null, numpy values as plain ones)."""
    return json.loads(frame.to_json(orient="records", date_format="iso")) if len(frame) else []


# ---- routes ----------------------------------------------------------------------------------
@router.get("", summary="Pair sets with their pairs, gold pairs, assignments and votes")
def list_pair_sets(user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> list[dict[str, Any]]:
    return pairs.list_pair_sets(owner.store, user)


@router.post("/plan", response_model=Plan | None,
             summary="What a pair set would detect, before it is made (null with fewer than two variants)")
def plan_pair_set(body: PairSetRequest, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return _plan(pairs.plan_pair_set(owner.store, user, body.spec(owner)))


@router.post("", response_model=Created, status_code=201,
             summary="Make a blind pair set from a generation set (and assign raters)")
def create_pair_set(body: PairSetRequest, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Created:
    spec = body.spec(owner)
    pair_set_id = pairs.create_pair_set(owner.store, user, spec)
    return Created(pair_set_id=pair_set_id, plan=_plan(pairs.plan_pair_set(owner.store, user, spec)))


@router.get("/{pair_set_id}", summary="One pair set: its variants, comparisons, design and settings")
def show_pair_set(pair_set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> dict[str, Any]:
    return pairs.get_pair_set(owner.store, user, pair_set_id)


@router.put("/{pair_set_id}/raters", response_model=Assigned,
            summary="(Re)assign the set to these raters; votes already cast are kept")
def assign_raters(pair_set_id: str, body: Assign, user: User = Depends(caller),
                  owner: Owner = Depends(the_owner)) -> Assigned:
    return Assigned(added=pairs.assign_raters(owner.store, user, pair_set_id, body.raters, body.raters_per_pair))


@router.get("/{pair_set_id}/progress", response_model=list[Progress],
            summary="Per rater: pairs assigned, voted and skipped, and the latest vote")
def progress(pair_set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> list[Progress]:
    pairs.get_pair_set(owner.store, user, pair_set_id)  # an unknown set is a 404, not an empty list
    return [Progress(**r) for r in pairs.progress(owner.store, user, pair_set_id)]


@router.get("/{pair_set_id}/results", response_model=Results,
            summary="Win rates with intervals, the verdict, the Bradley-Terry ladder and agreement")
def results_of(pair_set_id: str,
               refresh: bool = Query(True, description="Compute and store a new result first when the votes, "
                                     "exclusions or pairs changed since the newest (as the Results page does); "
                                     "false: the newest stored result as it is."),
               user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Results:
    review = owner.settings.review
    pairs.get_pair_set(owner.store, user, pair_set_id)
    res = results.latest(owner.store, user, pair_set_id, review, refresh=refresh)
    rules = [stats.UNIT_RULE, stats.TIE_RULE]
    if res is None:
        return Results(pair_set_id=pair_set_id, result_id=None, computed_at=None, n_votes=0, ballots=0,
                       n_prompts=None, excluded=[], verdict=[],
                       plan=_plan(results.plan_now(owner.store, user, pair_set_id, None, review)), comparisons=[],
                       ladder=[], agreement=[], raters=[], fleiss_kappa=None, krippendorff_alpha=None, icc=None,
                       position_bias={}, leader={}, settings={}, rules=rules)
    comparisons = _records(res.comparisons)
    for c in comparisons:
        c["units"] = results.units(c)
    return Results(pair_set_id=pair_set_id, result_id=res.result_id, computed_at=res.computed_at,
                   n_votes=res.n_votes, ballots=int(res.comparisons["n"].sum()) if len(res.comparisons) else 0,
                   n_prompts=res.n_prompts, excluded=res.excluded, verdict=results.verdict(res),
                   plan=_plan(results.plan_now(owner.store, user, pair_set_id, res, review)),
                   comparisons=comparisons, ladder=_records(res.ladder), agreement=_records(res.agreement),
                   raters=_records(res.raters), fleiss_kappa=res.fleiss_kappa,
                   krippendorff_alpha=res.krippendorff_alpha, icc=res.icc, position_bias=res.position_bias,
                   leader=res.leader, settings=res.settings, rules=rules)


@router.get("/{pair_set_id}/export", summary="A results table (or every vote) as CSV, JSON or Parquet, or the "
            "HTML report", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/json": {}, "text/html": {},
                                         "application/vnd.apache.parquet": {}},
                             "description": "The file, with its name in Content-Disposition."}})
def export(pair_set_id: str,
           format: Literal["csv", "json", "parquet", "html"] = Query("csv", description="The file's format; html "
                                                                      "is the whole report."),
           table: Literal["comparisons", "ladder", "agreement", "raters", "votes"] = Query(
               "comparisons", description="Which table (csv, json, parquet); votes: every vote with the model "
               "names (leads only)."),
           user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Response:
    pairs.get_pair_set(owner.store, user, pair_set_id)
    data, name, mime = results.export(owner.store, user, pair_set_id, owner.settings.review, format, table)
    return Response(data, media_type=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'})
