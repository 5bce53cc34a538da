"""LLM judges (core.judge): define one from a variant and a pairwise prompt, run it over a pair set
(every pair in both orders, as a job), read its verdicts and how it agrees with the experts, and
compare prompts on a pair set. The same core calls as `tuneboard judge ...`; core checks the role
(engineers define and run judges; leads and engineers read them; raters never see a verdict)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.auth import caller, the_owner
from api.plain import plain
from core.auth import User
from core.judge import judges, prompts, routing
from core.owner import Owner

router = APIRouter(prefix="/judges", tags=["judges"])


class JudgeRequest(BaseModel):
    name: str = Field(max_length=120, description="The judge's name (unique).")
    variant_id: str = Field(max_length=200, description="What answers: base, adapter:RUN, external:NAME, ... "
                            "(GET /variants).")
    prompt: str = Field("balanced", max_length=40, description="A built-in prompt (GET /judges/prompts), or the "
                        "name of your own when template is given.")
    system: str = Field("", max_length=8000, description="Your own prompt's system message.")
    template: str = Field("", max_length=16000, description="Your own prompt: {instructions}, {conversation}, "
                          "{first}, {second}, asking for a last line 'Verdict: 1', 'Verdict: 2' or 'Verdict: tie'.")


class RouteRequest(BaseModel):
    set_id: str = Field(max_length=200, description="A finished judge run over this pair set.")
    audit_share: float = Field(0.2, ge=0.0, le=1.0, description="Share of the judged pairs that stay with experts.")
    seed: int = Field(0, ge=0, description="Seeds which judged pairs are audited.")
    min_probability: float = Field(0.6, ge=0.0, le=1.0, description="Where the judge's backend gives probabilities, "
                                   "a pair whose verdict side has less goes to the experts first (0: ignore them).")


class RunRequest(BaseModel):
    pair_set_id: str = Field(max_length=200, description="The pair set whose pairs are judged.")
    path: str = Field("auto", max_length=40, description="Serving path (as for generation sets).")


@router.get("/prompts", summary="The built-in pairwise prompts with their versions")
def built_in_prompts(user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> list[dict[str, str]]:
    judges.list_judges(owner.store, user)  # (the role check: who may read judges)
    return [{"name": p.name, "version": p.version, "system": p.system, "template": p.template}
            for p in prompts.BUILT_IN.values()]


@router.get("", summary="Judges: their variant, prompt and prompt version")
def list_judges(user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> list[dict[str, Any]]:
    return judges.list_judges(owner.store, user)


@router.post("", status_code=201, summary="Define a judge")
def define_judge(body: JudgeRequest, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> dict:
    judge_id = judges.define_judge(owner.store, user, body.name, body.variant_id, body.prompt, body.system,
                                   body.template)
    return {"judge_id": judge_id}


@router.post("/{judge_id}/runs", status_code=201,
             summary="Judge every pair of a pair set in both orders (a job: follow GET /jobs/{set_id}/events)")
def run_judge(judge_id: str, body: RunRequest, user: User = Depends(caller),
              owner: Owner = Depends(the_owner)) -> dict:
    set_id = judges.run_judge(owner.store, owner.jobs, owner.settings, user, judge_id, body.pair_set_id, body.path)
    return {"set_id": set_id, "status": owner.jobs.get(set_id)["status"]}


@router.get("/runs", summary="Judge runs, newest first")
def judge_runs(pair_set_id: str | None = Query(None, description="Only the runs over this pair set."),
               user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> list[dict[str, Any]]:
    return judges.runs(owner.store, user, pair_set_id)


@router.get("/runs/{set_id}/verdicts", summary="Per pair: each order's verdict, the combined one, the raw "
            "outputs, the words of a response that address the judge, the prompt's tag, and the judge's "
            "probability of a, b and a tie where its backend gives logprobs")
def verdicts(set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> list[dict[str, Any]]:
    return plain(judges.verdicts(owner.store, user, set_id).to_dict(orient="records"))


@router.get("/runs/{set_id}/calibration", summary="The judge against the experts: agreement, kappa, confusion, "
            "order consistency, position bias and the human ceiling, with intervals")
def calibration(set_id: str, level: float = Query(0.95, gt=0.5, lt=1.0, description="Confidence level."),
                user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> dict[str, Any]:
    return plain(judges.against_experts(owner.store, user, set_id, level))


@router.get("/runs/{set_id}/comparisons", summary="The judge's own win rates per comparison (apart from the "
            "experts'), with intervals")
def comparisons(set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> list[dict[str, Any]]:
    return plain(judges.comparisons(owner.store, user, set_id))


@router.get("/alignment/{pair_set_id}", summary="The judges run on a pair set compared: chosen on half the voted "
            "pairs, reported on the other half")
def alignment(pair_set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> dict[str, Any]:
    return plain(judges.alignment(owner.store, user, pair_set_id))



@router.put("/routing/{pair_set_id}", summary="Let a measured judge pre-screen a pair set (leads, engineers): "
            "judged pairs leave the experts' queues, unsure ones come first, an audit share stays")
def route(pair_set_id: str, body: RouteRequest, user: User = Depends(caller),
          owner: Owner = Depends(the_owner)) -> dict[str, Any]:
    return plain(routing.route(owner.store, user, pair_set_id, body.set_id, body.audit_share, body.seed,
                                body.min_probability))


@router.get("/routing/{pair_set_id}", summary="How a pair set is routed, the judge's agreement on the audited "
            "pairs, and the combined win rate where the lead's threshold allows it (null otherwise)")
def routing_of(pair_set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> dict[str, Any]:
    threshold = owner.settings.review.judge_combine_min_agreement
    return plain({"routing": routing.summary(owner.store, user, pair_set_id),
                  "combined": routing.combined(owner.store, user, pair_set_id, threshold)})


@router.delete("/routing/{pair_set_id}", summary="Every pair back to the experts")
def clear_routing(pair_set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> dict:
    routing.clear(owner.store, user, pair_set_id)
    return {"pair_set_id": pair_set_id, "routed": False}
