"""How far an LLM judge can be trusted, measured against the team's own experts on the same pairs.

The unit is the pair (one prompt's two responses, `a` and `b`); every interval resamples or
counts pairs, never single judge calls or votes.

- **The judge's verdict** on a pair comes from judging it in both orders (a shown first, then b
  shown first): the verdict when both orders agree, "inconsistent" when they disagree, None when
  either output could not be read. For agreement, an inconsistent pair counts as a tie (as
  MT-Bench counts it: the judge could not tell them apart).
- **The experts' verdict** on a pair is their mean score for `a` (a win 1, a tie or "both bad"
  0.5, a loss 0) against 0.5: above is "a", below is "b", exactly 0.5 is "tie".
- **Agreement** is the share of pairs where the two verdicts are equal, with ties (ties in), and
  on the pairs where neither is a tie (ties out); Agresti-Coull intervals (one 0/1 per pair).
  **Cohen's kappa** over a / b / tie, with a percentile bootstrap interval over pairs.
- **Order consistency**: the share of pairs (both orders read) whose two orders agree.
- **Position bias**: among single-order verdicts that pick a side, the share that picks the
  response shown first (0.5: none), with a bootstrap interval over pairs.
- **The human ceiling**: each expert against the mean of the *other* experts on the same pair
  (two others who split make a tie), averaged over a pair's experts, then over pairs (bootstrap-t
  interval); the judge's agreement is reported again on exactly those pairs beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from core.metrics.uncertainty import Estimate, binary_mean, bootstrap_statistic, studentized_mean
from core.review.stats import cohen_kappa

VERDICTS = ("a", "b", "tie")
SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}


def verdict_of(score: float) -> str:
    """A mean score for `a` as a verdict (exact halves are ties: the others split)."""
    return "a" if score > 0.5 + 1e-12 else "b" if score < 0.5 - 1e-12 else "tie"


def combine(a_first: str | None, b_first: str | None) -> str | None:
    """The judge's verdict on a pair from its two orders (each already in terms of a / b)."""
    if a_first is None or b_first is None:
        return None
    return a_first if a_first == b_first else "inconsistent"


def _share(flags: Sequence[bool], level: float) -> dict:
    return asdict(binary_mean(np.asarray(flags, float), level)) if len(flags) else \
        {"value": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}


def _estimate(e: Estimate) -> dict:
    return asdict(e)


def expert_verdicts(votes: pd.DataFrame) -> pd.Series:
    """pair_id -> the experts' verdict (votes: pair_id, rater, outcome)."""
    if votes.empty:
        return pd.Series(dtype=object)
    scores = votes.assign(score=votes["outcome"].map(SCORE)).groupby("pair_id")["score"].mean()
    return scores.map(verdict_of)


def human_ceiling(votes: pd.DataFrame) -> pd.DataFrame:
    """Per pair with at least two experts: the share of its experts who agree with the mean of the
    others (`ties_in`), and the same over experts where neither side is a tie (`ties_out`, NaN when
    none)."""
    rows = []
    for pair_id, g in votes.assign(score=votes["outcome"].map(SCORE)).groupby("pair_id"):
        if len(g) < 2:
            continue
        s = g["score"].to_numpy()
        others = (s.sum() - s) / (len(s) - 1)
        own = [verdict_of(x) for x in s]
        theirs = [verdict_of(x) for x in others]
        agree = [o == t for o, t in zip(own, theirs)]
        decided = [o != "tie" and t != "tie" for o, t in zip(own, theirs)]
        out = [a for a, d in zip(agree, decided) if d]
        rows.append({"pair_id": pair_id, "ties_in": float(np.mean(agree)),
                     "ties_out": float(np.mean(out)) if out else float("nan")})
    return pd.DataFrame(rows, columns=["pair_id", "ties_in", "ties_out"])


def _agreement(frame: pd.DataFrame, level: float) -> dict:
    judged = frame["judge"].replace({"inconsistent": "tie"})
    same = (judged == frame["expert"]).tolist()
    decided = (judged != "tie") & (frame["expert"] != "tie")
    return {"ties_in": _share(same, level), "ties_out": _share([s for s, d in zip(same, decided) if d], level)}


def _kappa(frame: pd.DataFrame, level: float, rounds: int, seed: int) -> dict:
    judged = frame["judge"].replace({"inconsistent": "tie"}).to_numpy(object)
    expert = frame["expert"].to_numpy(object)
    n = len(judged)
    if n < 2:
        return {"value": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": n}
    est = bootstrap_statistic(n, lambda idx: cohen_kappa(list(expert[idx]), list(judged[idx])), rounds=rounds,
                              level=level, seed=seed)
    return {"value": est.value, "lo": est.lo, "hi": est.hi, "n": n}


def position_bias(a_first: Sequence[str | None], b_first: Sequence[str | None], level: float = 0.95,
                  rounds: int = 2000, seed: int = 0) -> dict:
    """The share of decisive single-order verdicts that pick the response shown first, resampling pairs."""
    picks = np.array([[v == "a" for v in a_first], [v == "b" for v in b_first]], float).T  # picked the first
    decisive = np.array([[v in ("a", "b") for v in a_first], [v in ("a", "b") for v in b_first]], float).T
    keep = decisive.sum(axis=1) > 0
    picks, decisive = picks[keep].sum(axis=1), decisive[keep].sum(axis=1)
    n = int(keep.sum())
    if n == 0:
        return {"value": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    est = bootstrap_statistic(n, lambda idx: picks[idx].sum() / decisive[idx].sum(), rounds=rounds, level=level,
                              seed=seed)
    return {"value": est.value, "lo": est.lo, "hi": est.hi, "n": n}


def calibrate(judged: pd.DataFrame, votes: pd.DataFrame, level: float = 0.95, rounds: int = 2000,
              seed: int = 0) -> dict:
    """The judge against the experts.

    `judged`: one row per pair: pair_id, a_first and b_first (the verdict of each order in terms of
    a / b / tie, None when unreadable), optionally `flagged` (a response tried to instruct the judge)
    and `tag` (the dataset's tag or category). `votes`: pair_id, rater, outcome (a / b / tie /
    both_bad). Returns plain figures, each with its interval and the number of pairs it rests on.
    """
    judged = judged.copy()
    if "flagged" not in judged:
        judged["flagged"] = False
    if "tag" not in judged:
        judged["tag"] = None
    judged["judge"] = [combine(x, y) for x, y in zip(judged["a_first"], judged["b_first"])]
    read = judged[judged["judge"].notna()]
    experts = expert_verdicts(votes)
    both = read.assign(expert=read["pair_id"].map(experts)).dropna(subset=["expert"])
    ceiling = human_ceiling(votes)
    on_ceiling = both[both["pair_id"].isin(ceiling["pair_id"])]
    table = pd.crosstab(pd.Categorical(both["expert"], VERDICTS),
                        pd.Categorical(both["judge"], VERDICTS + ("inconsistent",)), dropna=False)
    out = {
        "pairs_judged": int(len(judged)),
        "unreadable": int(judged["judge"].isna().sum()),
        "pairs_with_experts": int(len(both)),
        "order_consistency": _share((read["judge"] != "inconsistent").tolist(), level),
        "position_bias": position_bias(judged["a_first"].tolist(), judged["b_first"].tolist(), level, rounds, seed),
        "agreement": _agreement(both, level),
        "kappa": _kappa(both, level, rounds, seed),
        "confusion": {e: {j: int(table.loc[e, j]) for j in table.columns} for e in table.index},
        "human": {
            "pairs": int(len(ceiling)),
            "ties_in": _estimate(studentized_mean(ceiling["ties_in"].to_numpy(float), rounds, level, seed))
            if len(ceiling) > 1 else None,
            "ties_out": _estimate(studentized_mean(ceiling["ties_out"].to_numpy(float), rounds, level, seed))
            if ceiling["ties_out"].notna().sum() > 1 else None,
            "judge_on_same_pairs": _agreement(on_ceiling, level),
        },
        "flagged": {"pairs": int(both["flagged"].sum()), **_agreement(both[both["flagged"]], level)},
        "unflagged": {"pairs": int((~both["flagged"]).sum()), **_agreement(both[~both["flagged"]], level)},
        "by_tag": {str(tag): {"pairs": int(len(g)), **_agreement(g, level)}
                   for tag, g in both.groupby("tag") if tag is not None},
    }
    return out


MIN_ALIGNMENT_PAIRS = 50


def compare_prompts(judged: dict[str, pd.DataFrame], votes: pd.DataFrame, level: float = 0.95, seed: int = 0,
                    min_pairs: int = MIN_ALIGNMENT_PAIRS) -> dict:
    """Which judge prompt to use, chosen without grading it on the figures reported.

    `judged`: prompt (or run) name -> its `judged` frame over the same pair set. The pairs with
    expert votes are split at random (seeded) into a calibration half and a report half; the prompt
    with the highest agreement (ties in) on the calibration half is chosen, and every prompt's
    agreement on the report half is reported, the chosen one marked. With fewer than `min_pairs`
    voted pairs nothing is chosen and `needed` says how many more votes-bearing pairs it takes."""
    voted = sorted(set(expert_verdicts(votes).index))
    if len(voted) < min_pairs:
        return {"chosen": None, "voted_pairs": len(voted), "needed": min_pairs - len(voted), "prompts": {}}
    rng = np.random.default_rng(seed)
    order = rng.permutation(voted)
    half = len(order) // 2
    calibration_half, report_half = set(order[:half].tolist()), set(order[half:].tolist())
    out: dict[str, dict] = {}
    for name, frame in judged.items():
        on_cal = calibrate(frame[frame["pair_id"].isin(calibration_half)], votes, level=level, rounds=200)
        on_rep = calibrate(frame[frame["pair_id"].isin(report_half)], votes, level=level, rounds=500, seed=seed)
        out[name] = {"calibration": on_cal["agreement"]["ties_in"], "report": on_rep["agreement"],
                     "kappa": on_rep["kappa"], "order_consistency": on_rep["order_consistency"]}
    chosen = max(out, key=lambda n: (np.nan_to_num(out[n]["calibration"]["value"], nan=-1.0), n))
    return {"chosen": chosen, "voted_pairs": len(voted), "needed": 0, "calibration_pairs": half,
            "report_pairs": len(order) - half, "prompts": out}
