"""pass@k for code generation: the unbiased estimator of Chen et al. (2021), "Evaluating Large
Language Models Trained on Code", section 2.1, from n samples per problem of which c pass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.errors import InvalidInput


def _problems(n: object, c: object, k: object) -> list[str]:
    """Every problem with (n, c, k), so one error can report them all together."""
    found: list[str] = []
    ints = {}
    for name, value in (("n", n), ("c", c), ("k", k)):
        # bool is an int subclass; True as a sample count is a bug at the call site, not a 1.
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            found.append(f"{name} must be a whole number, got {value!r}")
        else:
            ints[name] = int(value)
    if "n" in ints and ints["n"] < 1:
        found.append(f"n (samples per problem) must be at least 1, got {ints['n']}")
    if "c" in ints and ints["c"] < 0:
        found.append(f"c (passing samples) must be 0 or more, got {ints['c']}")
    if "k" in ints and ints["k"] < 1:
        found.append(f"k must be at least 1, got {ints['k']}")
    if "n" in ints and "c" in ints and ints["c"] > ints["n"]:
        found.append(f"c ({ints['c']} passing) cannot exceed n ({ints['n']} samples)")
    if "n" in ints and "k" in ints and ints["k"] > ints["n"]:
        found.append(
            f"k ({ints['k']}) cannot exceed n ({ints['n']} samples): draw at least k samples "
            "per problem, or lower k"
        )
    return found


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n passes.

    Method: the unbiased estimator 1 - C(n-c, k) / C(n, k) of Chen et al. (2021), evaluated
    as 1 - prod_{i=n-c+1}^{n} (1 - k/i). The product form never forms the binomials, which
    overflow floats (C(1000, 100) ~ 6e139) and lose all precision as a ratio of huge numbers.
    When n - c < k every k-subset holds a passing sample, so the estimate is exactly 1.

    Raises InvalidInput naming the argument when n, c or k are not whole numbers, n < 1,
    c < 0, k < 1, c > n or k > n.
    """
    found = _problems(n, c, k)
    if found:
        raise InvalidInput("pass@k: " + "; ".join(found))
    n, c, k = int(n), int(c), int(k)
    if n - c < k:
        return 1.0
    # c == 0 gives an empty product (1.0) and so exactly 0.0, as it should.
    i = np.arange(n - c + 1, n + 1, dtype=np.float64)
    return float(1.0 - np.prod(1.0 - k / i))


def pass_at_k_many(ns: Sequence[int], cs: Sequence[int], k: int) -> list[float]:
    """pass@k per problem (problem j had ns[j] samples, cs[j] of them passing), same method as
    `pass_at_k`. Averaging the result over problems gives the benchmark's pass@k.

    Raises InvalidInput listing every problem index whose (n, c, k) is invalid, not just the
    first, and when ns and cs differ in length.
    """
    ns, cs = list(ns), list(cs)
    if len(ns) != len(cs):
        raise InvalidInput(
            f"pass@k: ns and cs must have one entry per problem, got {len(ns)} and {len(cs)}"
        )
    found = [f"problem {j}: {msg}" for j, (n, c) in enumerate(zip(ns, cs))
             for msg in _problems(n, c, k)]
    if found:
        shown = found[:20] + ([f"... and {len(found) - 20} more"] if len(found) > 20 else [])
        raise InvalidInput("pass@k: " + "; ".join(shown))
    return [pass_at_k(n, c, k) for n, c in zip(ns, cs)]


def pass_at_k_table(passed: dict[str, Sequence[float]], problems: Sequence[str],
                    ks: Sequence[int]) -> dict[str, dict[str, list[float]]]:
    """pass@k of every problem, per variant and k: `{variant: {"pass@k": [one per problem]}}`.

    `passed[variant]` holds one 0/1 per sample (NaN: unscored), aligned with `problems`, the
    problem each sample answers; problems come out in order of first appearance, the same
    for every variant, so variants can be compared problem by problem. A problem's n is its
    scored samples and c the passing ones. Only the k no larger than the smallest n of any
    scored (variant, problem) are reported, so every problem of every variant has a defined
    estimate; a problem a variant never answered is NaN.
    """
    bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1]
    if bad:
        raise InvalidInput(f"pass_k: every k must be a whole number of at least 1, got {bad}")
    order = list(dict.fromkeys(problems))
    counts: dict[str, dict[str, list[int]]] = {}
    for variant, values in passed.items():
        if len(values) != len(problems):
            raise InvalidInput(f"pass@k: {variant} has {len(values)} samples but {len(problems)} problem labels")
        nc = counts[variant] = {p: [0, 0] for p in order}
        for problem, value in zip(problems, values):
            if not np.isnan(value):
                nc[problem][0] += 1
                nc[problem][1] += int(value > 0.5)
    scored = [n for nc in counts.values() for n, _ in nc.values() if n]
    if not scored:
        return {}
    usable = sorted({int(k) for k in ks if k <= min(scored)})
    return {variant: {f"pass@{k}": [pass_at_k(n, c, k) if n else float("nan") for n, c in nc.values()]
                      for k in usable}
            for variant, nc in counts.items()}
