"""The regression gate: per category, a fine-tune against its base on the same probe items.

Each item was answered right or wrong by both. Per category: accuracies with Wilson
intervals, the drop in percentage points, the items that flipped (right -> wrong: b,
wrong -> right: c) and McNemar's exact test on them (two-sided binomial on b of b + c at
1/2). A category

- is **inconclusive** when it has fewer than `min_items` items;
- **fails** when its drop exceeds its threshold (`max_drop_points`, per category overridable)
  and, if `require_significance`, McNemar's p is below `alpha`;
- is **inconclusive** when the drop exceeds the threshold but is not significant (the items
  cannot tell a real drop from chance);
- **passes** otherwise.

The gate fails if any category fails, is inconclusive if any is, and passes otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from scipy.stats import binomtest

from core.config import RegressionSettings
from core.errors import InvalidInput

VERDICTS = ("pass", "fail", "inconclusive")
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


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (b: right->wrong, c: wrong->right)."""
    if b + c == 0:
        return 1.0
    return float(binomtest(min(b, c), b + c, 0.5).pvalue)


def wilson(k: int, n: int, level: float) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


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
    p: float                 # McNemar's exact test
    max_drop_points: float
    verdict: str
    reason: str


@dataclass
class GateResult:
    verdict: str
    categories: list[CategoryResult]
    overall: CategoryResult
    reasons: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def judge_category(category: str, base: list[bool], tuned: list[bool], th: Thresholds,
                   level: float = 0.95) -> CategoryResult:
    """One category's comparison; `base` and `tuned` are aligned item by item."""
    if len(base) != len(tuned):
        raise InvalidInput(f"{category}: {len(base)} base outcomes but {len(tuned)} fine-tune outcomes")
    n = len(base)
    kb, kt = sum(base), sum(tuned)
    b = sum(1 for x, y in zip(base, tuned) if x and not y)
    c = sum(1 for x, y in zip(base, tuned) if y and not x)
    p = mcnemar_exact(b, c)
    drop = 100.0 * (kb - kt) / n if n else math.nan
    if n < th.min_items:
        verdict, reason = "inconclusive", f"{n} items; at least {th.min_items} are needed for a verdict"
    elif drop > th.max_drop_points and (p < th.alpha or not th.require_significance):
        verdict, reason = "fail", (f"accuracy fell {drop:.1f} points (limit {th.max_drop_points:g}); "
                                   f"{b} items went right -> wrong, {c} wrong -> right, McNemar p = {p:.3g}")
    elif drop > th.max_drop_points:
        verdict, reason = "inconclusive", (f"accuracy fell {drop:.1f} points (limit {th.max_drop_points:g}) but "
                                           f"McNemar p = {p:.3g} is not below {th.alpha:g}: too few items to tell")
    else:
        verdict, reason = "pass", (f"{'fell' if drop > 0 else 'rose'} {abs(drop):.1f} points "
                                   f"(limit {th.max_drop_points:g}); {b} right -> wrong, {c} wrong -> right")
    (blo, bhi), (tlo, thi) = wilson(kb, n, level), wilson(kt, n, level)
    return CategoryResult(category, n, kb, kt, kb / n if n else math.nan, blo, bhi, kt / n if n else math.nan, tlo,
                          thi, drop, b, c, p, th.max_drop_points, verdict, reason)


def judge(outcomes: list[tuple[str, bool, bool]], settings: RegressionSettings,
          categories: list[str] | None = None) -> GateResult:
    """The gate from per-item outcomes (category, base right, fine-tune right)."""
    names = categories or sorted({c for c, _, _ in outcomes})
    limits = thresholds(settings, names)
    results = []
    for name in names:
        rows = [(b, t) for c, b, t in outcomes if c == name]
        results.append(judge_category(name, [b for b, _ in rows], [t for _, t in rows], limits[name],
                                      settings.confidence))
    everything = Thresholds(settings.max_drop_points, settings.require_significance, settings.alpha,
                            settings.min_items)
    overall = judge_category("all", [b for _, b, _ in outcomes], [t for _, _, t in outcomes], everything,
                             settings.confidence)
    verdicts = {r.verdict for r in results}
    verdict = "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts else "pass"
    reasons = [f"{r.category}: {r.reason}" for r in results if r.verdict != "pass"]
    return GateResult(verdict, results, overall, reasons, list(ADVICE) if verdict == "fail" else [])
