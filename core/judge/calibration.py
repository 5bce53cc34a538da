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
- **By probability**, where the judge's backend gave its probability of each side (`p_a`, `p_b`):
  agreement on the pairs it is *sure* of (a side in both orders, given at least `SURE` on average
  over the orders: the pairs routing would take from the experts) and on the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from core.metrics.uncertainty import Estimate, binary_mean, studentized_mean
from core.review.stats import _kappas

VERDICTS = ("a", "b", "tie")
SURE = 0.6  # the judge's probability of its side at or above which a consistent verdict counts as sure
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


def _verdicts(scores: np.ndarray) -> np.ndarray:
    """verdict_of over an array: 1 for a, -1 for b, 0 for a tie."""
    return np.where(scores > 0.5 + 1e-12, 1, np.where(scores < 0.5 - 1e-12, -1, 0))


def human_ceiling(votes: pd.DataFrame) -> pd.DataFrame:
    """Per pair with at least two experts: the share of its experts who agree with the mean of the
    others (`ties_in`), and the same over experts where neither side is a tie (`ties_out`, NaN when
    none)."""
    v = votes.assign(score=votes["outcome"].map(SCORE).astype(float))
    grouped = v.groupby("pair_id")["score"]
    total, count = grouped.transform("sum").to_numpy(), grouped.transform("count").to_numpy()
    v = v[count >= 2]
    if v.empty:
        return pd.DataFrame(columns=["pair_id", "ties_in", "ties_out"])
    total, count = total[count >= 2], count[count >= 2]
    own = _verdicts(v["score"].to_numpy())
    theirs = _verdicts((total - v["score"].to_numpy()) / (count - 1))
    agree = (own == theirs).astype(float)
    decided = (own != 0) & (theirs != 0)
    per = pd.DataFrame({"pair_id": v["pair_id"].to_numpy(), "ties_in": agree,
                        "ties_out": np.where(decided, agree, np.nan)})
    return per.groupby("pair_id", as_index=False).agg(ties_in=("ties_in", "mean"), ties_out=("ties_out", "mean"))


def _agreement(frame: pd.DataFrame, level: float) -> dict:
    judged = frame["judge"].replace({"inconsistent": "tie"})
    same = (judged == frame["expert"]).tolist()
    decided = (judged != "tie") & (frame["expert"] != "tie")
    return {"ties_in": _share(same, level), "ties_out": _share([s for s, d in zip(same, decided) if d], level)}


def _cell_bootstrap(counts: np.ndarray, statistic, rounds: int, level: float, seed: int) -> dict:
    """A percentile bootstrap over pairs when the statistic depends only on how many pairs fall in each of
    a few cells (a confusion table, pick counts): resampling n pairs with replacement is one multinomial
    draw of n over the cells' shares, so every round costs the cells, not the pairs."""
    n = int(counts.sum())
    if n < 2:
        return {"value": float(statistic(counts[None, :])[0]) if n else float("nan"), "lo": float("nan"),
                "hi": float("nan"), "n": n}
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=rounds).astype(float)
    boot = statistic(draws)
    boot = boot[np.isfinite(boot)]
    value = float(statistic(counts[None, :].astype(float))[0])
    if boot.size == 0:
        return {"value": value, "lo": float("nan"), "hi": float("nan"), "n": n}
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return {"value": value, "lo": float(min(lo, value)), "hi": float(max(hi, value)), "n": n}


def _kappa(frame: pd.DataFrame, level: float, rounds: int, seed: int) -> dict:
    """Cohen's kappa over a / b / tie (an inconsistent judge verdict is a tie), bootstrap over pairs."""
    judged = frame["judge"].replace({"inconsistent": "tie"})
    codes = pd.Categorical(frame["expert"], VERDICTS).codes * 3 + pd.Categorical(judged, VERDICTS).codes
    counts = np.bincount(codes[codes >= 0], minlength=9).astype(float)
    return _cell_bootstrap(counts, lambda t: _kappas(t.reshape(-1, 3, 3)), rounds, level, seed)


def position_bias(a_first: Sequence[str | None], b_first: Sequence[str | None], level: float = 0.95,
                  rounds: int = 2000, seed: int = 0) -> dict:
    """The share of decisive single-order verdicts that pick the response shown first, resampling pairs.
    A pair contributes (first picks, decisive orders), one of five kinds: (0,1) (1,1) (0,2) (1,2) (2,2)."""
    a_first, b_first = np.asarray(a_first, dtype=object), np.asarray(b_first, dtype=object)
    picks = (a_first == "a").astype(int) + (b_first == "b").astype(int)
    decisive = np.isin(a_first, ("a", "b")).astype(int) + np.isin(b_first, ("a", "b")).astype(int)
    kinds = [(0, 1), (1, 1), (0, 2), (1, 2), (2, 2)]
    counts = np.array([np.sum((picks == p) & (decisive == d)) for p, d in kinds], float)
    first = np.array([p for p, _ in kinds], float)
    shown = np.array([d for _, d in kinds], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _cell_bootstrap(counts, lambda c: (c @ first) / (c @ shown), rounds, level, seed)


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
        "by_probability": _by_probability(both, level),
    }
    return out


def _by_probability(both: pd.DataFrame, level: float, threshold: float = SURE) -> dict | None:
    """Agreement where the judge is sure of a side (its probability of it at least `threshold`) and
    elsewhere; None when its backend gave no probabilities."""
    if "p_a" not in both or not both["p_a"].notna().any():
        return None
    p_a, p_b = both["p_a"].astype(float), both["p_b"].astype(float)
    side = np.where(both["judge"] == "a", p_a, np.where(both["judge"] == "b", p_b, np.nan))
    sure = side >= threshold
    return {"threshold": threshold, "with_probabilities": int(p_a.notna().sum()),
            "sure": {"pairs": int(sure.sum()), **_agreement(both[sure], level)},
            "unsure": {"pairs": int((~sure).sum()), **_agreement(both[~sure], level)}}


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
