"""Uncertainty of metric scores: bootstrap confidence intervals for one variant, paired
tests of a tuned variant against its base on the same examples, and corrections for running
many such tests at once. Inputs are per-example scores aligned by example index (NaN means
"not scored" and drops that example), or, for corpus-level metrics such as BLEU, a callable
that recomputes the metric on a chosen set of example indices."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInput

# Keep each resampling block at about this many cells, so 1,000 rounds over 100,000 examples
# cost tens of megabytes at a time instead of 800 MB for one index matrix.
_BLOCK_CELLS = 1 << 21
# Exact sign-flip enumeration up to this many examples (2**16 = 65,536 flips, a few MB).
_EXACT_MAX_N = 16


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided confidence interval over n examples."""

    value: float
    lo: float
    hi: float
    n: int


@dataclass(frozen=True)
class PairedDelta:
    """tuned minus base on the examples both were scored on, with its interval and p-values."""

    delta: float
    lo: float
    hi: float
    p_bootstrap: float
    p_permutation: float
    n: int
    significant: bool


# --- validation -----------------------------------------------------------------------------


def _check_settings(rounds: object, level: object, alpha: object = 0.05) -> None:
    found: list[str] = []
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        found.append(f"rounds must be a whole number of at least 1, got {rounds!r}")
    if not isinstance(level, (int, float)) or not 0.0 < float(level) < 1.0:
        found.append(f"level must be strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    if not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 1.0:
        found.append(f"alpha must be strictly between 0 and 1 (e.g. 0.05), got {alpha!r}")
    if found:
        raise InvalidInput("; ".join(found))


def _scores(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numbers (one score per example): {exc}") from None
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one score per example (1-D), got shape {arr.shape}")
    if np.isinf(arr).any():
        raise InvalidInput(f"{name} holds infinite scores; use NaN for unscored examples")
    return arr


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidInput(
            f"n (number of examples) must be a whole number of at least 1, got {n!r}"
        )
    return int(n)


# --- resampling primitives ------------------------------------------------------------------


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    # Independent streams for the bootstrap and the permutation test, so changing `rounds` for
    # one never shifts the draws of the other.
    boot, perm = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(boot), np.random.default_rng(perm)


def _index_blocks(rng: np.random.Generator, n: int, rounds: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples as (rows, n) index matrices, `rounds` rows in all."""
    per_block = max(1, _BLOCK_CELLS // n)
    for start in range(0, rounds, per_block):
        yield rng.integers(0, n, size=(min(per_block, rounds - start), n))


def _flip_blocks(rng: np.random.Generator, n: int, rounds: int) -> Iterator[np.ndarray]:
    """Random swap masks as (rows, n) bool matrices: True keeps the example's pair as is."""
    per_block = max(1, _BLOCK_CELLS // n)
    for start in range(0, rounds, per_block):
        yield rng.integers(0, 2, size=(min(per_block, rounds - start), n)).astype(bool)


def _all_flips(n: int) -> np.ndarray:
    """Every one of the 2**n swap masks, as a (2**n, n) bool matrix (row 2**n - 1 is all True)."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


def _percentile_interval(boot: np.ndarray, level: float) -> tuple[float, float]:
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(boot, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def _bootstrap_p(boot: np.ndarray) -> float:
    """Two-sided paired bootstrap p-value (Koehn 2004, made two-sided).

    p = min(1, 2 * (min(#{delta* <= 0}, #{delta* >= 0}) + 1) / (B + 1)) over the B resampled
    deltas delta*. Ties at 0 count against the difference (conservative), and the +1 keeps a
    finite number of resamples from ever claiming p = 0.
    """
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return float("nan")
    other_side = min(int((boot <= 0).sum()), int((boot >= 0).sum()))
    return float(min(1.0, 2.0 * (other_side + 1) / (boot.size + 1)))


def _tie_tolerance(scale: float) -> float:
    # A resampled statistic equal to the observed one must count as "as extreme" even when
    # summing in another order changed its last bits (as scipy.stats.permutation_test does).
    return 1e-12 * max(scale, 1e-300)


# --- one variant ----------------------------------------------------------------------------


def bootstrap_mean(
    values: Sequence[float] | np.ndarray, rounds: int = 1000, level: float = 0.95, seed: int = 0
) -> Estimate:
    """Mean of per-example scores with a percentile bootstrap interval.

    Method: drop NaN (unscored) examples, leaving n; draw `rounds` resamples of n examples
    with replacement (as index matrices), take each resample's mean, and report the
    (1-level)/2 and (1+level)/2 quantiles of those means (Efron's percentile interval).
    With no scored example everything is NaN and n = 0.
    """
    _check_settings(rounds, level)
    arr = _scores(values, "values")
    arr = arr[~np.isnan(arr)]
    n = int(arr.size)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng, _ = _streams(seed)
    boot = np.concatenate([arr[idx].mean(axis=1) for idx in _index_blocks(rng, n, rounds)])
    lo, hi = _percentile_interval(boot, level)
    return Estimate(float(arr.mean()), lo, hi, n)


def bootstrap_statistic(
    n: int,
    statistic: Callable[[np.ndarray], float],
    rounds: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """A corpus-level metric (e.g. corpus BLEU) with a percentile bootstrap interval.

    Method: `statistic(indices)` recomputes the metric on the examples at `indices` (a 1-D
    int array, repeats allowed). The value is statistic(arange(n)); the interval is the
    percentile interval of statistic over `rounds` resamples of n indices with replacement.
    Resamples where the statistic is NaN are left out of the quantiles.
    """
    _check_settings(rounds, level)
    n = _check_n(n)
    rng, _ = _streams(seed)
    boot = np.array(
        [float(statistic(row)) for idx in _index_blocks(rng, n, rounds) for row in idx]
    )
    lo, hi = _percentile_interval(boot, level)
    return Estimate(float(statistic(np.arange(n))), lo, hi, n)


# --- tuned against base ---------------------------------------------------------------------


def _sign_flip_p(d: np.ndarray, rounds: int, rng: np.random.Generator) -> float:
    """Two-sided paired sign-flip permutation p-value for mean(d) = 0.

    Under the null (tuned and base exchangeable within each example) each difference is as
    likely to have either sign. The statistic is |sum(s * d)| over sign vectors s. For
    n <= 16 all 2**n sign vectors are enumerated and p = #{|T_s| >= |T_obs|} / 2**n (exact;
    the identity is among them). Otherwise `rounds` random sign vectors are drawn and
    p = (#{|T_s| >= |T_obs|} + 1) / (rounds + 1), which keeps the test valid (Phipson &
    Smyth 2010).
    """
    n = d.size
    observed = abs(float(d.sum()))
    threshold = observed - _tie_tolerance(float(np.abs(d).sum()))
    if n <= _EXACT_MAX_N:
        signs = np.where(_all_flips(n), 1.0, -1.0)
        return float((np.abs(signs @ d) >= threshold).mean())
    extreme = 0
    for keep in _flip_blocks(rng, n, rounds):
        extreme += int((np.abs(np.where(keep, 1.0, -1.0) @ d) >= threshold).sum())
    return (extreme + 1) / (rounds + 1)


def paired_delta(
    tuned: Sequence[float] | np.ndarray,
    base: Sequence[float] | np.ndarray,
    rounds: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedDelta:
    """tuned minus base on the same examples, with a paired bootstrap interval and two tests.

    Method: keep the examples where both scores are present (n of them) and take the
    per-example differences d. delta = mean(d). The interval is the percentile interval of
    mean(d) over `rounds` paired resamples (examples resampled, each keeping its own pair).
    p_bootstrap is defined in `_bootstrap_p`: twice the share of resampled deltas on the
    other side of 0 (ties included, +1 corrected), clipped to 1. p_permutation is the
    two-sided paired sign-flip test of `_sign_flip_p` (exact for n <= 16). significant is
    p_permutation < alpha: the permutation test needs no large-sample argument, the
    bootstrap p does. With n = 0 everything is NaN and significant is False.
    """
    _check_settings(rounds, level, alpha)
    t = _scores(tuned, "tuned")
    b = _scores(base, "base")
    if t.shape != b.shape:
        raise InvalidInput(
            f"tuned and base must score the same examples in the same order, got {t.size} "
            f"and {b.size} scores"
        )
    both = ~(np.isnan(t) | np.isnan(b))
    d = (t - b)[both]
    n = int(d.size)
    if n == 0:
        nan = float("nan")
        return PairedDelta(nan, nan, nan, nan, nan, 0, False)
    boot_rng, perm_rng = _streams(seed)
    boot = np.concatenate([d[idx].mean(axis=1) for idx in _index_blocks(boot_rng, n, rounds)])
    lo, hi = _percentile_interval(boot, level)
    p_perm = _sign_flip_p(d, rounds, perm_rng)
    return PairedDelta(
        delta=float(d.mean()),
        lo=lo,
        hi=hi,
        p_bootstrap=_bootstrap_p(boot),
        p_permutation=p_perm,
        n=n,
        significant=bool(p_perm < alpha),
    )


def paired_delta_statistic(
    n: int,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    rounds: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedDelta:
    """`paired_delta` for corpus-level metrics (e.g. corpus BLEU of tuned against base).

    `statistic(indices, from_tuned)` recomputes the metric on the examples at `indices`,
    taking example indices[j]'s output from the tuned variant where from_tuned[j] is True and
    from the base otherwise. One callable instead of one per variant because the permutation
    test has to mix the two variants' outputs within one corpus.

    Method: delta = statistic(all, True) - statistic(all, False). Interval and p_bootstrap:
    as in `paired_delta`, both variants scored on the same resampled indices each round.
    p_permutation: paired approximate randomization (Riezler & Maxwell 2005): each example's
    two outputs are swapped at random, the statistic is |M(swapped) - M(rest)|, and
    p = (#{as extreme} + 1) / (rounds + 1); when 2**n <= rounds all swaps are enumerated
    instead and p is exact. (The threshold differs from `paired_delta`'s n <= 16 because each
    swap costs two metric computations here.) significant is p_permutation < alpha.
    """
    _check_settings(rounds, level, alpha)
    n = _check_n(n)
    boot_rng, perm_rng = _streams(seed)
    yes = np.ones(n, dtype=bool)  # the all-base corpus is ~yes inside delta_on

    def delta_on(indices: np.ndarray, from_tuned: np.ndarray) -> float:
        return float(statistic(indices, from_tuned)) - float(statistic(indices, ~from_tuned))

    everyone = np.arange(n)
    observed = delta_on(everyone, yes)
    boot = np.array([delta_on(row, yes) for idx in _index_blocks(boot_rng, n, rounds)
                     for row in idx])
    lo, hi = _percentile_interval(boot, level)

    threshold = abs(observed) - _tie_tolerance(abs(observed))
    if 2**n <= rounds:
        swaps = _all_flips(n)
        p_perm = float(np.mean([abs(delta_on(everyone, s)) >= threshold for s in swaps]))
    else:
        extreme = sum(
            abs(delta_on(everyone, keep)) >= threshold
            for block in _flip_blocks(perm_rng, n, rounds)
            for keep in block
        )
        p_perm = (int(extreme) + 1) / (rounds + 1)
    return PairedDelta(
        delta=observed,
        lo=lo,
        hi=hi,
        p_bootstrap=_bootstrap_p(boot),
        p_permutation=p_perm,
        n=n,
        significant=bool(p_perm < alpha),
    )


# --- many tests at once ---------------------------------------------------------------------


def _pvalues(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    p = _scores(pvalues, "pvalues")
    bad = [float(x) for x in p[~np.isnan(p)] if not 0.0 <= x <= 1.0]
    if bad:
        raise InvalidInput(f"pvalues must lie between 0 and 1, got {bad[:5]}")
    return p


def holm(pvalues: Sequence[float] | np.ndarray) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Method (step-down): sort the m present p-values ascending, p_(1) <= ... <= p_(m); the
    adjusted p_(i) is max_{j <= i} min(1, (m - j + 1) * p_(j)). The running max keeps the
    adjusted values in the same order as the raw ones. Rejecting where adjusted < alpha
    controls the family-wise error rate at alpha. NaN entries stay NaN and do not count in m.
    """
    p = _pvalues(pvalues)
    out = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    m = present.size
    if m:
        order = present[np.argsort(p[present], kind="stable")]
        scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
        out[order] = np.maximum.accumulate(scaled)
    return [float(x) for x in out]


def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    Method (step-up): sort the m present p-values ascending; the adjusted p_(i) is
    min_{j >= i} min(1, m * p_(j) / j). Rejecting where adjusted < alpha controls the false
    discovery rate at alpha for independent or positively dependent tests. NaN entries stay
    NaN and do not count in m.
    """
    p = _pvalues(pvalues)
    out = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    m = present.size
    if m:
        order = present[np.argsort(p[present], kind="stable")]
        scaled = np.minimum(1.0, m * p[order] / np.arange(1, m + 1))
        out[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    return [float(x) for x in out]


def multiple_comparisons_note(n_tests: int, alpha: float = 0.05) -> str:
    """One sentence for the dashboard on why raw p-values mislead when many are shown."""
    if isinstance(n_tests, bool) or not isinstance(n_tests, (int, np.integer)) or n_tests < 0:
        raise InvalidInput(f"n_tests must be a whole number of 0 or more, got {n_tests!r}")
    if not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 1.0:
        raise InvalidInput(f"alpha must be strictly between 0 and 1 (e.g. 0.05), got {alpha!r}")
    if n_tests <= 1:
        return (f"{int(n_tests)} comparison at alpha = {alpha:g}: no correction for multiple "
                "comparisons is needed.")
    expected = n_tests * alpha
    return (
        f"With {int(n_tests)} comparisons at alpha = {alpha:g}, about {expected:.2g} would look "
        "significant by chance even if the fine-tune changed nothing; the adjusted p-values "
        "shown (Holm, and Benjamini-Hochberg) account for this."
    )
