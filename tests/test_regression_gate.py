"""The regression gate on synthetic per-item outcomes: McNemar's exact test against direct
enumeration, Wilson intervals against the formula, and every verdict path."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from core.config import RegressionSettings
from core.errors import InvalidInput
from core.regression.gate import judge, judge_category, mcnemar_exact, parse_overrides, wilson, Thresholds

SETTINGS = RegressionSettings(max_drop_points=5.0, require_significance=True, alpha=0.05, min_items=30)


def brute_mcnemar(b: int, c: int) -> float:
    """Two-sided exact test by enumeration: the probability of every split of b + c discordant items at
    least as unlikely as the one seen."""
    n = b + c
    if n == 0:
        return 1.0
    probs = [math.comb(n, k) / 2 ** n for k in range(n + 1)]
    seen = probs[b]
    return min(1.0, sum(p for p in probs if p <= seen * (1 + 1e-12)))


@pytest.mark.parametrize("b,c", [(0, 0), (9, 1), (1, 9), (5, 5), (12, 3), (0, 7), (40, 22), (100, 130)])
def test_mcnemar_matches_enumeration(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(brute_mcnemar(b, c), rel=1e-9)


def test_mcnemar_known_value():
    assert mcnemar_exact(9, 1) == pytest.approx(0.021484375)  # 2 * (1 + 10) / 1024


@pytest.mark.parametrize("k,n", [(0, 10), (7, 10), (10, 10), (45, 60), (1, 300)])
def test_wilson_matches_the_formula(k, n):
    z = 1.959963984540054
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    lo, hi = wilson(k, n, 0.95)
    assert (lo, hi) == pytest.approx((max(0.0, centre - half), min(1.0, centre + half)), abs=1e-9)


def _outcomes(category: str, n: int, base_right: int, right_to_wrong: int, wrong_to_right: int):
    """n items; the base gets base_right; of those, right_to_wrong flip; wrong_to_right of the others flip up."""
    rows = []
    for i in range(n):
        base = i < base_right
        tuned = (i >= right_to_wrong) if base else (i - base_right < wrong_to_right)
        rows.append((category, base, tuned))
    return rows


def test_no_drop_passes():
    result = judge(_outcomes("facts", 60, 40, 2, 3), SETTINGS)
    assert result.verdict == "pass" and result.categories[0].verdict == "pass"
    assert result.categories[0].drop_points == pytest.approx(100 * (40 - 41) / 60) and not result.advice


def test_a_large_significant_drop_fails_with_advice():
    result = judge(_outcomes("facts", 60, 40, 15, 1) + _outcomes("arithmetic", 60, 30, 1, 1), SETTINGS)
    facts = next(r for r in result.categories if r.category == "facts")
    assert facts.verdict == "fail" and facts.right_to_wrong == 15 and facts.wrong_to_right == 1
    assert facts.p == pytest.approx(brute_mcnemar(15, 1)) and facts.p < 0.05
    assert facts.drop_points == pytest.approx(100 * 14 / 60)
    assert result.verdict == "fail" and result.reasons[0].startswith("facts: accuracy fell 23.3 points")
    assert any("earlier checkpoint" in a for a in result.advice)


def test_a_drop_the_items_cannot_confirm_is_inconclusive():
    result = judge(_outcomes("reasoning", 40, 20, 4, 1), SETTINGS)  # 7.5 points, McNemar p = 0.375
    [r] = result.categories
    assert r.drop_points == pytest.approx(7.5) and r.p == pytest.approx(0.375)
    assert r.verdict == "inconclusive" and result.verdict == "inconclusive"
    relaxed = judge(_outcomes("reasoning", 40, 20, 4, 1), replace(SETTINGS, require_significance=False))
    assert relaxed.verdict == "fail"


def test_too_few_items_is_inconclusive_whatever_the_scores():
    result = judge(_outcomes("safety", 10, 10, 0, 0), SETTINGS)
    assert result.verdict == "inconclusive" and "at least 30" in result.categories[0].reason


def test_per_category_thresholds_and_overall():
    rows = _outcomes("safety", 50, 45, 3, 0) + _outcomes("facts", 50, 30, 3, 0)  # both fall 6 points
    strict = judge(rows, replace(SETTINGS, require_significance=False, category_max_drop="safety=2, facts=10"))
    verdicts = {r.category: r.verdict for r in strict.categories}
    assert verdicts == {"safety": "fail", "facts": "pass"}
    assert strict.overall.n == 100 and strict.overall.drop_points == pytest.approx(6.0)


def test_overrides_are_checked():
    assert parse_overrides(" safety = 2,reasoning=8.5 ") == {"safety": 2.0, "reasoning": 8.5}
    for bad in ("safety", "safety=lots", "=3", "safety=200"):
        with pytest.raises(InvalidInput, match="category_max_drop"):
            parse_overrides(bad)
    with pytest.raises(InvalidInput, match="no category poetry"):
        judge(_outcomes("facts", 40, 20, 0, 0), replace(SETTINGS, category_max_drop="poetry=3"))


def test_mismatched_outcomes_are_refused():
    with pytest.raises(InvalidInput):
        judge_category("facts", [True, False], [True], Thresholds(5, True, 0.05, 1))
