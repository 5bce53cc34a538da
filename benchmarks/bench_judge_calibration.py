"""[judge] judge_calibration: the agreement tables of a judge over 100,000 judged pairs, 10,000 of
them with expert votes (one vote each on 7,000 pairs, three on 1,000), with every interval at
2,000 bootstrap rounds. Goal: at most 1 s.

Ours (core.judge.calibration.calibrate): kappa and position bias resample pairs as multinomial
draws over their few cells (the statistic depends only on the cell counts), agreement shares get
closed-form intervals, the human ceiling a bootstrap-t over its pairs. Baseline: the textbook
bootstrap that resamples pair rows and recomputes kappa and the position bias from them each
round, timed on BASELINE_ROUNDS rounds and scaled linearly to the same 2,000."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from benchmarks.result import Result
from core.judge.calibration import calibrate, combine, expert_verdicts
from core.review.stats import cohen_kappa

PAIRS, ROUNDS, BASELINE_ROUNDS, GOAL_SECONDS = 100_000, 2000, 20, 1.0


def world(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(np.array(["a", "b"]), PAIRS)
    other = np.where(truth == "a", "b", "a")

    def order(first: str) -> np.ndarray:
        lean = rng.random(PAIRS) < 0.2
        right = rng.random(PAIRS) < 0.8
        return np.where(lean, first, np.where(right, truth, other))

    judged = pd.DataFrame({"pair_id": np.arange(PAIRS), "a_first": order("a"), "b_first": order("b")})
    single, triple = np.arange(7000), np.arange(7000, 8000)
    voted = np.concatenate([single, np.repeat(triple, 3)])
    raters = np.concatenate([np.zeros(7000, int), np.tile([0, 1, 2], 1000)])
    outcome = np.where(rng.random(voted.size) < 0.85, truth[voted], other[voted])
    votes = pd.DataFrame({"pair_id": voted, "rater": [f"r{r}" for r in raters], "outcome": outcome})
    return judged, votes


def naive(judged: pd.DataFrame, votes: pd.DataFrame, rounds: int, seed: int = 0) -> None:
    """Pair rows resampled and the figures recomputed from them, one round at a time."""
    rng = np.random.default_rng(seed)
    experts = expert_verdicts(votes)
    verdict = np.array([combine(x, y) for x, y in zip(judged["a_first"], judged["b_first"])], dtype=object)
    has = judged["pair_id"].isin(experts.index).to_numpy()
    e, j = experts.loc[judged["pair_id"][has]].to_numpy(), verdict[has]
    j = np.where(j == "inconsistent", "tie", j)
    a_first, b_first = judged["a_first"].to_numpy(), judged["b_first"].to_numpy()
    for _ in range(rounds):
        idx = rng.integers(0, len(e), len(e))
        cohen_kappa(list(e[idx]), list(j[idx]))
        idx = rng.integers(0, len(a_first), len(a_first))
        picks = (a_first[idx] == "a").sum() + (b_first[idx] == "b").sum()
        shown = np.isin(a_first[idx], ("a", "b")).sum() + np.isin(b_first[idx], ("a", "b")).sum()
        _ = picks / shown


def run() -> Result:
    judged, votes = world()
    calibrate(judged.head(1000), votes.head(100), rounds=50)  # warm the imports
    t0 = time.perf_counter()
    got = calibrate(judged, votes, rounds=ROUNDS)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive(judged, votes, BASELINE_ROUNDS)
    baseline = (time.perf_counter() - t0) * ROUNDS / BASELINE_ROUNDS
    assert got["pairs_with_experts"] == 8000 and got["human"]["pairs"] == 1000
    return Result("judge_calibration",
                  f"{ours:.2f} s for {PAIRS:,} judged pairs, 10,000 expert votes, {ROUNDS} rounds",
                  f"pair-row bootstrap {baseline:.1f} s (scaled from {BASELINE_ROUNDS} rounds)",
                  baseline / ours, f"<= {GOAL_SECONDS:.0f} s", ours <= GOAL_SECONDS)
