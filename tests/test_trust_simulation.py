"""[trust] simulation tier: blind-review verdicts checked against a known truth.

A named grid (prompts x raters per prompt x scenario, benchmarks/trust_review.py's studies:
prompts that differ strongly, ties, a biased rater) at a few hundred studies per point with
fixed seeds, so a run is deterministic: the false-positive rate of "significant" under the null,
the coverage of the win-rate interval and of the Bradley-Terry interval. The full grid at 1,000+
studies per point is `make bench` (trust_calibration). Bounds leave room for simulation noise at
these study counts (400 studies: a 5% rate has a standard error of 1.1 points).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks import trust_review as sim
from core.review import stats

pytestmark = pytest.mark.simulation

GRID = [(prompts, raters, scenario) for prompts in (24, 100) for raters in (1, 3, 5)
        for scenario in ("null", "better", "biased rater")]


@pytest.mark.parametrize("prompts,raters,scenario", GRID, ids=lambda x: str(x).replace(" ", "-"))
def test_review_verdicts_hold_their_level_and_cover_the_truth(prompts, raters, scenario):
    _, mean, spread, bias = next(s for s in sim.SCENARIOS if s[0] == scenario)
    rng = np.random.default_rng(GRID.index((prompts, raters, scenario)))  # fixed: a run is deterministic
    scores, truth = sim.simulate(400, prompts, raters, mean, spread, bias, rng)
    lo, hi, significant = sim._new_rates(scores)
    assert ((lo <= truth) & (truth <= hi)).mean() >= 0.925
    if scenario == "null":
        assert significant.mean() <= 0.075
        if raters > 1:  # the vote-level method this replaced called chance a difference far too often
            assert sim._old_rates(scores)[2].mean() > 0.09


@pytest.mark.parametrize("prompts,raters", [(24, 3), (24, 5), (100, 3)])
def test_ladder_intervals_cover_the_truth(prompts, raters):
    _, mean, spread, bias = sim.SCENARIOS[0]
    rng = np.random.default_rng(prompts * 10 + raters)
    scores, truth = sim.simulate(300, prompts, raters, mean, spread, bias, rng)
    new, old = sim._bt_cover(scores, truth, rng)
    assert new >= 0.92 and old < new


def test_the_simulated_ladder_is_cores_ladder():
    """The closed-form two-variant ladder the simulation uses gives core's bradley_terry figures
    (same point; interval within bootstrap noise)."""
    rng = np.random.default_rng(2)
    scores, _ = sim.simulate(1, 30, 3, 0.6, 0.3, 0.0, rng)
    outcome = {1.0: "a", 0.5: "tie", 0.0: "b"}
    votes = pd.DataFrame([[f"{p}-{k}", p, f"r{k}", "sft", "base", outcome[x], "a", 9.0, False, None]
                          for p in range(30) for k, x in enumerate(scores[0, p])],
                         columns=["item", "prompt", *stats.VOTE_COLUMNS[1:]])
    ladder = stats.bradley_terry(votes, rounds=2000, seed=1).set_index("variant")
    total = scores[0].size
    per_prompt = scores[0].sum(axis=1)
    point = sim._rating(per_prompt.sum() / total, total)
    assert ladder.loc["sft", "rating"] == pytest.approx(point, abs=1e-6)
    w = rng.multinomial(30, np.full(30, 1 / 30), size=2000)
    boot = sim._rating(w @ per_prompt / total, total)
    lo, hi = stats.small_sample_widen(point, *np.quantile(boot, [0.025, 0.975]), 30, 0.95)
    assert (ladder.loc["sft", "lo"], ladder.loc["sft", "hi"]) == pytest.approx((lo, hi), abs=6)
