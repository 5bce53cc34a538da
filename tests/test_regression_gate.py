"""The regression gate on synthetic per-item outcomes: the one-sided score test against ratesci's
published worked example, statsmodels and an independent constrained-likelihood computation; its
size at the limit by exact enumeration; Holm against statsmodels; the detectable drop against
Connor's formula and exact power; McNemar's exact test (the old rule, kept for the benchmark)
against enumeration, Wilson intervals against the formula; and every verdict, per category and
pooled."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import gammaln
from scipy.stats import norm
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from core.config import RegressionSettings
from core.errors import InvalidInput
from core.regression.gate import (METHOD_VERSION, Thresholds, decide, detectable_drop, drop_bound, drop_pvalue,
                                  drop_score, headline, holm, judge, judge_category, mcnemar_exact, parse_overrides,
                                  wilson)

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


# ---- the one-sided score test ---------------------------------------------------------------

def test_score_interval_matches_ratesci_published_example():
    """ratesci's vignette (Laud), pairbinci(x = c(1, 1, 7, 12)) with its default skewness and bias
    corrections: estimate -0.2859, 95% CI -0.5281 to -0.01842, and at theta0 = 0 the score -2.070197
    with one-sided p-values 0.01921697 / 0.980783 (Fagerland et al. 2014's airway example)."""
    b, c, n = 1, 7, 21
    assert drop_bound(b, c, n, 0.975) == pytest.approx(-0.5281, abs=5e-5)
    assert drop_bound(b, c, n, 0.975, upper=True) == pytest.approx(-0.01842, abs=5e-6)
    assert float(drop_score(b, c, n, 0.0)) == pytest.approx(-2.070197, abs=1e-6)
    assert float(drop_pvalue(b, c, n, 0.0)) == pytest.approx(0.980783, abs=1e-6)
    assert drop_bound(b, c, n, 0.5) == pytest.approx(-0.2859, abs=5e-5)  # where the score is 0


@pytest.mark.parametrize("b,c,n", [(1, 7, 21), (15, 4, 200), (9, 1, 50), (40, 22, 300), (3, 0, 60)])
def test_score_at_zero_margin_is_mcnemars_statistic_with_the_n_minus_1_correction(b, c, n):
    chi2 = mcnemar([[n - b - c, b], [c, 0]], exact=False, correction=False).statistic  # statsmodels
    z = float(drop_score(b, c, n, 0.0))
    assert z ** 2 == pytest.approx(chi2 * (n - 1) / n, rel=1e-9) and np.sign(z) == np.sign(b - c)


def _independent_score(b: int, c: int, n: int, margin: float) -> float:
    """The same statistic from its definition: the wrong -> right rate maximising the trinomial
    likelihood under drop = margin found numerically, the moments of the per-item difference by
    enumeration, and the corrected score as the matching root of the cubic-moment quadratic."""
    def nll(up):
        down = up + margin
        return -(b * math.log(down) + c * math.log(up) + (n - b - c) * math.log(1 - up - down))
    lo, hi = max(1e-12, -margin + 1e-12), (1 - margin) / 2 - 1e-12
    up = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13}).x
    down = up + margin
    values, probs = np.array([1.0, -1.0, 0.0]), np.array([down, up, 1 - up - down])
    var = float(probs @ (values - margin) ** 2) / n * n / (n - 1)
    m3 = float(probs @ (values - margin) ** 3) / n ** 2
    z = ((b - c) / n - margin) / math.sqrt(var)
    g = m3 / (6 * var ** 1.5)
    roots = np.roots([g, 1, -(z + g)])
    return float(min(roots[np.isreal(roots)].real, key=lambda t: abs(t - z)))


@pytest.mark.parametrize("b,c,n,margin", [(15, 4, 200, 0.05), (12, 2, 50, 0.05), (30, 20, 350, 0.02),
                                          (4, 1, 40, 0.05), (2, 6, 60, 0.1), (90, 40, 1400, 0.02)])
def test_score_matches_an_independent_computation(b, c, n, margin):
    assert float(drop_score(b, c, n, margin)) == pytest.approx(_independent_score(b, c, n, margin), abs=2e-5)


def test_score_falls_as_the_margin_rises_so_bound_and_test_agree():
    for b, c, n in [(1, 7, 21), (10, 2, 50), (14, 4, 200), (3, 40, 60), (60, 50, 350)]:
        margins = np.linspace(-0.9, 0.9, 721)
        z = drop_score(np.full_like(margins, b), c, n, margins)
        assert np.all(np.diff(z) < 0)
        lower = drop_bound(b, c, n, 0.95)
        for m in (lower - 1e-4, lower + 1e-4):
            assert (float(drop_pvalue(b, c, n, m)) < 0.05) == (m < lower)


def _trinomial(n: int, down: float, up: float):
    b = np.arange(n + 1)[:, None]
    c = np.arange(n + 1)[None, :]
    ok = b + c <= n
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = (gammaln(n + 1) - gammaln(b + 1) - gammaln(c + 1) - gammaln(np.maximum(n - b - c, 0) + 1)
                + b * np.log(down) + np.where(c == 0, 0.0, c * np.log(up if up > 0 else 1.0))
                + (n - b - c) * np.log(1 - down - up))
    prob = np.where(ok & ((c == 0) | (up > 0)), np.exp(np.where(ok, logp, -np.inf)), 0.0)
    return np.broadcast_to(b, prob.shape), np.broadcast_to(c, prob.shape), prob


@pytest.mark.parametrize("n,limit,alpha", [(50, 0.05, 0.05), (50, 0.05, 0.05 / 7), (200, 0.05, 0.05 / 7),
                                           (200, 0.05, 0.05), (350, 0.02, 0.05)])
def test_size_at_the_limit_by_exact_enumeration(n, limit, alpha):
    """At the worst case of H0 (the true drop equal to the limit) a wrong 'past the limit' stays near
    alpha, whatever the wrong -> right rate (exact, not simulated)."""
    for up in (0.0, 0.005, 0.02, 0.05, 0.1, 0.25):
        b, c, prob = _trinomial(n, up + limit, up)
        assert prob.sum() == pytest.approx(1.0)
        size = prob[drop_pvalue(b, c, n, limit) < alpha].sum()
        assert size <= 1.3 * alpha, (up, size)


# ---- Holm ----------------------------------------------------------------------------------------

def test_holm_matches_statsmodels_and_skips_untested():
    rng = np.random.default_rng(3)
    for _ in range(8):
        p = rng.uniform(0, 0.2, size=7) ** rng.uniform(0.5, 3)
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-12)
    p = np.array([0.01, np.nan, 0.02, 0.3])
    adjusted = holm(p)
    assert np.isnan(adjusted[1])
    assert adjusted[[0, 2, 3]] == pytest.approx(multipletests(p[[0, 2, 3]], method="holm")[1])
    many = rng.uniform(size=(5, 7))
    assert np.array_equal(holm(many), np.stack([holm(row) for row in many]))


# ---- what the suite can detect ---------------------------------------------------------------

@pytest.mark.parametrize("drop,up,alpha", [(0.1, 0.02, 0.05), (0.05, 0.05, 0.05 / 7), (0.2, 0.0, 0.01)])
def test_detectable_drop_at_a_zero_limit_is_connors_mcnemar_sample_size(drop, up, alpha):
    """Connor (1987): n = (z_a sqrt(psi) + z_b sqrt(psi - drop^2))^2 / drop^2 items detect `drop` with
    power 1 - b, psi the discordant rate (here 2 * up + drop)."""
    psi = 2 * up + drop
    n = (norm.isf(alpha) * math.sqrt(psi) + norm.ppf(0.8) * math.sqrt(psi - drop * drop)) ** 2 / drop ** 2
    assert detectable_drop(n, up * n, 0.0, alpha) == pytest.approx(drop, rel=1e-6)


@pytest.mark.parametrize("n,flips_up,limit,alpha", [(60, 3, 0.05, 0.05 / 7), (200, 6, 0.05, 0.05 / 7),
                                                   (350, 14, 0.02, 0.05), (350, 0, 0.02, 0.05)])
def test_power_at_the_detectable_drop_is_80_percent_exactly_enumerated(n, flips_up, limit, alpha):
    """The normal approximation is close from a few hundred items and errs on the safe side (states a
    larger drop) in small categories."""
    drop = detectable_drop(n, flips_up, limit, alpha)
    assert limit < drop < 0.5
    b, c, prob = _trinomial(n, flips_up / n + drop, flips_up / n)
    power = prob[drop_pvalue(b, c, n, limit) < alpha].sum()
    assert 0.77 <= power <= (0.85 if n >= 200 else 0.9)


def test_nothing_is_detectable_in_a_handful_of_items():
    assert detectable_drop(1, 0, 0.05, 0.05) is None
    assert detectable_drop(3, 0, 0.05, 0.05 / 7) is None
    # 50 items, none flipping up, tested at alpha / 7: only a drop of about 27 points is found 80% of the time
    assert detectable_drop(50, 0, 0.05, 0.05 / 7) == pytest.approx(0.269, abs=0.002)


# ---- verdicts ------------------------------------------------------------------------------------

def _outcomes(category: str, n: int, base_right: int, right_to_wrong: int, wrong_to_right: int):
    """n items; the base gets base_right; of those, right_to_wrong flip; wrong_to_right of the others flip up."""
    rows = []
    for i in range(n):
        base = i < base_right
        tuned = (i >= right_to_wrong) if base else (i - base_right < wrong_to_right)
        rows.append((category, base, tuned))
    return rows


def test_no_drop_passes_and_says_what_it_could_have_seen():
    result = judge(_outcomes("facts", 60, 40, 2, 3), SETTINGS)
    assert result.verdict == "pass" and result.categories[0].verdict == "pass" and result.overall.verdict == "pass"
    assert result.categories[0].drop_points == pytest.approx(100 * (40 - 41) / 60) and not result.advice
    assert "detects a drop of" in result.categories[0].reason and "detects a drop of" in result.overall.reason
    assert result.categories[0].detectable_drop_points > 5 and result.method == METHOD_VERSION
    assert "in a category" in result.detectable and "pooled." in result.detectable


def test_a_large_significant_drop_fails_with_advice():
    result = judge(_outcomes("facts", 60, 40, 15, 1) + _outcomes("arithmetic", 60, 30, 1, 1), SETTINGS)
    facts = next(r for r in result.categories if r.category == "facts")
    assert facts.verdict == "fail" and facts.right_to_wrong == 15 and facts.wrong_to_right == 1
    assert facts.p == pytest.approx(float(drop_pvalue(15, 1, 60, 0.05)))
    ps = [r.p for r in result.categories]
    assert [r.p_adjusted for r in result.categories] == pytest.approx(multipletests(ps, method="holm")[1])
    assert facts.p_adjusted < 0.05 and facts.family == 2
    assert facts.drop_points == pytest.approx(100 * 14 / 60)
    assert result.verdict == "fail" and result.reasons[0].startswith("facts: accuracy fell 23.3 points")
    assert any("earlier checkpoint" in a for a in result.advice)


def test_a_drop_the_items_cannot_confirm_is_inconclusive():
    result = judge(_outcomes("reasoning", 40, 20, 4, 1), SETTINGS)  # 7.5 points, nowhere near sure past 5
    [r] = result.categories
    assert r.drop_points == pytest.approx(7.5) and r.p == pytest.approx(float(drop_pvalue(4, 1, 40, 0.05)))
    assert r.p > 0.05
    assert r.verdict == "inconclusive" and result.verdict == "inconclusive"
    assert "cannot tell whether it fell more than 5" in r.reason
    relaxed = judge(_outcomes("reasoning", 40, 20, 4, 1), replace(SETTINGS, require_significance=False))
    assert relaxed.verdict == "fail" and "significance not required" in relaxed.categories[0].reason


def test_holm_turns_a_lone_borderline_fail_into_inconclusive():
    """One category's drop is past its limit at p < 0.05 alone, but not after Holm over seven."""
    lone = _outcomes("facts", 200, 150, 24, 4)  # 10 points, one-sided p ~ 0.02 against 5
    p = float(drop_pvalue(24, 4, 200, 0.05))
    assert 0.05 / 7 < p < 0.05
    assert judge(lone, SETTINGS).categories[0].verdict == "fail"  # a family of one
    others = [row for k in range(6) for row in _outcomes(f"other{k}", 200, 150, 3, 3)]
    family = judge(lone + others, SETTINGS)
    facts = next(r for r in family.categories if r.category == "facts")
    assert facts.family == 7 and facts.p_adjusted == pytest.approx(7 * p)
    assert facts.verdict == "inconclusive" and "Holm over 7" in facts.reason


def test_too_few_items_is_inconclusive_whatever_the_scores():
    result = judge(_outcomes("safety", 10, 10, 0, 0), SETTINGS)
    assert result.verdict == "inconclusive" and "at least 30" in result.categories[0].reason
    assert result.categories[0].p_adjusted is None and result.overall.verdict == "inconclusive"
    assert result.categories[0].p == pytest.approx(float(drop_pvalue(0, 0, 10, 0.05)))  # shown, not tested
    assert "none (too few items)" in result.detectable


def test_a_uniform_drop_just_under_each_limit_fails_on_the_pooled_limit():
    """The issue's case: 4.9 points in each of seven categories (7 x 245 items: 12 net flips each) passes
    every category and fails on the pooled limit; the same holds at 7 x 200 with the nearest drop below
    the limit (4.5 points)."""
    for n, down, up, points in [(245, 20, 8, 4.9), (200, 17, 8, 4.5)]:
        rows = [row for k in range(7) for row in _outcomes(f"cat{k}", n, n // 2, down, up)]
        result = judge(rows, SETTINGS)
        assert [round(r.drop_points, 1) for r in result.categories] == [points] * 7
        assert {r.verdict for r in result.categories} == {"pass"}
        assert result.overall.verdict == "fail" and result.verdict == "fail"
        assert result.overall.max_drop_points == 2.0 and result.overall.lower_points > 2.0
        assert result.reasons[-1].startswith(f"all items (pooled): accuracy fell {points:.1f} points (with 95% confidence the drop is at least")
        assert result.advice


def test_a_broad_drop_the_pooled_items_cannot_confirm_is_inconclusive():
    rows = [row for k in range(7) for row in _outcomes(f"cat{k}", 50, 25, 4, 2)]  # 4 points each
    result = judge(rows, SETTINGS)
    assert {r.verdict for r in result.categories} == {"pass"}
    assert result.overall.verdict == "inconclusive" and result.verdict == "inconclusive"
    assert result.overall.lower_points < 2.0 and "cannot tell whether it fell more than 2" in result.overall.reason
    assert judge(rows, replace(SETTINGS, max_pooled_drop_points=5.0)).verdict == "pass"


def test_the_pooled_verdict_agrees_with_its_lower_bound():
    for down in range(0, 40, 3):
        rows = [row for k in range(7) for row in _outcomes(f"cat{k}", 60, 30, down // 7 + (k < down % 7), 2)]
        pooled = judge(rows, SETTINGS).overall
        past = pooled.drop_points > 2.0
        assert (pooled.verdict == "fail") == (past and pooled.lower_points > 2.0)
        assert (pooled.verdict == "inconclusive") == (past and pooled.lower_points <= 2.0)


def test_decide_reaches_every_verdict_on_arrays():
    b = np.array([[0, 0], [30, 0], [6, 0], [2, 1]])
    c = np.zeros_like(b)
    out = decide(b, c, [100, 10], [0.05, 0.05], 0.02, 0.05, 30, True)
    assert out["verdict"][:, 0].tolist() == [0, 1, 2, 0] and set(out["verdict"][:, 1]) == {2}
    assert out["pooled_verdict"].tolist() == [0, 1, 1, 2]
    assert out["gate"].tolist() == [2, 1, 1, 2]  # the 10-item category keeps every gate from passing


def test_per_category_thresholds_and_overall():
    rows = _outcomes("safety", 50, 45, 3, 0) + _outcomes("facts", 50, 30, 3, 0)  # both fall 6 points
    strict = judge(rows, replace(SETTINGS, require_significance=False, category_max_drop="safety=2, facts=10"))
    verdicts = {r.category: r.verdict for r in strict.categories}
    assert verdicts == {"safety": "fail", "facts": "pass"}
    assert strict.overall.n == 100 and strict.overall.drop_points == pytest.approx(6.0)
    assert strict.overall.verdict == "fail"  # past the pooled 2 points, significance not required


def test_a_stored_gate_is_plain_json_and_has_a_headline():
    result = judge(_outcomes("facts", 60, 40, 15, 1) + _outcomes("tiny", 5, 3, 0, 0), SETTINGS).to_dict()
    again = json.loads(json.dumps(result, allow_nan=False))
    assert again == result and again["method"] == METHOD_VERSION
    pooled, seen = headline(again)
    assert pooled.startswith("Pooled over all 65 items: fail; accuracy fell") and seen.startswith("At 80% power")
    assert "older rule" in headline({"overall": {"n": 10, "drop_points": 1.0}, "reasons": []})[0]


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
