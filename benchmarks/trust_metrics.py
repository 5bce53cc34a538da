"""[trust] item 4, metrics: how often the Metrics page's intervals cover the truth and its tests
cry wolf, by simulation against known truth, for the current methods and the previous ones.

`calibrate()` returns one dict per grid point (benchmarks/bench_trust_calibration.py prints
them). Every point runs `studies` simulated evaluations with a known truth; "old_" figures are
the previous method (summary version 2) on the same simulated data in the same run.

Binary points (n = 24, 100, 400 examples; true rate p = 0.5, 0.8, 0.95, 0.99). The new
method's figures and the old test's false-positive rate are exact (enumerating the binomial,
or the trinomial of the discordant counts, which is all the paired test and interval read),
so a goal cannot pass or fail by simulation noise; `studies` simulated evaluations give the
old percentile bootstrap's coverage and, in the note, a simulated cross-check of the exact ones.
- coverage: the one-variant interval at 95% covers p (new: Agresti-Coull; old: percentile
  bootstrap, 1,000 rounds).
- fpr: the paired test at 5% calls a difference where there is none (new: McNemar's score
  test = Tango's interval excluding 0; old: sign-flip permutation test, 1,000 rounds). Null:
  each prompt has its own difficulty u ~ Beta(p, 1 - p) (mean p; base and tuned correlated
  with rho = 0.5 on the same prompt), and base and tuned each answer it right with
  probability u.
- power: the same test finds the difference when the fine-tune halves the error rate on
  every prompt (tuned right with probability 1 - (1 - u) / 2; true difference (1 - p) / 2).
  The note gives the paired interval's coverage of that true difference (new: Tango; old:
  percentile bootstrap).

Continuous points (n = 24, 100): ROUGE-like scores in [0, 1], skewed with a heap at 0: each
prompt has u ~ Beta(0.6, 1.8) and a variant scores clip(u + N(0, 0.1), 0, 1).
- "continuous n=.. one variant": coverage of the mean's 95% interval (new: bootstrap-t;
  old: percentile bootstrap).
- "continuous paired n=..": fpr under the null (both variants score the same way), power and
  the delta interval's coverage under a skewed alternative (the fine-tune answers 15% of the
  prompts perfectly, 1.0, and the rest as the base does); new: permutation / bootstrap-t hull,
  old: percentile bootstrap interval with the sign-flip test.
- "near-binary paired n=..": the same for field-accuracy-like scores (1.0 with probability
  0.8, else 0, 1/4, 1/2 or 3/4; the fine-tune's 1.0 with probability 0.9): few distinct
  values, where the bootstrap-t alone had 9.5% false positives at n = 24.
Goals: fpr <= 0.065 at nominal 5%, coverage >= 0.93 at nominal 95%, at every point.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import gammaln

from core.metrics.uncertainty import (
    bootstrap_mean,
    paired_continuous,
    paired_delta,
    proportion_interval,
    studentized_mean,
    tango_interval,
)

LEVEL, ALPHA, OLD_ROUNDS, RHO = 0.95, 0.05, 1000, 0.5
BINARY_N, BINARY_P, CONTINUOUS_N = (24, 100, 400), (0.5, 0.8, 0.95, 0.99), (24, 100)
FIX_SHARE, NEAR_BINARY_TOP, NEAR_BINARY_TUNED_TOP = 0.15, 0.8, 0.9


def _row(point: str, studies: int, note: str, **figures: float | None) -> dict:
    out = {"part": "metrics", "point": point, "studies": int(studies), "fpr": None, "coverage": None,
           "power": None, "old_fpr": None, "old_coverage": None, "note": note}
    out.update({k: (None if v is None else float(v)) for k, v in figures.items()})
    return out


# ---- binary ----------------------------------------------------------------------------------
def _paired_counts(rng: np.random.Generator, n: int, p: float, studies: int,
                   better: bool) -> tuple[np.ndarray, np.ndarray]:
    """Discordant counts per study: b (tuned right, base wrong) and c (tuned wrong, base right)."""
    kappa = (1.0 - RHO) / RHO  # Beta(p kappa, (1 - p) kappa) makes two draws on one prompt correlate by RHO
    u = rng.beta(p * kappa, (1.0 - p) * kappa, size=(studies, n))
    base = rng.random((studies, n)) < u
    tuned = rng.random((studies, n)) < (1.0 - (1.0 - u) / 2.0 if better else u)
    return (tuned & ~base).sum(axis=1).astype(float), (~tuned & base).sum(axis=1).astype(float)


def _old_paired_interval(b: np.ndarray, c: np.ndarray, n: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The old percentile bootstrap interval of mean(tuned - base) on 0/1 scores: resampling n examples is
    drawing (b*, c*, rest) from the multinomial of the observed shares."""
    lo, hi = np.empty(b.size), np.empty(b.size)
    for i in range(b.size):
        draws = rng.multinomial(n, [b[i] / n, c[i] / n, 1.0 - (b[i] + c[i]) / n], size=OLD_ROUNDS)
        lo[i], hi[i] = np.quantile((draws[:, 0] - draws[:, 1]) / n, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return lo, hi


def _trinomial(n: int, p10: float, p01: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (b, c) with b + c <= n and its probability when each of n prompts is discordant one way with
    probability p10, the other way with p01 (prompts independent)."""
    b, c = (x.ravel().astype(float) for x in np.meshgrid(np.arange(n + 1), np.arange(n + 1)))
    keep = b + c <= n
    b, c = b[keep], c[keep]
    log_pmf = (gammaln(n + 1) - gammaln(b + 1) - gammaln(c + 1) - gammaln(n - b - c + 1) + b * np.log(p10)
               + c * np.log(p01) + (n - b - c) * np.log1p(-(p10 + p01)))
    return b, c, np.exp(log_pmf)


def _discordance(p: float, better: bool) -> tuple[float, float]:
    """P(tuned right, base wrong) and P(tuned wrong, base right) on one prompt under the simulation's model."""
    kappa = (1.0 - RHO) / RHO
    second = p * (p * kappa + 1.0) / (kappa + 1.0)  # E[u^2] for u ~ Beta(p kappa, (1 - p) kappa)
    if not better:
        return p - second, p - second  # E[u (1 - u)] each way
    return (1.0 - second) / 2.0, (p - second) / 2.0  # E[(1 + u) / 2 (1 - u)], E[(1 - u) / 2 u]


def _old_reject(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """P(the old test's p < ALPHA | b, c): extreme ~ Bin(OLD_ROUNDS, exact sign-flip p), and
    p = (extreme + 1) / (rounds + 1)."""
    exact = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(b, c), b + c, 0.5))
    most = int(np.ceil(ALPHA * (OLD_ROUNDS + 1) - 1) - 1)  # extreme <= most  <=>  p < ALPHA
    return stats.binom.cdf(most, OLD_ROUNDS, exact)


def _binary_point(n: int, p: float, studies: int, rng: np.random.Generator) -> dict:
    """Exact figures by enumeration (binomial for the one-variant interval, trinomial over the discordant
    counts for the paired test and interval, which depend on nothing else); simulated ones in the note as a
    cross-check. The old percentile bootstrap's coverage is simulated (its 1,000 rounds are random)."""
    k = np.arange(n + 1, dtype=float)
    lo, hi = proportion_interval(k, n, LEVEL)
    coverage = float(stats.binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum())
    draws = rng.binomial(n, p, size=studies).astype(float)
    lo, hi = proportion_interval(draws, n, LEVEL)
    sim_coverage = np.mean((lo <= p) & (p <= hi))
    # Resampling n examples of 0/1 scores is drawing Bin(n, k / n) successes.
    boot = rng.binomial(n, (draws / n)[:, None], size=(studies, OLD_ROUNDS)) / n
    old_lo, old_hi = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=1)
    old_coverage = np.mean((old_lo <= p) & (p <= old_hi))

    b, c, weight = _trinomial(n, *_discordance(p, better=False))
    lo, hi = tango_interval(b, c, n, LEVEL)
    fpr = float(weight[(lo > 0) | (hi < 0)].sum())
    old_fpr = float((weight * _old_reject(b, c)).sum())
    sb, sc = _paired_counts(rng, n, p, studies, better=False)
    lo, hi = tango_interval(sb, sc, n, LEVEL)
    sim_fpr = np.mean((lo > 0) | (hi < 0))

    truth = (1.0 - p) / 2.0
    b, c, weight = _trinomial(n, *_discordance(p, better=True))
    lo, hi = tango_interval(b, c, n, LEVEL)
    power = float(weight[lo > 0].sum())
    delta_cover = float(weight[(lo <= truth) & (truth <= hi)].sum())
    old_power = float((weight * _old_reject(b, c) * (b > c)).sum())
    sb, sc = _paired_counts(rng, n, p, studies, better=True)
    lo, hi = tango_interval(sb, sc, n, LEVEL)
    sim_power = np.mean(lo > 0)
    old_lo, old_hi = _old_paired_interval(sb, sc, n, rng)
    old_delta_cover = np.mean((old_lo <= truth) & (truth <= old_hi))
    return _row(f"binary n={n} p={p:g}", studies,
                f"coverage: one variant's 95% interval (Agresti-Coull, exact by enumeration; simulated "
                f"{sim_coverage:.3f}; old percentile bootstrap, simulated); fpr/power: paired test at 5% (McNemar "
                f"score, exact over the discordant counts; simulated {sim_fpr:.3f}/{sim_power:.3f}; old sign-flip, "
                f"{OLD_ROUNDS} rounds, exact), null: same rate, rho={RHO} on a prompt; alternative: the fine-tune "
                f"halves the error rate (true difference {truth:.3f}), old power {old_power:.3f}; the paired 95% "
                f"interval covers it in {delta_cover:.3f} (Tango, exact; old percentile bootstrap, simulated "
                f"{old_delta_cover:.3f})",
                fpr=fpr, coverage=coverage, power=power, old_fpr=old_fpr, old_coverage=old_coverage)


# ---- continuous ------------------------------------------------------------------------------
def _rouge_like(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(u + rng.normal(0.0, 0.1, u.shape), 0.0, 1.0)


def _near_binary(rng: np.random.Generator, n: int, top: float) -> np.ndarray:
    return np.where(rng.random(n) < top, 1.0, rng.integers(0, 4, n) / 4.0)


def _continuous_points(n: int, studies: int, rng: np.random.Generator, mean_score: float) -> list[dict]:
    one = old_one = 0
    fp = old_fp = hit = old_hit = cover = old_cover = 0
    nb_fp = nb_old_fp = nb_hit = nb_old_hit = nb_cover = nb_old_cover = 0
    truth = FIX_SHARE * (1.0 - mean_score)
    nb_truth = (NEAR_BINARY_TUNED_TOP - NEAR_BINARY_TOP) * (1.0 - 0.375)
    for s in range(studies):
        u = rng.beta(0.6, 1.8, n)
        base = _rouge_like(u, rng)
        est, old = studentized_mean(base, seed=s), bootstrap_mean(base, rounds=OLD_ROUNDS, seed=s)
        one += est.lo <= mean_score <= est.hi
        old_one += old.lo <= mean_score <= old.hi

        tuned = _rouge_like(u, rng)
        fp += paired_continuous(tuned, base, LEVEL, seed=s).significant
        old_fp += paired_delta(tuned, base, rounds=OLD_ROUNDS, seed=s).significant
        tuned = np.where(rng.random(n) < FIX_SHARE, 1.0, tuned)
        new, old = paired_continuous(tuned, base, LEVEL, seed=s), paired_delta(tuned, base, rounds=OLD_ROUNDS, seed=s)
        hit += new.significant and new.delta > 0
        old_hit += old.significant and old.delta > 0
        cover += new.lo <= truth <= new.hi
        old_cover += old.lo <= truth <= old.hi

        nb_base = _near_binary(rng, n, NEAR_BINARY_TOP)
        nb_tuned = _near_binary(rng, n, NEAR_BINARY_TOP)
        nb_fp += paired_continuous(nb_tuned, nb_base, LEVEL, seed=s).significant
        nb_old_fp += paired_delta(nb_tuned, nb_base, rounds=OLD_ROUNDS, seed=s).significant
        nb_tuned = _near_binary(rng, n, NEAR_BINARY_TUNED_TOP)
        new = paired_continuous(nb_tuned, nb_base, LEVEL, seed=s)
        old = paired_delta(nb_tuned, nb_base, rounds=OLD_ROUNDS, seed=s)
        nb_hit += new.significant and new.delta > 0
        nb_old_hit += old.significant and old.delta > 0
        nb_cover += new.lo <= nb_truth <= new.hi
        nb_old_cover += old.lo <= nb_truth <= old.hi
    k = float(studies)
    return [
        _row(f"continuous n={n} one variant", studies,
             f"ROUGE-like scores (mean {mean_score:.3f}): the mean's 95% interval, bootstrap-t (old: percentile "
             f"bootstrap, {OLD_ROUNDS} rounds)", coverage=one / k, old_coverage=old_one / k),
        _row(f"continuous paired n={n}", studies,
             f"ROUGE-like scores; fpr: 5% test under no difference; power and coverage: the fine-tune scores 1.0 on "
             f"{FIX_SHARE:.0%} of prompts (true difference {truth:.3f}); new: permutation/bootstrap-t hull, old: "
             f"sign-flip test and percentile bootstrap interval; old power {old_hit / k:.3f}",
             fpr=fp / k, coverage=cover / k, power=hit / k, old_fpr=old_fp / k, old_coverage=old_cover / k),
        _row(f"near-binary paired n={n}", studies,
             f"field-accuracy-like scores (few distinct values); alternative raises P(1.0) from {NEAR_BINARY_TOP} to "
             f"{NEAR_BINARY_TUNED_TOP} (true difference {nb_truth:.4f}); old power {nb_old_hit / k:.3f}",
             fpr=nb_fp / k, coverage=nb_cover / k, power=nb_hit / k, old_fpr=nb_old_fp / k,
             old_coverage=nb_old_cover / k),
    ]


def _rouge_like_mean(seed: int) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([_rouge_like(rng.beta(0.6, 1.8, 1_000_000), rng).mean() for _ in range(4)]))


def calibrate(studies: int = 1000, seed: int = 0) -> list[dict]:
    """One dict per grid point: {"part": "metrics", "point", "studies", "fpr", "coverage", "power",
    "old_fpr", "old_coverage", "note"} (a figure a point does not measure is None)."""
    children = iter(np.random.SeedSequence(seed).spawn(len(BINARY_N) * len(BINARY_P) + len(CONTINUOUS_N) + 1))
    rows = [_binary_point(n, p, studies, np.random.default_rng(next(children)))
            for n in BINARY_N for p in BINARY_P]
    mean_score = _rouge_like_mean(int(np.random.default_rng(next(children)).integers(2**31)))
    for n in CONTINUOUS_N:
        rows += _continuous_points(n, studies, np.random.default_rng(next(children)), mean_score)
    return rows
