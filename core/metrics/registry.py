"""The metrics tuneboard knows by name, what each measures, and what a summary of them says.

Each metric maps aligned predictions and references to one score per example (so every
summary can resample examples). Its `version` names the library release that computed it:
stored scores are keyed by it, so an upgrade is a new metric version, never a silent change.
Its `kind` says how a summary treats it: "binary" (0/1 per example: proportion intervals and
paired-proportion tests), "continuous" (bootstrap-t and permutation methods), "descriptive"
(length: reported with an interval, never tested, never in the multiple-comparison family).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import Callable, Sequence

import numpy as np

from core.errors import InvalidInput
from core.metrics import code, structured, text
from core.metrics.corpus import one as corpus_one
from core.metrics.corpus import paired as corpus_paired
from core.metrics.uncertainty import (
    benjamini_hochberg,
    binary_mean,
    bonferroni,
    paired_binary,
    paired_continuous,
    studentized_mean,
)

Scorer = Callable[..., list[float]]
PASS_AT = re.compile(r"^pass@([1-9][0-9]*)$")
KINDS = ("binary", "continuous", "descriptive")


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
    kind: str = "continuous"  # one of KINDS; "descriptive" exactly when higher_is_better is None
    bounds: tuple[float, float] | None = None  # the least and greatest possible score, when there are both
    options: tuple[str, ...] = ()  # what the scorer takes besides the references, declared with the data
    # A corpus-level metric: `corpus(predictions, references)` returns its statistic over example indices
    # (core.metrics.corpus). With no scorer it is always corpus-level; with both, the scorer raises
    # custom.CorpusLevel when the metric turns out to give one number per set (an evaluate module).
    corpus: Callable[[Sequence[str], Sequence[str]], Callable[[np.ndarray], float]] | None = None
    spec: dict | None = None  # a registered metric's settings entry, which a score job's worker registers again


def _rouge(kind: str) -> Scorer:
    return lambda p, r: text.rouge(p, r, (kind,))[kind]


def _v(package: str) -> str:
    return f"{package} {package_version(package)}"


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("exact_match", text.exact_match, "tuneboard 1", True,
           "1 when the response equals the reference after lower-casing and removing punctuation, articles and "
           "extra spaces.", kind="binary", bounds=(0.0, 1.0)),
    Metric("rouge1", _rouge("rouge1"), _v("rouge-score"), True, "Unigram overlap F1 with Porter stemming.",
           bounds=(0.0, 1.0)),
    Metric("rouge2", _rouge("rouge2"), _v("rouge-score"), True, "Bigram overlap F1 with Porter stemming.",
           bounds=(0.0, 1.0)),
    Metric("rougeL", _rouge("rougeL"), _v("rouge-score"), True, "Longest common subsequence F1 with stemming.",
           bounds=(0.0, 1.0)),
    Metric("bleu", text.bleu, _v("sacrebleu"), True, "Mean of sentence BLEU (sacrebleu, effective order), 0-100.",
           bounds=(0.0, 100.0)),
    Metric("bleu_corpus", None, _v("sacrebleu"), True, "Corpus BLEU (sacrebleu defaults), 0-100: n-gram matches "
           "pooled over the whole set, as machine-translation papers report it. Its interval and test resample "
           "prompts (percentile bootstrap, paired approximate randomization).", bounds=(0.0, 100.0),
           corpus=text.bleu_corpus_statistic),
    Metric("chrf", text.chrf, _v("sacrebleu"), True, "Character n-gram F-score (sacrebleu chrF), 0-100.",
           bounds=(0.0, 100.0)),
    Metric("ter", text.ter, _v("sacrebleu"), False, "Translation edit rate (sacrebleu), lower is better."),
    Metric("json_valid", lambda p, r: structured.json_valid(p), "tuneboard 1", True,
           "1 when the whole response (optionally in one code fence) is one JSON value.", kind="binary",
           bounds=(0.0, 1.0)),
    Metric("field_accuracy", structured.field_accuracy, "tuneboard 1", True,
           "Share of the reference JSON object's fields the response matches (strings normalized).",
           bounds=(0.0, 1.0)),
    Metric("label_accuracy", lambda p, r, labels: text.accuracy(p, r, labels), "tuneboard 1", True,
           "1 when the label the response names equals the reference label (case-insensitive). The label found "
           "is the one named earliest as a whole word (the longer of two at one place). The labels: declared "
           "with the dataset version, else the distinct references of the scored split.", kind="binary",
           bounds=(0.0, 1.0), options=("labels",)),
    Metric("schema_valid", lambda p, r, json_schema: structured.schema_valid(p, json_schema), "tuneboard 1", True,
           "1 when the response is one JSON value (as json_valid) that conforms to the JSON schema (Draft "
           "2020-12) declared with the dataset version.", kind="binary", bounds=(0.0, 1.0),
           options=("json_schema",)),
    Metric("words", lambda p, r: text.lengths(p)["words"], "tuneboard 1", None,
           "Words in the response (descriptive: neither more nor fewer is better in itself).",
           kind="descriptive"),
    Metric("tests_pass", code.tests_pass, "tuneboard 2", True,
           "1 when the response's code passes the example's tests in the sandbox. The code is the first fenced "
           "block (```python or ```), else the whole response. Summaries show pass@k over the samples of each "
           "prompt instead.", needs="tests"),
)}


def register(metric: Metric) -> None:
    """Add a team's metric (core.metrics.custom); a built-in name is refused, a registered one replaced."""
    known = METRICS.get(metric.name)
    if known is not None and known.spec is None:
        raise InvalidInput(f"metrics: {metric.name} is a built-in metric; choose another name")
    METRICS[metric.name] = metric


def is_corpus(name: str) -> bool:
    """Whether a metric is only ever corpus-level (no per-example scorer)."""
    return name in METRICS and METRICS[name].scorer is None


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
          tests: Sequence[str | None] | None = None, sandbox: dict | None = None,
          options: dict | None = None) -> dict[str, list[float]]:
    """Per-example scores of each named metric. Metrics that need tests get `tests` and the
    sandbox limits (`timeout_s`, `memory_mb`) instead of the references; a metric with `options`
    gets them from `options` (what the data declares, see `metric_options`)."""
    out = {}
    for n in check_metrics(names):
        m = METRICS[n]
        if m.scorer is None:
            raise InvalidInput(f"metrics: {n} is corpus-level (one score per set): a score job computes it")
        if m.needs == "tests":
            values = m.scorer(predictions, tests or [None] * len(predictions), **(sandbox or {}))
        else:
            values = m.scorer(predictions, references, **{k: (options or {})[k] for k in m.options})
        out[n] = [float(x) for x in values]
    return out


def metric_kind(name: str) -> str:
    """How summaries treat a metric (one of KINDS); pass@k rows and unknown names are continuous."""
    if name in METRICS:
        return METRICS[name].kind
    return "continuous"


def metric_bounds(name: str) -> tuple[float, float] | None:
    """The least and greatest possible score of a metric (pass@k: 0 and 1), or None."""
    if PASS_AT.match(name):
        return (0.0, 1.0)
    return METRICS[name].bounds if name in METRICS else None


def _as_proportion(name: str, *series: np.ndarray) -> tuple[list[np.ndarray], float, float] | None:
    """The series as 0/1 scores when every present score of a bounded metric sits at one of its
    bounds (a binary metric always does; so does pass@k with one sample per problem), with the
    bounds to scale back; None when the metric is not bounded or some score lies between."""
    bounds = metric_bounds(name) or ((0.0, 1.0) if metric_kind(name) == "binary" else None)
    if bounds is None or metric_kind(name) == "descriptive":
        return None
    low, high = bounds
    present = [x[~np.isnan(x)] for x in series]
    if not all(np.isin(x, (low, high)).all() for x in present):
        return None
    return [np.where(np.isnan(x), np.nan, (x == high).astype(float)) for x in series], low, high - low


def _one(metric: str, values: np.ndarray, rounds: int, level: float, seed: int) -> dict:
    as_binary = _as_proportion(metric, values)
    if as_binary is not None:
        [x], low, width = as_binary
        est = binary_mean(x, level)
        return {"mean": low + width * est.value, "lo": low + width * est.lo, "hi": low + width * est.hi, "n": est.n,
                "kind": "binary", "method": "Agresti-Coull", "successes": int(np.nansum(x))}
    est = studentized_mean(values, rounds=rounds, level=level, seed=seed)
    return {"mean": est.value, "lo": est.lo, "hi": est.hi, "n": est.n,
            "kind": metric_kind(metric), "method": "bootstrap-t"}


def _paired(metric: str, tuned: np.ndarray, base: np.ndarray, rounds: int, level: float, seed: int) -> dict:
    as_binary = _as_proportion(metric, tuned, base)
    if as_binary is not None:
        [t, b], _, width = as_binary
        d = paired_binary(t, b, level)
        kind = "binary"
    else:
        d = paired_continuous(tuned, base, level=level, rounds=rounds, seed=seed)
        width, kind = 1.0, metric_kind(metric)
    return {"delta": width * d.delta, "lo": width * d.lo, "hi": width * d.hi, "p": d.p, "n": d.n,
            "significant": d.significant, "level": d.level, "method": d.method, "kind": kind}


def summarize(scores: dict[str, dict[str, Sequence[float]]], baseline: str | None = "base", rounds: int = 1000,
              level: float = 0.95, seed: int = 0, alpha: float = 0.05,
              family: Sequence[str] | None = None,
              corpus: dict[str, dict[str, dict]] | None = None) -> tuple[list[dict], list[dict]]:
    """Means with confidence intervals per (variant, metric), and paired deltas against the baseline.

    `scores[variant][metric]` are per-example scores aligned by example across variants;
    `corpus[variant][metric]` a corpus-level metric's replicates (core.metrics.corpus.replicates):
    its "mean" is the score on the whole set, its interval and paired delta come from the
    replicates (core.metrics.corpus.one / paired), and it joins the family like any other metric.

    Means: 0/1 scores (a binary metric, or a bounded one whose every score sits at a bound)
    get the Agresti-Coull interval, others the bootstrap-t interval, at `level`.

    Deltas: the multiple-comparison family is every (variant, metric) against the baseline
    whose metric is in `family` (the metrics the dataset declares; "tests_pass" brings its
    pass@k rows; None: every metric present) and is not descriptive. With m such deltas, each
    gets its interval at 1 - alpha / m (Bonferroni: the m intervals hold together with
    probability >= 1 - alpha) from the test it inverts: paired 0/1 scores Tango's score
    interval and McNemar's score test, others the permutation/bootstrap-t hull
    (core.metrics.uncertainty). `significant` is "the interval excludes 0", `p_holm` the
    Bonferroni-adjusted p (min(1, m p); below alpha exactly when significant; the key keeps its
    stored name), `p_bh` Benjamini-Hochberg over the family (for reference). Deltas outside
    the family are reported at `level` without a verdict (significant False, p_holm None);
    descriptive ones (length) also without a p-value. Resampling rounds rise with m
    (uncertainty.enough_rounds), so the smallest attainable p stays far below alpha / m.
    """
    corpus = corpus or {}
    summary = []
    for variant, by_metric in scores.items():
        for metric, values in by_metric.items():
            summary.append({"variant": variant, "metric": metric,
                            **_one(metric, np.asarray(values, float), rounds, level, seed)})
    for variant, by_metric in corpus.items():
        for metric, rep in by_metric.items():
            summary.append({"variant": variant, "metric": metric, "kind": metric_kind(metric),
                            **corpus_one(rep["value"], rep["boot"], rep["n"], level)})
    pairs = [(variant, metric) for variant, by_metric in scores.items() if baseline in scores and variant != baseline
             for metric in by_metric if metric in scores[baseline]]
    pairs += [(variant, metric) for variant, by_metric in corpus.items() if variant != baseline
              for metric, rep in by_metric.items() if metric in corpus.get(baseline, {}) and rep.get("swaps")]
    declared = None if family is None else set(family)

    def in_family(metric: str) -> bool:
        if metric_kind(metric) == "descriptive":
            return False
        return declared is None or metric in declared or (bool(PASS_AT.match(metric)) and "tests_pass" in declared)

    m = sum(in_family(metric) for _, metric in pairs)
    deltas = []
    for variant, metric in pairs:
        member = in_family(metric)
        at = 1.0 - alpha / m if member else level
        if metric in corpus.get(variant, {}):
            row = {**corpus_paired(corpus[variant][metric], corpus[baseline][metric], at), "kind": metric_kind(metric)}
        else:
            row = _paired(metric, np.asarray(scores[variant][metric], float),
                          np.asarray(scores[baseline][metric], float), rounds, at, seed)
        up = higher_is_better(metric) if metric in METRICS or PASS_AT.match(metric) else True
        if row["delta"] == 0:
            direction = "same"
        elif up is None:
            direction = "higher" if row["delta"] > 0 else "lower"
        else:
            direction = "better" if (row["delta"] > 0) == up else "worse"
        row.update(variant=variant, baseline=baseline, metric=metric, direction=direction, in_family=member,
                   p_holm=None, p_bh=None)
        if not member:
            row["significant"] = False
            if row["kind"] == "descriptive":
                row["p"] = None
        deltas.append(row)
    members = [r for r in deltas if r["in_family"]]
    if members:
        ps = [r["p"] for r in members]
        for row, p_adj, p_bh in zip(members, bonferroni(ps), benjamini_hochberg(ps)):
            # Ties at alpha in floating point go the interval's way, as inside each test.
            if row["significant"] and not p_adj < alpha:
                p_adj = float(np.nextafter(alpha, 0.0))
            elif not row["significant"] and p_adj < alpha:
                p_adj = float(alpha)
            row["p_holm"], row["p_bh"] = p_adj, p_bh
    return summary, deltas


MAX_LABELS = 100


def check_metric_options(options: dict | None) -> dict | None:
    """What a dataset version declares for metrics that need more than references: `labels` (1-100
    distinct non-empty strings, for label_accuracy) and `json_schema` (a JSON schema, for schema_valid).
    Each problem names the field; empty: None."""
    if not options:
        return None
    unknown = sorted(set(options) - {"labels", "json_schema"})
    if unknown:
        raise InvalidInput(f"metric options: unknown {', '.join(unknown)}; known: labels, json_schema")
    out: dict = {}
    labels = options.get("labels")
    if labels:
        if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) and x.strip() for x in labels):
            raise InvalidInput("labels: give a list of non-empty label names, e.g. billing, bug, delivery")
        cleaned = list(dict.fromkeys(x.strip() for x in labels))
        if len(cleaned) > MAX_LABELS:
            raise InvalidInput(f"labels: {len(cleaned)} labels; at most {MAX_LABELS} (label_accuracy is for "
                               "classification)")
        out["labels"] = cleaned
    schema = options.get("json_schema")
    if schema:
        if not isinstance(schema, dict):
            raise InvalidInput("json_schema: give a JSON object (a JSON schema, Draft 2020-12)")
        structured.schema_valid([], schema)  # checks the schema itself; names where it is wrong
        out["json_schema"] = schema
    return out or None


def scoring_options(names: Sequence[str], declared: dict | None, references: Sequence[str | None]) -> dict:
    """The options the named metrics get in a score job: what the data declares; label_accuracy's labels
    otherwise the distinct references (refused when they are not a label set); schema_valid needs a schema."""
    options = dict(declared or {})
    if "label_accuracy" in names and not options.get("labels"):
        labels = sorted({r.strip() for r in references if r and r.strip()})
        if len(labels) > MAX_LABELS or any(len(x) > 100 for x in labels):
            raise InvalidInput(f"metrics: label_accuracy needs labels, and the references are not a label set "
                               f"({len(labels)} different answers): declare the labels with the dataset version "
                               "(Data page, `tuneboard data metrics VERSION --labels a,b`).")
        options["labels"] = labels
    if "schema_valid" in names and not options.get("json_schema"):
        raise InvalidInput("metrics: schema_valid needs a JSON schema: declare it with the dataset version (Data page, "
                           "`tuneboard data metrics VERSION --schema FILE.json`).")
    return options


def metric_options_from_text(labels: str = "", json_schema: str = "") -> dict | None:
    """Metric options as forms and command lines give them: comma-separated labels, a JSON schema's text
    (checked by `check_metric_options` where they are stored)."""
    options: dict = {}
    if labels.strip():
        options["labels"] = [x.strip() for x in labels.split(",") if x.strip()]
    if json_schema.strip():
        try:
            options["json_schema"] = json.loads(json_schema)
        except ValueError as exc:
            raise InvalidInput(f"json_schema: not JSON ({exc}); give a JSON schema object") from None
    return options or None
