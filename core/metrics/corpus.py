"""Corpus-level metrics (corpus BLEU, an `evaluate` module that returns one number for a whole
set): a score that is not a mean of per-example scores, so its uncertainty comes from
recomputing it on resampled sets of prompts.

The score job, which holds the outputs, computes the replicates once (`replicates`); the
summary reads them at whatever level the multiple-comparison family needs (`one`, `paired`).
The prompt is the unit that is resampled: every variant is recomputed on the same resampled
prompt sets, so a variant's replicate minus the base's is a paired bootstrap replicate of
the difference (as in `uncertainty.paired_delta_statistic`), and the randomization test swaps
each prompt's two outputs between the variants (Riezler & Maxwell 2005).

A statistic is a function of indices into the variants' outputs laid end to end (variant k's
prompt j is k * n + j), so one prepared corpus serves every variant, resample and swap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from core.metrics.uncertainty import (
    _agree,
    _all_flips,
    _bootstrap_p,
    _flip_blocks,
    _index_blocks,
    _percentile_interval,
    _streams,
    _tie_tolerance,
)

Statistic = Callable[[np.ndarray], float]
MAX_ROUNDS = 20_000  # resampled sets a score job computes at most (each costs one metric computation per variant)
METHOD_ONE = "percentile bootstrap over prompts (corpus-level)"
METHOD_PAIRED = "paired bootstrap with approximate randomization (corpus-level)"


def replicates(statistic: Statistic, n: int, variants: Sequence[str], baseline: str | None, rounds: int,
               seed: int = 0) -> dict[str, dict]:
    """Per variant: `value` (the metric on all n prompts), `boot` (on `rounds` resampled prompt sets,
    the same sets for every variant) and, for each variant but the baseline, `swaps` (the
    difference from the baseline after swapping a random half of the prompts' outputs; every
    swap when 2**n <= rounds). `statistic` takes indices into the outputs laid end to end."""
    boot_rng, perm_rng = _streams(seed)
    whole = np.arange(n)
    out = {v: {"value": float(statistic(whole + k * n)), "boot": [], "swaps": None, "n": n}
           for k, v in enumerate(variants)}
    for block in _index_blocks(boot_rng, n, rounds):
        for row in block:
            for k, v in enumerate(variants):
                out[v]["boot"].append(float(statistic(row + k * n)))
    if baseline in out:
        b = list(variants).index(baseline) * n
        masks = _all_flips(n) if 2**n <= rounds else np.concatenate(list(_flip_blocks(perm_rng, n, rounds)))
        for k, v in enumerate(variants):
            if v == baseline:
                continue
            t = k * n
            out[v]["swaps"] = [float(statistic(np.where(keep, t + whole, b + whole)))
                               - float(statistic(np.where(keep, b + whole, t + whole))) for keep in masks]
            out[v]["exact"] = bool(2**n <= rounds)
    return out


def one(value: float, boot: Sequence[float], n: int, level: float) -> dict:
    """A variant's corpus score with its percentile bootstrap interval at `level`."""
    lo, hi = _percentile_interval(np.asarray(boot, float), level)
    return {"mean": value, "lo": min(lo, value), "hi": max(hi, value), "n": n, "method": METHOD_ONE}


def paired(tuned: dict, base: dict, level: float) -> dict:
    """tuned minus base at `level`: the percentile interval of the paired bootstrap replicates, and
    the larger of the bootstrap and randomization p-values; significant only when both tests are
    (the interval is widened to 0 when one is not), so the word always agrees with the interval."""
    delta = tuned["value"] - base["value"]
    boot = np.asarray(tuned["boot"], float) - np.asarray(base["boot"], float)
    swaps = np.abs(np.asarray(tuned["swaps"], float))
    lo, hi = _percentile_interval(boot, level)
    lo, hi = min(lo, delta), max(hi, delta)
    extreme = int((swaps >= abs(delta) - _tie_tolerance(abs(delta))).sum())
    p_rand = extreme / swaps.size if tuned.get("exact") else (extreme + 1) / (swaps.size + 1)
    p = max(p_rand, _bootstrap_p(boot))
    alpha = 1.0 - level
    if not p < alpha:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    significant, p = _agree(lo, hi, p, alpha)
    return {"delta": delta, "lo": lo, "hi": hi, "p": p, "n": tuned["n"], "significant": significant,
            "level": level, "method": METHOD_PAIRED}
