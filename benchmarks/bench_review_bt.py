"""P6: the Bradley-Terry ladder with 1,000 bootstrap rounds over 100k votes and 10 variants:
33,334 prompts, each one pair rated by 3 raters ([trust]: the bootstrap resamples prompts).

Ours (core.review.stats.bradley_terry): votes collapsed into (pair, outcome) cells, a prompts x
cells count matrix, one multinomial draw over prompts per round, rounds fitted in blocks.
Baseline: the textbook loop, which resamples prompts, gathers their vote rows, builds a win
matrix and fits it, one round at a time; it is timed on BASELINE_ROUNDS rounds and scaled
linearly to the same 1,000 (its rounds cost the same)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from benchmarks.result import Result
from core.review.stats import bradley_terry, bt_fit

VOTES, VARIANTS, ROUNDS, BASELINE_ROUNDS = 100_000, 10, 1000, 50
GOAL_SECONDS = 2.0


RATERS_PER_PROMPT = 3


def make_votes(n: int = VOTES, variants: int = VARIANTS, seed: int = 6) -> pd.DataFrame:
    """Seeded votes from a Bradley-Terry truth, with ties and both-bad: one pair per prompt,
    RATERS_PER_PROMPT votes on each."""
    rng = np.random.default_rng(seed)
    names = np.array([f"v{i:02d}" for i in range(variants)])
    strength = np.linspace(0.0, 1.5, variants)
    prompt = np.arange(n) // RATERS_PER_PROMPT
    prompts = int(prompt[-1]) + 1
    i = rng.integers(0, variants, prompts)[prompt]
    j = (i + rng.integers(1, variants, prompts)[prompt]) % variants
    a, b = np.minimum(i, j), np.maximum(i, j)
    a_wins = rng.random(n) < 1 / (1 + np.exp(strength[b] - strength[a]))
    draw = rng.random(n)
    outcome = np.where(draw < 0.1, "tie", np.where(draw < 0.15, "both_bad", np.where(a_wins, "a", "b")))
    return pd.DataFrame({"item": prompt, "prompt": prompt, "rater": [f"r{k}" for k in rng.integers(0, 40, n)],
                         "a": names[a], "b": names[b], "outcome": outcome,
                         "first": np.where(rng.random(n) < 0.5, "a", "b"), "seconds": 12.0,
                         "gold": False, "gold_better": None})


def naive_bootstrap(votes: pd.DataFrame, rounds: int, seed: int = 0) -> np.ndarray:
    """Prompts resampled, their rows gathered, one fit per round."""
    names = sorted(set(votes["a"]) | set(votes["b"]))
    index = {v: k for k, v in enumerate(names)}
    ia, ib = votes["a"].map(index).to_numpy(), votes["b"].map(index).to_numpy()
    to_a = votes["outcome"].map({"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}).to_numpy()
    rng = np.random.default_rng(seed)
    out = np.empty((rounds, len(names)))
    rows_of = votes.groupby("prompt").indices
    prompts = np.array(list(rows_of))
    for r in range(rounds):
        rows = np.concatenate([rows_of[p] for p in prompts[rng.integers(0, len(prompts), len(prompts))]])
        W = np.zeros((len(names), len(names)))
        np.add.at(W, (ia[rows], ib[rows]), to_a[rows])
        np.add.at(W, (ib[rows], ia[rows]), 1 - to_a[rows])
        out[r] = bt_fit(W)
    return out


def run() -> Result:
    votes = make_votes()
    t0 = time.perf_counter()
    ladder = bradley_terry(votes, rounds=ROUNDS)
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    naive_bootstrap(votes, BASELINE_ROUNDS)
    t_naive = (time.perf_counter() - t0) * ROUNDS / BASELINE_ROUNDS
    assert len(ladder) == VARIANTS
    prompts = votes["prompt"].nunique()
    return Result("review_bt_p6", f"{t_ours:.2f} s for {ROUNDS} rounds, {VOTES // 1000}k votes, {prompts} prompts",
                  f"prompt loop {t_naive:.1f} s ({BASELINE_ROUNDS} rounds x{ROUNDS // BASELINE_ROUNDS}) / cells",
                  t_naive / t_ours, f"ours<={GOAL_SECONDS:g}s", t_ours <= GOAL_SECONDS)
