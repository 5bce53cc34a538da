"""Calibration of the regression gate (core.regression.gate) by simulation against known truth.

Seven categories of 50 and of 200 items, limits at their defaults (5 points per category, 2
pooled), alpha 0.05, every item's outcome pair drawn from a known truth: per category a
right -> wrong rate of r + drop and a wrong -> right rate of r, with r = 2% (few items flip up:
where the score test's normal approximation is weakest). Each study runs the gate's own
`decide` (the rule the app applies) and, beside it, the rule before METHOD_VERSION 2 (a
category fails when its point drop exceeds 5 and McNemar's two-sided exact p is below 0.05;
no pooled verdict).

Per grid point:
- fpr: share of studies with a wrong "fail": a category failing whose true drop is within its
  limit, or the pooled verdict failing while the true pooled drop is within the pooled limit;
- power: share of studies whose gate fails, where some truth is past a limit (None at a pure null);
- coverage: share of studies whose pooled one-sided 95% lower bound on the drop (shown in the
  pooled verdict) is at or below the true pooled drop;
- old_fpr: the old rule's wrong fails; its power is in the note (the dict carries no old_power);
  old_coverage is None: the old gate showed no interval of the drop.

The nulls are the worst cases of H0: every category at its limit (the Holm family's worst case;
the pooled drop is then past its limit, so a pooled fail there is right and not counted), every
category at the pooled limit, and the joint worst case (two categories at their limit, five at
0.8 points: pooled exactly at its limit). Goal: fpr <= 0.065 at nominal 5% at every point.
Sweeping the wrong -> right rate over 0, 2, 5 and 15% with 20,000 studies each, the nulls stayed at or
below 0.060 except the joint worst case at 7 x 50 with 15%: 0.066 (its Bonferroni bound is 0.064;
the two questions are each controlled at alpha, their union is not: see core/regression/gate.py).

`calibrate()` prints nothing; benchmarks/bench_trust_calibration.py reports it.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from core.regression import gate

CATEGORIES = 7
LIMIT = 5.0            # points, per category (the default max_drop_points)
POOLED_LIMIT = 2.0     # points (the default max_pooled_drop_points)
ALPHA = 0.05
MIN_ITEMS = 30
UP = 0.02              # wrong -> right rate in every category


def _points() -> list[tuple[str, list[float]]]:
    """(name, true drop in points per category)."""
    return [
        ("null: no change", [0.0] * 7),
        ("null: every category at its limit", [LIMIT] * 7),
        ("null: every category at the pooled limit", [POOLED_LIMIT] * 7),
        ("null: joint worst case", [LIMIT] * 2 + [(7 * POOLED_LIMIT - 2 * LIMIT) / 5] * 5),
        ("alt: uniform 4.9-point drop", [4.9] * 7),
        ("alt: one category 14 points down", [14.0] + [0.0] * 6),
        ("alt: one category 25 points down", [25.0] + [0.0] * 6),
    ]


def old_rule_fails(b: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """Per study and category: the rule before METHOD_VERSION 2 (point drop past the limit and
    McNemar's two-sided exact p < alpha), vectorised; gate.mcnemar_exact is its scalar form."""
    flips = b + c
    p = np.where(flips > 0, np.minimum(1.0, 2 * binom.cdf(np.minimum(b, c), np.maximum(flips, 1), 0.5)), 1.0)
    return (100 * (b - c) > LIMIT * n) & (p < ALPHA)


def _study(n: int, drops: list[float], studies: int, rng: np.random.Generator) -> dict:
    truth = np.array(drops) / 100
    counts = np.stack([rng.multinomial(n, [UP + d, UP, 1 - 2 * UP - d], size=studies) for d in truth], axis=1)
    b, c = counts[..., 0], counts[..., 1]
    out = gate.decide(b, c, [n] * CATEGORIES, [LIMIT / 100] * CATEGORIES, POOLED_LIMIT / 100, ALPHA, MIN_ITEMS, True)
    within = truth <= LIMIT / 100 + 1e-12
    pooled_truth = float(truth.mean())
    pooled_within = pooled_truth <= POOLED_LIMIT / 100 + 1e-12
    wrong = ((out["verdict"] == gate.FAIL) & within).any(axis=1)
    if pooled_within:
        wrong |= out["pooled_verdict"] == gate.FAIL
    old = old_rule_fails(b, c, n)
    old_wrong = (old & within).any(axis=1)
    old_past = 100 * (b - c) > LIMIT * n
    has_alternative = (not within.all()) or not pooled_within
    covered = gate.drop_pvalue(b.sum(axis=1), c.sum(axis=1), n * CATEGORIES, pooled_truth) >= ALPHA
    return {"fpr": float(wrong.mean()), "power": float((out["gate"] == gate.FAIL).mean()) if has_alternative else None,
            "coverage": float(covered.mean()), "old_fpr": float(old_wrong.mean()),
            "old_power": float(old.any(axis=1).mean()) if has_alternative else None, "pooled": 100 * pooled_truth,
            "blocked": float((out["gate"] != gate.PASS).mean()), "old_blocked": float(old_past.any(axis=1).mean())}


def calibrate(studies: int = 1000, seed: int = 0) -> list[dict]:
    """One dict per grid point (7 x 50 and 7 x 200 items; nulls and alternatives), see the module."""
    rows = []
    streams = iter(np.random.SeedSequence(seed).spawn(2 * len(_points())))
    for n in (50, 200):
        for name, drops in _points():
            r = _study(n, drops, studies, np.random.default_rng(next(streams)))
            old_power = "n/a (a null)" if r["old_power"] is None else f"{r['old_power']:.3f}"
            rows.append({
                "part": "gate", "point": f"{CATEGORIES}x{n} {name}", "studies": studies, "fpr": r["fpr"],
                "coverage": r["coverage"], "power": r["power"], "old_fpr": r["old_fpr"], "old_coverage": None,
                "note": (f"true drops {', '.join(f'{d:g}' for d in drops)} points (pooled {r['pooled']:.2f}); "
                         f"wrong -> right rate {100 * UP:g}%; limits {LIMIT:g} / {POOLED_LIMIT:g} pooled; "
                         f"old gate power {old_power}; not passed (fail or inconclusive) new {r['blocked']:.3f}, "
                         f"old {r['old_blocked']:.3f}; coverage: pooled one-sided 95% lower bound"),
            })
    return rows
