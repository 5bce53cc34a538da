"""core.metrics.passk and core.metrics.uncertainty against independent references: the exact
combinatorial pass@k with math.comb, brute-force sign-flip enumeration, scipy's
permutation_test, simulated coverage with a known truth, and hand-computed Holm/BH values;
for the current methods statsmodels' Agresti-Coull interval and McNemar test, the published
Tango interval of Fagerland, Lydersen & Laake's worked example, an independent score-test
inversion, exact binomial enumeration of coverage, and the brute-force inverted permutation
test. (Calibration by simulation and the word/interval property: test_metrics_trust.py.)"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import permutation_test

from core.errors import InvalidInput
from core.metrics.passk import pass_at_k, pass_at_k_many
from scipy import optimize, stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from core.metrics.uncertainty import (
    Difference,
    Estimate,
    PairedDelta,
    _sign_flip_interval,
    benjamini_hochberg,
    binary_mean,
    bonferroni,
    bootstrap_mean,
    bootstrap_statistic,
    enough_rounds,
    holm,
    mcnemar_score_p,
    multiple_comparisons_note,
    paired_binary,
    paired_continuous,
    paired_delta,
    paired_delta_statistic,
    proportion_interval,
    studentized_mean,
    tango_interval,
)

# --- pass@k ---------------------------------------------------------------------------------


def exact_pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k) with exact integers (math.comb is 0 when n - c < k)."""
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


@pytest.mark.parametrize("n", [1, 2, 5, 10, 20, 200, 1000])
def test_pass_at_k_matches_exact_combinatorial_formula(n):
    for k in sorted({1, 2, 5, 10, 100, n} & set(range(1, n + 1))):
        for c in sorted({0, 1, 2, n // 3, n // 2, n - k, n - k + 1, n - 1, n} & set(range(n + 1))):
            assert pass_at_k(n, c, k) == pytest.approx(exact_pass_at_k(n, c, k), rel=1e-12,
                                                       abs=1e-14), (n, c, k)


def test_pass_at_k_large_n_where_naive_floats_overflow():
    # C(5000, 500) has ~700 digits: as floats the naive ratio is inf/inf; exact ints still work.
    n, c, k = 5000, 3, 500
    with pytest.raises(OverflowError):
        float(math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(exact_pass_at_k(n, c, k), rel=1e-12)
    # Hand check: 1 - (1 - 500/4998)(1 - 500/4999)(1 - 500/5000) ~ 0.2710
    assert pass_at_k(n, c, k) == pytest.approx(
        1 - (1 - 500 / 4998) * (1 - 500 / 4999) * (1 - 500 / 5000), rel=1e-14)


def test_pass_at_k_edges():
    assert pass_at_k(10, 0, 3) == 0.0
    assert pass_at_k(10, 10, 3) == 1.0
    assert pass_at_k(10, 8, 3) == 1.0  # n - c = 2 < k: every 3-subset holds a pass
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the pass rate
    assert pass_at_k_many([10, 5, 1], [3, 0, 1], 1) == pytest.approx([0.3, 0.0, 1.0])


@pytest.mark.parametrize("args, word", [((5, 2, 6), "k"), ((5, 6, 1), "c"), ((0, 0, 1), "n"),
                                        ((5, -1, 1), "c"), ((5, 2, 0), "k"), ((5.0, 2, 1), "n")])
def test_pass_at_k_rejects_bad_input_naming_the_argument(args, word):
    with pytest.raises(InvalidInput, match=rf"\b{word}\b"):
        pass_at_k(*args)


def test_pass_at_k_many_reports_every_bad_problem():
    with pytest.raises(InvalidInput) as err:
        pass_at_k_many([5, 3, 4], [1, 4, 9], 2)
    assert "problem 1" in str(err.value) and "problem 2" in str(err.value)
    with pytest.raises(InvalidInput, match="one entry per problem"):
        pass_at_k_many([5, 3], [1], 1)


# --- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_mean_interval_covers_true_mean_at_nominal_rate():
    # 300 simulated evaluations of 60 examples with known mean 0.5 (Beta(2, 2) scores).
    # Percentile intervals run slightly short for n = 60, so expect ~0.93-0.95; the binomial
    # sd over 300 trials is ~0.014, so [0.90, 0.985] is > 2 sd either way. Seeded anyway.
    rng = np.random.default_rng(12345)
    samples = rng.beta(2.0, 2.0, size=(300, 60))
    covered = 0
    for trial, sample in enumerate(samples):
        est = bootstrap_mean(sample, rounds=1000, level=0.95, seed=trial)
        covered += est.lo <= 0.5 <= est.hi
    assert 0.90 <= covered / 300 <= 0.985


def test_bootstrap_mean_drops_nan_and_reports_n():
    values = [1.0, 0.0, float("nan"), 1.0, 1.0, float("nan")]
    est = bootstrap_mean(values, rounds=500)
    assert est.n == 4 and est.value == pytest.approx(0.75)
    assert 0.0 <= est.lo <= est.value <= est.hi <= 1.0
    empty = bootstrap_mean([float("nan")])
    assert empty.n == 0 and math.isnan(empty.value)


def test_bootstrap_is_deterministic_with_a_seed():
    values = np.random.default_rng(1).normal(size=50)
    assert bootstrap_mean(values, seed=7) == bootstrap_mean(values, seed=7)
    assert bootstrap_mean(values, seed=7) != bootstrap_mean(values, seed=8)
    t, b = values, values * 0.5
    assert paired_delta(t, b, seed=3) == paired_delta(t, b, seed=3)


def test_bootstrap_statistic_agrees_with_bootstrap_mean_for_the_mean():
    values = np.random.default_rng(2).normal(size=40)
    by_mean = bootstrap_mean(values, rounds=400, seed=5)
    by_statistic = bootstrap_statistic(40, lambda idx: float(values[idx].mean()), rounds=400,
                                       seed=5)
    assert isinstance(by_statistic, Estimate) and by_statistic.n == 40
    for field in ("value", "lo", "hi"):
        assert getattr(by_statistic, field) == pytest.approx(getattr(by_mean, field), abs=1e-12)


def test_bootstrap_statistic_corpus_ratio():
    # A corpus metric that is not a mean of per-example scores: total matches / total length.
    rng = np.random.default_rng(3)
    length = rng.integers(5, 30, size=80)
    matches = rng.binomial(length, 0.4)
    est = bootstrap_statistic(80, lambda idx: matches[idx].sum() / length[idx].sum())
    assert est.value == pytest.approx(matches.sum() / length.sum())
    assert est.lo < est.value < est.hi and est.hi - est.lo < 0.2


# --- paired delta ---------------------------------------------------------------------------


def brute_force_sign_flip_p(d: np.ndarray) -> float:
    observed = abs(sum(d))
    flips = list(itertools.product([-1.0, 1.0], repeat=len(d)))
    extreme = sum(abs(sum(s * x for s, x in zip(signs, d))) >= observed - 1e-9
                  for signs in flips)
    return extreme / len(flips)


def scipy_paired_p(tuned, base, n_resamples, seed):
    res = permutation_test(
        (tuned, base), lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples", vectorized=True, alternative="two-sided",
        n_resamples=n_resamples, random_state=seed,
    )
    return res.pvalue


def test_permutation_p_exact_for_small_n_matches_brute_force_and_scipy():
    rng = np.random.default_rng(10)
    base = rng.normal(size=10)
    tuned = base + rng.normal(0.4, 1.0, size=10)
    result = paired_delta(tuned, base)
    expected = brute_force_sign_flip_p(tuned - base)
    assert result.p_permutation == pytest.approx(expected, abs=1e-12)
    # scipy enumerates all 2**10 pairings exactly when n_resamples >= 1024.
    assert result.p_permutation == pytest.approx(scipy_paired_p(tuned, base, 10_000, 0),
                                                 abs=1e-9)
    assert 0.0 < expected < 1.0  # the example is not degenerate


def test_permutation_p_exact_with_ties_in_binary_scores():
    # 0/1 correctness scores: many zero and tied differences, sums are exact integers.
    tuned = np.array([1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0], dtype=float)
    base = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1], dtype=float)
    # d has five +1, one -1, six 0: P(|S| >= 4) over signs of the six nonzero d = 14/64.
    assert paired_delta(tuned, base).p_permutation == pytest.approx(14 / 64)
    assert brute_force_sign_flip_p(tuned - base) == pytest.approx(14 / 64)


def test_permutation_p_monte_carlo_matches_scipy_for_larger_n():
    rng = np.random.default_rng(11)
    base = rng.normal(size=60)
    tuned = base + rng.normal(0.1, 1.0, size=60)
    ours = paired_delta(tuned, base, rounds=20_000, seed=1).p_permutation
    theirs = scipy_paired_p(tuned, base, 20_000, 2)
    # Each Monte-Carlo p has sd <= sqrt(0.25 / 20000) ~ 0.0035; 0.015 is > 3 sd of the gap.
    assert 0.01 < theirs < 0.5
    assert ours == pytest.approx(theirs, abs=0.015)


def test_zero_difference_is_rarely_significant_and_a_clear_shift_always_is():
    rng = np.random.default_rng(20)
    false_positives = 0
    for trial in range(100):
        base = rng.normal(size=40)
        tuned = rng.normal(size=40)  # same distribution: the null is true
        false_positives += paired_delta(tuned, base, rounds=500, seed=trial).significant
    # Expect ~5 of 100 (binomial sd ~2.2); 12 is > 3 sd above.
    assert false_positives <= 12

    base = rng.normal(size=50)
    shifted = paired_delta(base + 1.0 + rng.normal(0, 0.5, size=50), base, seed=0)
    assert shifted.significant and shifted.p_permutation < 0.01 and shifted.p_bootstrap < 0.01
    assert 0.7 < shifted.lo < shifted.delta < shifted.hi < 1.3


def test_paired_delta_drops_nan_pairs_and_checks_alignment():
    tuned = [0.9, float("nan"), 0.7, 0.8]
    base = [0.5, 0.4, float("nan"), 0.6]
    result = paired_delta(tuned, base)
    assert isinstance(result, PairedDelta)
    assert result.n == 2 and result.delta == pytest.approx(0.3)
    assert paired_delta([float("nan")], [1.0]).n == 0
    with pytest.raises(InvalidInput, match="same examples"):
        paired_delta([1.0, 2.0], [1.0])
    with pytest.raises(InvalidInput, match="level"):
        paired_delta([1.0], [1.0], level=95)


def test_bootstrap_p_definition():
    # Every difference positive: no resampled delta can reach 0, so p = 2 / (rounds + 1).
    d = paired_delta([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], rounds=999)
    assert d.p_bootstrap == pytest.approx(2 / 1000)
    # All differences zero: every resample sits at 0, p clips to 1.
    assert paired_delta([1.0, 2.0], [1.0, 2.0]).p_bootstrap == 1.0


def test_paired_delta_statistic_matches_paired_delta_for_a_mean_metric():
    rng = np.random.default_rng(30)
    base = rng.normal(size=30)
    tuned = base + rng.normal(0.3, 1.0, size=30)

    def mean_metric(idx, from_tuned):
        return float(np.where(from_tuned, tuned[idx], base[idx]).mean())

    per_example = paired_delta(tuned, base, rounds=300, seed=4)
    corpus = paired_delta_statistic(30, mean_metric, rounds=300, seed=4)
    assert corpus.delta == pytest.approx(per_example.delta)
    assert corpus.lo == pytest.approx(per_example.lo, abs=1e-12)
    assert corpus.hi == pytest.approx(per_example.hi, abs=1e-12)
    assert corpus.p_bootstrap == pytest.approx(per_example.p_bootstrap)
    # Same random swaps as paired_delta's sign flips (n = 30 > 16: both Monte-Carlo).
    assert corpus.p_permutation == pytest.approx(per_example.p_permutation)


def test_paired_delta_statistic_exact_when_all_swaps_fit():
    tuned = np.array([3.0, 1.0, 2.0, 5.0, 4.0, 2.5])
    base = np.array([1.0, 1.5, 0.0, 2.0, 3.0, 2.0])
    corpus = paired_delta_statistic(
        6, lambda idx, ft: float(np.where(ft, tuned[idx], base[idx]).sum()), rounds=64)
    assert corpus.p_permutation == pytest.approx(brute_force_sign_flip_p(tuned - base))


# --- multiple comparisons -------------------------------------------------------------------


def test_holm_hand_computed():
    # Sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> running
    # max 0.06). Back in input order [0.01, 0.04, 0.03, 0.005] -> [0.03, 0.06, 0.06, 0.02].
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Capped at 1: sorted 0.2 (x3 = 0.6), 0.5 (x2 = 1.0), 0.9 (x1 = 0.9 -> max 1.0).
    assert holm([0.5, 0.2, 0.9]) == pytest.approx([1.0, 0.6, 1.0])


def test_benjamini_hochberg_hand_computed():
    # Sorted p with m/rank: 0.005*4/1 = 0.02, 0.01*4/2 = 0.02, 0.03*4/3 = 0.04, 0.04*4/4 = 0.04;
    # running min from the top changes nothing. Input order -> [0.02, 0.04, 0.04, 0.02].
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # Step-up: sorted 0.01*3/1 = 0.03, 0.04*3/2 = 0.06, 0.045*3/3 = 0.045 -> the min from the
    # top pulls 0.06 down to 0.045. Input order [0.045, 0.01, 0.04] -> [0.045, 0.03, 0.045].
    assert benjamini_hochberg([0.045, 0.01, 0.04]) == pytest.approx([0.045, 0.03, 0.045])


def test_adjustments_are_monotone_bounded_and_keep_nan():
    p = np.random.default_rng(40).uniform(size=25)
    for adjust in (holm, benjamini_hochberg):
        adjusted = np.array(adjust(p))
        order = np.argsort(p)
        assert np.all(np.diff(adjusted[order]) >= 0)
        assert np.all(adjusted >= p) and np.all(adjusted <= 1)
        with_nan = adjust([0.01, float("nan"), 0.04])
        assert math.isnan(with_nan[1]) and with_nan[0] == pytest.approx(adjust([0.01, 0.04])[0])
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        holm([0.5, 1.5])


def test_bonferroni_hand_computed():
    # m = 4: each p times 4, capped at 1; NaN stays NaN and does not count in m.
    assert bonferroni([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert bonferroni([0.3, 0.6]) == pytest.approx([0.6, 1.0])
    with_nan = bonferroni([0.01, float("nan"), 0.02])
    assert math.isnan(with_nan[1]) and with_nan[0] == pytest.approx(0.02)


def test_multiple_comparisons_note():
    note = multiple_comparisons_note(20, alpha=0.05)
    assert "20" in note and "about 1" in note and "adjusted" in note
    assert "no correction" in multiple_comparisons_note(1)


# --- 0/1 scores: proportion interval -------------------------------------------------------------


@pytest.mark.parametrize("level", [0.8, 0.95, 0.99, 1 - 0.05 / 12])
def test_agresti_coull_matches_statsmodels(level):
    for n in (1, 5, 24, 100, 400):
        k = np.arange(n + 1)
        lo, hi = proportion_interval(k, n, level)
        ref_lo, ref_hi = proportion_confint(k, n, alpha=1 - level, method="agresti_coull")
        assert lo == pytest.approx(ref_lo, abs=1e-12) and hi == pytest.approx(ref_hi, abs=1e-12)


def _exact_coverage(n: int, p: float, level: float = 0.95) -> float:
    k = np.arange(n + 1)
    lo, hi = proportion_interval(k, n, level)
    return float(stats.binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum())


@pytest.mark.parametrize("n", [24, 100, 400])
def test_proportion_interval_coverage_by_exact_binomial_enumeration(n):
    # The brief's grid, both tails; then every rate on a fine grid, where Wilson would dip to 84%.
    for p in (0.5, 0.8, 0.95, 0.99):
        assert _exact_coverage(n, p) >= 0.93 and _exact_coverage(n, 1 - p) >= 0.93, (n, p)
    assert min(_exact_coverage(n, p) for p in np.linspace(0.5, 0.999, 400)) >= 0.933


def test_binary_mean_stays_honest_at_the_boundaries():
    # 24 of 24 valid: not [1, 1] (the percentile bootstrap's answer) but 84%-100%.
    est = binary_mean([1.0] * 24)
    assert (est.value, est.hi, est.n) == (1.0, 1.0, 24) and est.lo == pytest.approx(0.83687, abs=1e-5)
    zero = binary_mean([0.0] * 24 + [float("nan")])
    assert (zero.value, zero.lo, zero.n) == (0.0, 0.0, 24) and zero.hi == pytest.approx(0.16313, abs=1e-5)
    assert bootstrap_mean([1.0] * 24) == Estimate(1.0, 1.0, 1.0, 24)  # what the old method said
    with pytest.raises(InvalidInput, match="0/1 scores"):
        binary_mean([1.0, 0.5])


# --- 0/1 scores: paired difference ---------------------------------------------------------------


def test_tango_interval_matches_the_published_worked_example():
    # Fagerland, Lydersen & Laake (2017), "Statistical Analysis of Contingency Tables", ch. 8: complete
    # response before/after consolidation therapy (Cavo et al. 2012), table [[59, 6], [16, 80]]. Published
    # (R package contingencytables, its tests): Tango asymptotic score estimate -0.0621, 95% CI -0.1240 to
    # -0.0054; McNemar asymptotic test P = 0.033006, Z = -2.132.
    lo, hi = tango_interval(6, 16, 161)
    assert round(float(lo), 4) == -0.1240 and round(float(hi), 4) == -0.0054
    assert float(mcnemar_score_p(6, 16)) == pytest.approx(0.033006, abs=5e-7)
    reference = mcnemar([[59, 6], [16, 80]], exact=False, correction=False)
    assert float(mcnemar_score_p(6, 16)) == pytest.approx(reference.pvalue, rel=1e-10)
    tuned = np.array([1] * 59 + [1] * 6 + [0] * 16 + [0] * 80, dtype=float)
    base = np.array([1] * 59 + [0] * 6 + [1] * 16 + [0] * 80, dtype=float)
    d = paired_binary(tuned, base)
    assert isinstance(d, Difference) and d.n == 161 and d.significant
    assert round(d.delta, 4) == -0.0621 and (d.lo, d.hi) == pytest.approx((float(lo), float(hi)))
    assert d.p == pytest.approx(0.033006, abs=5e-7)


def _tango_by_optimizer(b: int, c: int, n: int, level: float) -> tuple[float, float]:
    """Tango's interval computed another way: the restricted ML estimate of (p10, p01) with p10 - p01 = delta by
    numerical maximization of the multinomial likelihood, the score statistic from the multinomial variance of
    b - c there, and the limits by Brent's root finder."""
    def z(delta: float) -> float:
        def nll(p01: float) -> float:
            p10, rest = p01 + delta, 1 - 2 * p01 - delta
            return -(b * math.log(max(p10, 1e-300)) + c * math.log(max(p01, 1e-300))
                     + (n - b - c) * math.log(max(rest, 1e-300)))
        top = (1 - delta) / 2
        p01 = optimize.minimize_scalar(nll, bounds=(max(0.0, -delta), top), method="bounded",
                                       options={"xatol": 1e-13}).x
        p10 = p01 + delta
        return (b - c - n * delta) / math.sqrt(n * (p10 + p01 - delta ** 2))

    q = stats.norm.ppf((1 + level) / 2)
    est = (b - c) / n
    lo = -1.0 if z(-1 + 1e-9) < q else optimize.brentq(lambda x: z(x) - q, -1 + 1e-9, est, xtol=1e-12)
    hi = 1.0 if z(1 - 1e-9) > -q else optimize.brentq(lambda x: z(x) + q, est, 1 - 1e-9, xtol=1e-12)
    return lo, hi


@pytest.mark.parametrize("b, c, n", [(1, 7, 21), (40, 20, 160), (3, 9, 32), (4, 0, 24), (10, 3, 50), (2, 2, 30)])
def test_tango_interval_matches_an_independent_score_inversion(b, c, n):
    for level in (0.95, 0.99):
        lo, hi = tango_interval(b, c, n, level)
        ref_lo, ref_hi = _tango_by_optimizer(b, c, n, level)
        assert float(lo) == pytest.approx(ref_lo, abs=2e-6) and float(hi) == pytest.approx(ref_hi, abs=2e-6)


@pytest.mark.parametrize("level", [0.9, 0.95, 1 - 0.05 / 7])
def test_tango_interval_excludes_zero_exactly_when_mcnemar_rejects(level):
    for n in (1, 10, 24, 60):
        b, c = (x.ravel().astype(float) for x in np.meshgrid(np.arange(n + 1), np.arange(n + 1)))
        b, c = b[b + c <= n], c[b + c <= n]
        lo, hi = tango_interval(b, c, n, level)
        est = (b - c) / n
        assert np.all((lo <= est) & (est <= hi)) and np.all((-1 <= lo) & (hi <= 1))
        excludes = (lo > 0) | (hi < 0)
        assert np.array_equal(excludes, mcnemar_score_p(b, c) < 1 - level)
    # No discordant pair: the interval still has width (+-z^2 / (n + z^2)), not [0, 0].
    lo, hi = tango_interval(0, 0, 24)
    z2 = stats.norm.ppf(0.975) ** 2
    assert (float(lo), float(hi)) == pytest.approx((-z2 / (24 + z2), z2 / (24 + z2)), abs=1e-9)


# --- other scores --------------------------------------------------------------------------------


def _brute_p(d: np.ndarray, delta: float) -> float:
    x = d - delta
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=len(x))))
    return float(np.mean(np.abs(signs @ x) >= abs(x.sum()) - 1e-9))


def test_sign_flip_interval_is_the_inverted_permutation_test():
    d = np.random.default_rng(50).normal(0.3, 1.0, size=9)
    alpha = 0.1
    lo, hi, p0 = _sign_flip_interval(d, alpha, 1000, np.random.default_rng(0))
    assert p0 == pytest.approx(_brute_p(d, 0.0)) == pytest.approx(brute_force_sign_flip_p(d))
    assert p0 == pytest.approx(scipy_paired_p(d, np.zeros_like(d), 10_000, 0), abs=1e-9)
    # Inside the interval the test keeps delta (p >= alpha); just outside it rejects.
    for x in np.linspace(lo, hi, 41)[1:-1]:
        assert _brute_p(d, x) >= alpha
    assert _brute_p(d, lo - 1e-6) < alpha and _brute_p(d, hi + 1e-6) < alpha
    assert _brute_p(d, lo + 1e-6) >= alpha and _brute_p(d, hi - 1e-6) >= alpha


def test_studentized_mean_agrees_with_the_t_interval_on_large_normal_samples():
    # Bootstrap-t quantiles tend to Student's t for normal data; 4,000 rounds keep the Monte-Carlo error of
    # each limit to a few percent of the half-width.
    values = np.random.default_rng(51).normal(10.0, 2.0, size=400)
    est = studentized_mean(values, rounds=4000, seed=1)
    ref = stats.t.interval(0.95, 399, loc=values.mean(), scale=stats.sem(values))
    half = (ref[1] - ref[0]) / 2
    assert est.value == pytest.approx(values.mean())
    assert abs(est.lo - ref[0]) < 0.1 * half and abs(est.hi - ref[1]) < 0.1 * half


def test_studentized_mean_edges():
    assert studentized_mean([0.4] * 5) == Estimate(0.4, 0.4, 0.4, 5)
    assert studentized_mean([float("nan")]).n == 0
    # Mostly one value: resamples of equal values give infinite t*; the interval ends at the data's range.
    est = studentized_mean([1.0] * 23 + [0.0], seed=3)
    assert 0.0 <= est.lo < 0.9 and est.hi == 1.0


def test_paired_continuous_is_the_hull_and_its_p_agrees_with_it():
    rng = np.random.default_rng(52)
    base = rng.beta(0.6, 1.8, size=40)
    tuned = np.clip(base + rng.normal(0.08, 0.15, size=40), 0, 1)
    for level in (0.95, 0.99, 1 - 0.05 / 10):
        d = paired_continuous(tuned, base, level=level, seed=2)
        perm_rng = np.random.default_rng(np.random.SeedSequence(2).spawn(2)[1])  # the stream seed=2 gives the test
        perm_lo, perm_hi, perm_p = _sign_flip_interval(tuned - base, 1 - level, enough_rounds(level), perm_rng)
        assert d.lo <= perm_lo and d.hi >= perm_hi and d.p >= perm_p
        assert d.delta == pytest.approx((tuned - base).mean()) and d.n == 40 and d.level == level
        assert d.significant == (d.lo > 0 or d.hi < 0) == (d.p < 1 - level)
    # All differences equal: the exact sign-flip p is 2 / 2**n.
    small = paired_continuous([0.5] * 5, [0.4] * 5)
    assert small.p == pytest.approx(2 / 32) and not small.significant and small.lo <= 0
    assert paired_continuous([float("nan")], [1.0]).n == 0


def test_enough_rounds_make_the_smallest_p_far_below_the_family_level():
    assert enough_rounds(0.95, 1000) == 1000 and enough_rounds(0.95, 5000) == 5000
    for m in (1, 12, 60, 200):
        rounds = enough_rounds(1 - 0.05 / m, 1000)
        assert 1 / rounds <= (0.05 / m) / 49
