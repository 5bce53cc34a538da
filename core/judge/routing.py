"""A measured judge pre-screens a pair set, so expert minutes go where the judge is unsure.

The rule, in one place. A lead lets one judge run over the pair set route its pairs, once the
same judge (its variant and prompt version) has been measured against experts on at least
`MIN_CALIBRATION_PAIRS` voted pairs (of any pair set):
- a pair the judge answered the same way in both orders, for one side, with no response that
  addresses the judge, is **judged**: it leaves the experts' queues, unless the judge's backend
  gave its probabilities and the one of that side is below `min_probability` (default
  `calibration.SURE`, 0.6);
- every other pair (inconsistent, a tie, unreadable, flagged, unsure) goes to the experts **first**;
- a random `audit_share` of the judged pairs (default 20%, seeded) stays with the experts as
  **audit** pairs, in their usual place, so the judge stays measured exactly where it is trusted
  (`summary` reports its agreement on the audited pairs that have votes);
- gold pairs are never routed: they check raters.
Expert votes and judge verdicts stay apart: the expert results count votes only. A combined win
rate (experts' votes where they voted, the judge's verdict on judged pairs) is offered only when
the lower bound of the judge's measured agreement reaches the lead's threshold
(`review.judge_combine_min_agreement`, 0 = never), and it is labelled as such.
"""

from __future__ import annotations

import json

import numpy as np

from core import audit
from core.auth import Action, User, require
from core.errors import InvalidInput, NotFound
from core.judge import calibration, judges
from core.store import Store, insert_rows

MIN_CALIBRATION_PAIRS = calibration.MIN_ALIGNMENT_PAIRS
ROUTES = ("judged", "experts_first", "audit")


def _run_source(store: Store, set_id: str) -> dict:
    row = store.row("""SELECT g.source, j.status FROM generation_sets g JOIN jobs j ON j.job_id = g.set_id
                       WHERE g.set_id = ?""", [set_id])
    source = json.loads(row["source"]) if row else {}
    if source.get("kind") != "judge":
        raise NotFound(f"No judge run {set_id!r}; see `tuneboard judge runs`.")
    if row["status"] != "succeeded":
        raise InvalidInput(f"{set_id} is {row['status']}: route with a finished judge run.")
    return source


def best_calibration(store: Store, actor: User, judge_id: str, level: float = 0.95) -> dict | None:
    """The judge's measurement on the most expert-voted pairs among its finished runs (any pair set)."""
    best = None
    for r in judges.runs(store, actor):
        if r["status"] != "succeeded" or r["source"]["judge_id"] != judge_id:
            continue
        rep = judges.against_experts(store, actor, r["set_id"], level)
        if best is None or rep["pairs_with_experts"] > best["pairs_with_experts"]:
            best = {**rep, "run": r["set_id"]}
    return best


def route(store: Store, actor: User, pair_set_id: str, set_id: str, audit_share: float = 0.2, seed: int = 0,
          min_probability: float = calibration.SURE) -> dict:
    """Route a pair set's pairs by a finished judge run over it (the module's rule); replaces an earlier
    routing. Returns the counts per route and the calibration that allowed it."""
    require(actor, Action.REVIEW_MANAGE)
    if not 0.0 <= audit_share <= 1.0:
        raise InvalidInput("audit_share: a share between 0 and 1 (0.2 sends a fifth of the judged pairs to experts)")
    if not 0.0 <= min_probability <= 1.0:
        raise InvalidInput("min_probability: a probability between 0 and 1 (0.6: the judge gives its side at least "
                           "60%; 0 ignores its probabilities)")
    source = _run_source(store, set_id)
    if source["pair_set_id"] != pair_set_id:
        raise InvalidInput(f"{set_id} judged {source['pair_set_id']}, not {pair_set_id}.")
    measured = best_calibration(store, actor, source["judge_id"])
    voted = measured["pairs_with_experts"] if measured else 0
    if voted < MIN_CALIBRATION_PAIRS:
        raise InvalidInput(f"judge {source['judge']} is measured on {voted} expert-voted pairs; it needs "
                           f"{MIN_CALIBRATION_PAIRS} before it may pre-screen (let experts rate more pairs of a set "
                           "it judged).")
    judged = judges.verdicts(store, actor, set_id)
    gold = {r["pair_id"] for r in store.rows("SELECT pair_id FROM pairs WHERE pair_set_id = ? AND a LIKE 'gold:%'",
                                             [pair_set_id])}
    judged = judged[~judged["pair_id"].isin(gold)]
    side = np.where(judged["verdict"] == "a", judged["p_a"], judged["p_b"]).astype(float)  # NaN: not given
    sure = judged["verdict"].isin(["a", "b"]) & ~judged["flagged"] & ~(side < min_probability)
    routes = np.where(sure, "judged", "experts_first").astype(object)
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(sure.to_numpy())
    audited = rng.choice(candidates, size=int(round(audit_share * len(candidates))), replace=False) \
        if len(candidates) else np.array([], int)
    routes[audited] = "audit"
    rows = [[pair_set_id, int(p), r, set_id, v] for p, r, v in zip(judged["pair_id"], routes, judged["verdict"])]
    with store.transaction() as cur:
        cur.execute("DELETE FROM pair_routes WHERE pair_set_id = ?", [pair_set_id])
        insert_rows(cur, "pair_routes", ["pair_set_id", "pair_id", "route", "judge_run", "verdict"], rows)
        cur.execute("UPDATE pair_sets SET assign_version = assign_version + 1 WHERE pair_set_id = ?", [pair_set_id])
        counts = {k: int((routes == k).sum()) for k in ROUTES}
        audit.record(cur, actor, "review.route", pair_set_id, {"judge_run": set_id, "audit_share": audit_share,
                                                               "seed": seed, "min_probability": min_probability,
                                                               **counts})
    return {"pair_set_id": pair_set_id, "judge_run": set_id, "counts": counts,
            "calibration": {k: measured[k] for k in ("run", "pairs_with_experts", "agreement")}}


def clear(store: Store, actor: User, pair_set_id: str) -> None:
    """Every pair back to the experts."""
    require(actor, Action.REVIEW_MANAGE)
    with store.transaction() as cur:
        cur.execute("DELETE FROM pair_routes WHERE pair_set_id = ?", [pair_set_id])
        cur.execute("UPDATE pair_sets SET assign_version = assign_version + 1 WHERE pair_set_id = ?", [pair_set_id])
        audit.record(cur, actor, "review.route.clear", pair_set_id)


def summary(store: Store, actor: User, pair_set_id: str, level: float = 0.95) -> dict | None:
    """How the pair set is routed, and the judge's agreement with the experts on the audited pairs that
    have votes (None when the set is not routed)."""
    require(actor, Action.REVIEW_RESULTS)
    routes = store.df("SELECT pair_id, route, judge_run, verdict FROM pair_routes WHERE pair_set_id = ?",
                      [pair_set_id])
    if routes.empty:
        return None
    run = routes["judge_run"].iloc[0]
    votes = judges._votes(store, pair_set_id)
    audited = judges.verdicts(store, actor, run)
    audited = audited[audited["pair_id"].isin(routes.loc[routes["route"] == "audit", "pair_id"])]
    on_audit = calibration.calibrate(audited, votes, level=level, rounds=500) if len(audited) else None
    return {"judge_run": run, "counts": {k: int((routes["route"] == k).sum()) for k in ROUTES},
            "audit_agreement": on_audit["agreement"] if on_audit else None,
            "audited_with_votes": on_audit["pairs_with_experts"] if on_audit else 0}


def combined(store: Store, actor: User, pair_set_id: str, threshold: float, level: float = 0.95) -> list[dict] | None:
    """Per comparison, a's win rate over pairs with the experts' score where they voted and the judge's
    verdict on judged pairs they did not: only when the routing judge's measured agreement has its lower
    bound at or above `threshold` (> 0); None otherwise. Labelled "experts + judge" wherever shown."""
    from core.review.stats import prompt_rate

    require(actor, Action.REVIEW_RESULTS)
    if threshold <= 0:
        return None
    routes = store.df("SELECT pair_id, route, judge_run, verdict FROM pair_routes WHERE pair_set_id = ?",
                      [pair_set_id])
    if routes.empty:
        return None
    source = _run_source(store, routes["judge_run"].iloc[0])
    measured = best_calibration(store, actor, source["judge_id"], level)
    lower = (measured or {}).get("agreement", {}).get("ties_in", {}).get("lo")
    if lower is None or not lower == lower or lower < threshold:
        return None
    votes = judges._votes(store, pair_set_id)
    experts = votes.assign(score=votes["outcome"].map(calibration.SCORE)).groupby("pair_id")["score"].mean()
    judge_score = routes[routes["route"] == "judged"].set_index("pair_id")["verdict"].map({"a": 1.0, "b": 0.0})
    sides = store.df("SELECT pair_id, a, b FROM pairs WHERE pair_set_id = ? AND NOT withdrawn AND a NOT LIKE 'gold:%'",
                     [pair_set_id])
    sides["score"] = sides["pair_id"].map(experts).fillna(sides["pair_id"].map(judge_score))
    sides["by"] = np.where(sides["pair_id"].isin(experts.index), "experts",
                           np.where(sides["score"].notna(), "judge", None))
    out = []
    for (a, b), g in sides.dropna(subset=["score"]).groupby(["a", "b"]):
        rate = prompt_rate(g["score"].to_numpy(float), level)
        out.append({"a": a, "b": b, "pairs": int(len(g)), "by_experts": int((g["by"] == "experts").sum()),
                    "by_judge": int((g["by"] == "judge").sum()), "rate": rate.rate, "lo": rate.lo, "hi": rate.hi,
                    "significant": rate.significant, "label": "experts + judge (combined)"})
    return out

