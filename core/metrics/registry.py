"""The metrics tuneboard knows by name, what each measures, and what a summary of them says.

Each metric maps aligned predictions and references to one score per example (so every
summary can resample examples). Its `version` names the library release that computed it:
stored scores are keyed by it, so an upgrade is a new metric version, never a silent change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import Callable, Sequence

import numpy as np

from core.errors import InvalidInput
from core.metrics import code, structured, text
from core.metrics.uncertainty import benjamini_hochberg, bootstrap_mean, holm, paired_delta

Scorer = Callable[..., list[float]]
PASS_AT = re.compile(r"^pass@([1-9][0-9]*)$")


@dataclass(frozen=True)
class Metric:
    """`scorer(predictions, inputs)`: inputs are the references, or the examples' tests when
    `needs == "tests"` (such scorers also take the sandbox limits as keyword arguments)."""

    name: str
    scorer: Scorer
    version: str
    higher_is_better: bool | None  # None: descriptive (length): a difference is higher or lower, not better
    help: str
    needs: str = "references"


def _rouge(kind: str) -> Scorer:
    return lambda p, r: text.rouge(p, r, (kind,))[kind]


def _v(package: str) -> str:
    return f"{package} {package_version(package)}"


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("exact_match", text.exact_match, "tuneboard 1", True,
           "1 when the response equals the reference after lower-casing and removing punctuation, articles and "
           "extra spaces."),
    Metric("rouge1", _rouge("rouge1"), _v("rouge-score"), True, "Unigram overlap F1 with Porter stemming."),
    Metric("rouge2", _rouge("rouge2"), _v("rouge-score"), True, "Bigram overlap F1 with Porter stemming."),
    Metric("rougeL", _rouge("rougeL"), _v("rouge-score"), True, "Longest common subsequence F1 with stemming."),
    Metric("bleu", text.bleu, _v("sacrebleu"), True, "Sentence BLEU (sacrebleu, effective order), 0-100."),
    Metric("chrf", text.chrf, _v("sacrebleu"), True, "Character n-gram F-score (sacrebleu chrF), 0-100."),
    Metric("ter", text.ter, _v("sacrebleu"), False, "Translation edit rate (sacrebleu), lower is better."),
    Metric("json_valid", lambda p, r: structured.json_valid(p), "tuneboard 1", True,
           "1 when the whole response (optionally in one code fence) is one JSON value."),
    Metric("field_accuracy", structured.field_accuracy, "tuneboard 1", True,
           "Share of the reference JSON object's fields the response matches (strings normalized)."),
    Metric("words", lambda p, r: text.lengths(p)["words"], "tuneboard 1", None,
           "Words in the response (descriptive: neither more nor fewer is better in itself)."),
    Metric("tests_pass", code.tests_pass, "tuneboard 1", True,
           "1 when the response's code passes the example's tests in the sandbox. The code is the first fenced "
           "block (```python or ```), else the whole response. Summaries show pass@k over the samples of each "
           "prompt instead.", needs="tests"),
)}


def higher_is_better(name: str) -> bool | None:
    """Direction of a metric by name, including the pass@k rows of summaries; None: descriptive."""
    if PASS_AT.match(name):
        return True
    if name not in METRICS:
        raise InvalidInput(f"metrics: unknown {name}; known: {', '.join(METRICS)} and pass@k")
    return METRICS[name].higher_is_better


def metric_version(name: str) -> str:
    """Version of a metric by name; pass@k rows are computed from tests_pass scores."""
    return METRICS["tests_pass" if PASS_AT.match(name) else name].version


def default_metrics(references: Sequence[str | None], tests: Sequence[str | None] | None = None) -> list[str]:
    """What applies to a test split when its dataset declares nothing: tests_pass first when
    every example carries tests (a code task); then JSON metrics when most references are JSON
    objects (the demo's triage task), text overlap otherwise."""
    code_task = ["tests_pass"] if tests and all(tests) else []
    refs = [r for r in references if r]
    objects = sum(1 for r in refs if isinstance(structured.parse_json(r)[0], dict))
    if refs and objects >= 0.8 * len(refs):
        return code_task + ["json_valid", "field_accuracy", "exact_match", "chrf", "words"]
    return code_task + ["exact_match", "rouge1", "rouge2", "rougeL", "bleu", "chrf", "words"]


def check_metrics(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise InvalidInput(f"metrics: unknown {', '.join(unknown)}; known: {', '.join(METRICS)}")
    if not names:
        raise InvalidInput("metrics: choose at least one")
    return list(dict.fromkeys(names))


def score(names: Sequence[str], predictions: Sequence[str], references: Sequence[str],
          tests: Sequence[str | None] | None = None, sandbox: dict | None = None) -> dict[str, list[float]]:
    """Per-example scores of each named metric. Metrics that need tests get `tests` and the
    sandbox limits (`timeout_s`, `memory_mb`) instead of the references."""
    out = {}
    for n in check_metrics(names):
        m = METRICS[n]
        if m.needs == "tests":
            values = m.scorer(predictions, tests or [None] * len(predictions), **(sandbox or {}))
        else:
            values = m.scorer(predictions, references)
        out[n] = [float(x) for x in values]
    return out


def summarize(scores: dict[str, dict[str, Sequence[float]]], baseline: str | None = "base", rounds: int = 1000,
              level: float = 0.95, seed: int = 0, alpha: float = 0.05) -> tuple[list[dict], list[dict]]:
    """Means with bootstrap CIs per (variant, metric), and paired deltas against the baseline.

    `scores[variant][metric]` are per-example scores aligned by example across variants. Deltas
    carry the paired bootstrap CI, the permutation p-value, and Holm and Benjamini-Hochberg
    adjusted p-values over all deltas shown together (many metrics x variants at once).
    """
    summary = []
    for variant, by_metric in scores.items():
        for metric, values in by_metric.items():
            est = bootstrap_mean(np.asarray(values, float), rounds=rounds, level=level, seed=seed)
            summary.append({"variant": variant, "metric": metric, "mean": est.value, "lo": est.lo, "hi": est.hi,
                            "n": est.n})
    deltas = []
    if baseline in scores:
        for variant, by_metric in scores.items():
            if variant == baseline:
                continue
            for metric, values in by_metric.items():
                if metric not in scores[baseline]:
                    continue
                d = paired_delta(np.asarray(values, float), np.asarray(scores[baseline][metric], float),
                                 rounds=rounds, level=level, seed=seed, alpha=alpha)
                up = higher_is_better(metric) if metric in METRICS or PASS_AT.match(metric) else True
                if d.delta == 0:
                    direction = "same"
                elif up is None:
                    direction = "higher" if d.delta > 0 else "lower"
                else:
                    direction = "better" if (d.delta > 0) == up else "worse"
                deltas.append({"variant": variant, "baseline": baseline, "metric": metric, "delta": d.delta,
                               "lo": d.lo, "hi": d.hi, "p": d.p_permutation, "n": d.n, "direction": direction})
    if deltas:
        for row, p_holm, p_bh in zip(deltas, holm([r["p"] for r in deltas]),
                                     benjamini_hochberg([r["p"] for r in deltas])):
            row["p_holm"], row["p_bh"] = p_holm, p_bh
            row["significant"] = bool(p_holm < alpha)
    return summary, deltas
