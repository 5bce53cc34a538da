"""The regression gate: a fine-tune against its base on the same probe items, per category and pooled.

Each item was answered right or wrong by both; b items went right -> wrong, c wrong -> right,
and the drop in accuracy is (b - c) / n. The gate asks two one-sided questions:

- **per category**: did it get worse by more than its limit X (`max_drop_points`, per category
  overridable)? H0: true drop <= X against H1: true drop > X;
- **pooled** over all items (each item weighing the same, paired): did it get worse by more than
  `max_pooled_drop_points`? Same test on the summed b, c, n.

The rule, in one place. A category
- is **inconclusive** when it has fewer than `min_items` items (it is not tested);
- **fails** when its drop exceeds X and (if `require_significance`) its Holm-adjusted one-sided
  p-value over the tested categories is below `alpha`;
- is **inconclusive** when the drop exceeds X but the test does not reject (the items cannot tell
  a drop past the limit from one within it);
- **passes** otherwise.
The pooled result follows the same rule against its own limit at `alpha` (it has `min_items`
too). The gate fails if any category or the pooled result fails, is inconclusive if any is, and
passes otherwise.

Why this test. "Worse by more than X" is a test against a margin on paired proportions, so the
statistic is Tango's (1998) score statistic for the paired difference at the margin (constrained
maximum likelihood under H0), with Laud's (2017) skewness correction and the N/(N-1) variance
bias correction (the "SCAS" method of ratesci::pairbinci). The plain score test is liberal where
few items flip (exactly enumerated one-sided size up to 0.088 at nominal 0.05 with 60 items and a
1% wrong -> right rate); the corrected one stays within about 1.3x nominal at every size and flip
rate checked (worst 0.064 at 100 items) and is near nominal from 200 items. The old rule (point
drop > X and McNemar's two-sided test of drop > 0) answered another question: seven categories each
sitting exactly at the limit failed 37% of simulated runs at 50 items a category, 98% at 200.

Families. The categories are one family, Holm-corrected, so a wrong category fail happens at most
`alpha` of the time when every category sits at its limit. The pooled question is its own, tested
at `alpha`, not in the Holm family: it is the only question that sees a broad decline, and splitting
`alpha` with seven categories would make it nearly blind. Any wrong fail of the gate is then bounded
by Bonferroni at alpha * (1 + k/m), k being the categories that can sit at their limit while the
pooled drop is within its own; with the defaults (5 and 2 points, 7 equal categories) k <= 2, so
0.064 at alpha = 0.05. benchmarks/trust_gate.py measures it: 0.055 at that corner with 2% of items
flipping up, 0.066 with 15% (the tests' own small excess over nominal).

What the suite can see. Every verdict states the smallest drop detectable at 80% power: the normal
approximation to the same score test (Nam 1997; at a zero limit it is Connor's 1987 McNemar
formula), holding the fine-tune's wrong -> right rate at the run's own (c / n; 0 when nothing
flipped up, the most favourable case), at alpha / m for a category (the level a lone regression
must clear under Holm) and alpha pooled; checked against exact power, it errs on the safe side in
small categories (84-90% power at the drop it states for 50-60 items). The pooled verdict also shows the one-sided lower
confidence bound on the drop at 1 - alpha (the inverted test: it exceeds the limit exactly when
the pooled test rejects). Pooling items of categories with different drops makes the pooled test
conservative (the homogeneous variance is the larger).

METHOD_VERSION is part of a stored gate's fingerprint (core.regression.runs): a gate computed by an
older rule is judged again when read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binomtest, norm

from core.config import RegressionSettings
from core.errors import InvalidInput

METHOD_VERSION = 2  # 1: two-sided McNemar + point drop, no pooled verdict; 2: this module's rule
POWER = 0.8
VERDICTS = ("pass", "fail", "inconclusive")
PASS, FAIL, INCONCLUSIVE = 0, 1, 2
ADVICE = ("train with a lower LoRA rank or fewer epochs / a lower learning rate",
          "pick an earlier checkpoint (see the checkpoint sweep)",
          "mix general instruction data into the training set (a few percent up to a third)")


@dataclass(frozen=True)
class Thresholds:
    max_drop_points: float
    require_significance: bool
    alpha: float
    min_items: int


def parse_overrides(text: str) -> dict[str, float]:
    """'safety=2, reasoning=8' -> {"safety": 2.0, "reasoning": 8.0}; a bad entry names itself."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            points = float(value)
            if not sep or not name.strip() or not 0 <= points <= 100:
                raise ValueError
        except ValueError:
            raise InvalidInput(f"regression.category_max_drop: {part!r} must look like 'category=points' with points "
                               "in 0..100, e.g. 'safety=2, reasoning=8'.") from None
        out[name.strip()] = points
    return out


def thresholds(settings: RegressionSettings, categories: list[str]) -> dict[str, Thresholds]:
    overrides = parse_overrides(settings.category_max_drop)
    unknown = sorted(set(overrides) - set(categories))
    if unknown:
        raise InvalidInput(f"regression.category_max_drop: no category {', '.join(unknown)}; the suite has "
                           f"{', '.join(categories)}.")
    return {c: Thresholds(overrides.get(c, settings.max_drop_points), settings.require_significance, settings.alpha,
                          settings.min_items) for c in categories}


# ---- statistics (vectorised: the benchmark runs the same code on thousands of studies) ----------

def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (the rule before METHOD_VERSION 2)."""
    if b + c == 0:
        return 1.0
    return float(binomtest(min(b, c), b + c, 0.5).pvalue)


def wilson(k: int, n: int, level: float) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def drop_score(b, c, n, margin):
    """Skewness-corrected score statistic (Tango 1998 + Laud 2017, with the N/(N-1) correction) for
    H0: drop = margin, drop = P(right -> wrong) - P(wrong -> right), as fractions. Large values speak
    for a drop past the margin. Arrays broadcast."""
    b, c, n, d = (np.asarray(x, dtype=float) for x in (b, c, n, margin))
    with np.errstate(divide="ignore", invalid="ignore"):
        # the wrong -> right rate maximising the likelihood under the margin (Tango's quadratic)
        qa = 2 * n
        qb = -b - c + (2 * n - b + c) * d
        qc = -c * d * (1 - d)
        up = np.maximum(0.0, (np.sqrt(np.maximum(qb * qb - 4 * qa * qc, 0.0)) - qb) / (2 * qa))
        down = up + d                                      # right -> wrong rate under H0
        flips = up + down
        var = np.maximum(flips - d * d, 0.0) / n * (n / np.maximum(n - 1, 1))
        m3 = (down * (1 - d) ** 3 - up * (1 + d) ** 3 - (1 - flips) * d ** 3) / (n * n)
        s = (b - c) / n - d
        z = np.where(var > 0, s / np.sqrt(var), np.sign(s) * np.inf)
        z = np.where(s == 0, 0.0, z)
        g = np.where((var > 1e-14) & (np.abs(m3) > 1e-14), m3 / (6 * var ** 1.5), 0.0)
        # solve g*t^2 + t - (z + g) = 0 for t (the corrected score), in its cancellation-free form
        corrected = 2 * (z + g) / (1 + np.sqrt(np.maximum(0.0, 1 + 4 * g * (z + g))))
        return np.where(np.isfinite(z) & (g != 0), corrected, z)


def drop_pvalue(b, c, n, margin):
    """One-sided p-value of H0: drop <= margin (fractions)."""
    return norm.sf(drop_score(b, c, n, margin))


def drop_bound(b: int, c: int, n: int, level: float, upper: bool = False) -> float:
    """One-sided confidence bound for the drop (a fraction) by inverting the score test: the lower
    bound exceeds a margin exactly when the test at 1 - level rejects drop <= margin."""
    target = norm.ppf(level) * (-1 if upper else 1)
    f = lambda d: float(drop_score(b, c, n, d)) - target  # noqa: E731  (decreasing in d)
    lo, hi = -1 + 1e-9, 1 - 1e-9
    if f(lo) <= 0:
        return -1.0
    if f(hi) >= 0:
        return 1.0
    return float(brentq(f, lo, hi, xtol=1e-10))


def holm(p) -> np.ndarray:
    """Holm-adjusted p-values along the last axis; NaN marks an untested hypothesis (not counted)."""
    p = np.atleast_1d(np.asarray(p, dtype=float))
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1)
    tested = (~np.isnan(p)).sum(axis=-1, keepdims=True)
    factor = tested - np.arange(p.shape[-1])
    adjusted = np.minimum(1.0, np.fmax.accumulate(np.where(np.isnan(ranked), np.nan, factor * ranked), axis=-1))
    out = np.empty_like(p)
    np.put_along_axis(out, order, np.where(np.isnan(ranked), np.nan, adjusted), axis=-1)
    return out


def detectable_drop(n: int, wrong_to_right: int, limit: float, alpha: float, power: float = POWER) -> float | None:
    """Smallest true drop (a fraction) the one-sided score test at `alpha` finds past `limit` with
    `power`, n items, holding the wrong -> right rate at wrong_to_right / n; None when no drop is."""
    if n < 2:
        return None
    r = wrong_to_right / n
    za = norm.isf(alpha)

    def shortfall(drop: float) -> float:
        down = r + drop
        qb = -(r + down) + (2 - down + r) * limit
        qc = -r * limit * (1 - limit)
        up0 = (math.sqrt(max(qb * qb - 8 * qc, 0.0)) - qb) / 4
        sd0 = math.sqrt(max(2 * up0 + limit * (1 - limit), 0.0))
        sd1 = math.sqrt(max(2 * r + drop - drop * drop, 1e-300))
        return norm.cdf((math.sqrt(n) * (drop - limit) - za * sd0) / sd1) - power

    top = 1 - 2 * r
    if top <= limit or shortfall(top) < 0:
        return None
    return float(brentq(shortfall, limit + 1e-12, top, xtol=1e-9))


def decide(b, c, n, limits, pooled_limit: float, alpha: float, min_items: int, require_significance: bool) -> dict:
    """The rule on counts. b, c: (studies, categories) right -> wrong and wrong -> right counts; n and
    limits (fractions): per category. Returns per-category p, Holm-adjusted p and verdict codes, the
    pooled p and verdict, and the gate's verdict per study."""
    b, c = np.atleast_2d(b), np.atleast_2d(c)
    n, limits = np.asarray(n, dtype=float), np.asarray(limits, dtype=float)
    tested = n >= min_items
    p = np.where(n > 0, drop_pvalue(b, c, np.maximum(n, 1), limits), np.nan)  # shown for every category...
    p_adj = holm(np.where(tested, p, np.nan))                                   # ...a family of the tested ones
    cat = _verdict(b - c, n, limits, p_adj, alpha, require_significance, tested)
    nb, nc, nn = b.sum(axis=-1), c.sum(axis=-1), n.sum()
    pooled_p = drop_pvalue(nb, nc, max(nn, 1), pooled_limit) if nn > 0 else np.full(nb.shape, np.nan)
    pooled = _verdict(nb - nc, nn, pooled_limit, pooled_p, alpha, require_significance, nn >= min_items)
    both = np.concatenate([cat, pooled[:, None]], axis=-1)
    gate = np.where((both == FAIL).any(axis=-1), FAIL,
                    np.where((both == INCONCLUSIVE).any(axis=-1), INCONCLUSIVE, PASS))
    return {"p": p, "p_adjusted": p_adj, "verdict": cat, "pooled_p": pooled_p, "pooled_verdict": pooled, "gate": gate}


def _verdict(net, n, limit, p, alpha, require_significance, tested):
    past = 100 * np.asarray(net) > 100 * np.asarray(limit) * n + 1e-9  # integer-exact: 3 of 60 is 5.0, not past 5
    sure = (p < alpha) if require_significance else np.ones_like(past)
    return np.where(~np.asarray(tested), INCONCLUSIVE, np.where(past & sure, FAIL, np.where(past, INCONCLUSIVE, PASS)))


# ---- the verdict as stored and shown ------------------------------------------------------------

@dataclass
class CategoryResult:
    category: str
    n: int
    base_correct: int
    tuned_correct: int
    base_acc: float
    base_lo: float
    base_hi: float
    tuned_acc: float
    tuned_lo: float
    tuned_hi: float
    drop_points: float       # base - tuned, in percentage points (negative: the fine-tune is better)
    right_to_wrong: int      # b
    wrong_to_right: int      # c
    p: float | None          # one-sided: drop > max_drop_points, before Holm (None: no items)
    max_drop_points: float
    verdict: str
    reason: str
    p_adjusted: float | None = None          # Holm over the tested categories (pooled: p); None: not tested
    detectable_drop_points: float | None = None  # smallest drop found past the limit at 80% power
    lower_points: float | None = None        # pooled only: one-sided lower bound on the drop at 1 - alpha
    family: int = 1                          # tests in its Holm family


@dataclass
class GateResult:
    verdict: str
    categories: list[CategoryResult]
    overall: CategoryResult                  # the pooled question, all items weighing the same
    reasons: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    method: int = METHOD_VERSION
    alpha: float = 0.05
    detectable: str = ""                     # what this suite can see, in one line

    def to_dict(self) -> dict:
        return asdict(self)


def _points(x: float | None) -> str:
    return "none (too few items)" if x is None else f"{x:.1f} points"


def headline(detail: dict) -> list[str]:
    """The pooled verdict and what the suite can see, one line each, from a stored gate's detail (a
    gate of an older rule, which had no pooled verdict, says so)."""
    pooled = detail.get("overall", {})
    if detail.get("method", 1) < METHOD_VERSION:
        return [f"All {pooled.get('n', 0)} items: fell {pooled.get('drop_points', 0.0):.1f} points (an older rule "
                "without a pooled verdict; the gate is judged again when opened)."]
    return [f"Pooled over all {pooled['n']} items: {pooled['verdict']}; {pooled['reason']}.", detail["detectable"]]


def _counts(category: str, base: list[bool], tuned: list[bool]) -> tuple[int, int, int, int, int]:
    if len(base) != len(tuned):
        raise InvalidInput(f"{category}: {len(base)} base outcomes but {len(tuned)} fine-tune outcomes")
    b = sum(1 for x, y in zip(base, tuned) if x and not y)
    c = sum(1 for x, y in zip(base, tuned) if y and not x)
    return len(base), sum(base), sum(tuned), b, c


def _result(category: str, counts: tuple, limit: float, p: float, p_adj: float, code: int, th: Thresholds,
            level: float, family: int, pooled: bool) -> CategoryResult:
    n, kb, kt, b, c = counts
    drop = 100.0 * (kb - kt) / n if n else math.nan
    test_alpha = th.alpha if pooled else th.alpha / max(family, 1)
    mdd = detectable_drop(n, c, limit / 100, test_alpha)
    mdd_points = None if mdd is None else round(100 * mdd, 2)
    lower = round(100 * drop_bound(b, c, n, 1 - th.alpha), 2) if pooled and n >= 2 else None
    flips = f"{b} right -> wrong, {c} wrong -> right"
    sees = f"detects a drop of {_points(mdd_points)} at 80% power"
    test = ("p = {:.2g}, one-sided".format(p_adj) + ("" if pooled or family == 1 else f", Holm over {family}")
            if p_adj is not None and not math.isnan(p_adj) else "")
    bound = "" if lower is None else (f" (with {100 * (1 - th.alpha):g}% confidence the drop is at least {lower:.1f} "
                                       "points" + (", i.e. at most a gain of {:.1f})".format(-lower) if lower < 0 else ")"))
    if code == INCONCLUSIVE and n < th.min_items:
        reason = f"{n} items; at least {th.min_items} are needed for a verdict; {sees}"
    elif code == FAIL:
        why = test if th.require_significance else "significance not required"
        reason = f"accuracy fell {drop:.1f} points{bound}, more than its limit of {limit:g} ({why}); {flips}; {sees}"
    elif code == INCONCLUSIVE:
        reason = (f"accuracy fell {drop:.1f} points{bound} (limit {limit:g}) but {test} is not below {th.alpha:g}: the "
                  f"items cannot tell whether it fell more than {limit:g}; {flips}; {sees}")
    else:
        reason = (f"{'fell' if drop > 0 else 'rose'} {abs(drop):.1f} points{bound} (limit {limit:g}); {flips}; {sees}")
    (blo, bhi), (tlo, thi) = wilson(kb, n, level), wilson(kt, n, level)
    clean = lambda x: None if x is None or math.isnan(x) else float(x)  # noqa: E731  (stored as JSON)
    return CategoryResult(category, n, kb, kt, kb / n if n else math.nan, blo, bhi, kt / n if n else math.nan, tlo, thi,
                          drop, b, c, clean(p), limit, VERDICTS[code], reason, clean(p_adj), mdd_points, lower, family)


def judge_category(category: str, base: list[bool], tuned: list[bool], th: Thresholds,
                   level: float = 0.95) -> CategoryResult:
    """One category on its own (a family of one); `base` and `tuned` are aligned item by item."""
    counts = _counts(category, base, tuned)
    n, _, _, b, c = counts
    out = decide([[b]], [[c]], [n], [th.max_drop_points / 100], th.max_drop_points / 100, th.alpha, th.min_items,
                 th.require_significance)
    p = float(out["p"][0, 0])
    return _result(category, counts, th.max_drop_points, p, float(out["p_adjusted"][0, 0]),
                   int(out["verdict"][0, 0]), th, level, 1, pooled=False)


def judge(outcomes: list[tuple[str, bool, bool]], settings: RegressionSettings,
          categories: list[str] | None = None) -> GateResult:
    """The gate from per-item outcomes (category, base right, fine-tune right)."""
    names = categories or sorted({c for c, _, _ in outcomes})
    limits = thresholds(settings, names)
    counts = []
    for name in names:
        rows = [(b, t) for c, b, t in outcomes if c == name]
        counts.append(_counts(name, [b for b, _ in rows], [t for _, t in rows]))
    n = [k[0] for k in counts]
    out = decide([[k[3] for k in counts]], [[k[4] for k in counts]], n,
                 [limits[x].max_drop_points / 100 for x in names], settings.max_pooled_drop_points / 100,
                 settings.alpha, settings.min_items, settings.require_significance)
    family = sum(1 for k in n if k >= settings.min_items)
    results = [_result(name, counts[i], limits[name].max_drop_points, out["p"][0, i], out["p_adjusted"][0, i],
                       int(out["verdict"][0, i]), limits[name], settings.confidence, family, pooled=False)
               for i, name in enumerate(names)]
    everything = Thresholds(settings.max_pooled_drop_points, settings.require_significance, settings.alpha,
                            settings.min_items)
    pooled_p = float(out["pooled_p"][0])
    pooled_adj = pooled_p if sum(n) >= settings.min_items else math.nan
    overall = _result("all", _counts("all", [b for _, b, _ in outcomes], [t for _, _, t in outcomes]),
                      settings.max_pooled_drop_points, pooled_p, pooled_adj, int(out["pooled_verdict"][0]),
                      everything, settings.confidence, 1, pooled=True)
    verdict = VERDICTS[int(out["gate"][0])]
    reasons = [f"{r.category}: {r.reason}" for r in results if r.verdict != "pass"]
    if overall.verdict != "pass":
        reasons.append(f"all items (pooled): {overall.reason}")
    seen = [r.detectable_drop_points for r in results if r.n >= settings.min_items]
    found = [x for x in seen if x is not None]
    per_category = ("none (too few items)" if not found else f"{min(found):.1f}"
                    + (f"-{max(found):.1f}" if max(found) > min(found) else "") + " points"
                    + (" (none in some)" if len(found) < len(seen) else ""))
    detectable = (f"At 80% power this suite detects a drop of {per_category} in a category (Holm, alpha "
                  f"{settings.alpha:g}/{max(family, 1)}) and of {_points(overall.detectable_drop_points)} pooled.")
    return GateResult(verdict, results, overall, reasons, list(ADVICE) if verdict == "fail" else [], METHOD_VERSION,
                      settings.alpha, detectable)
