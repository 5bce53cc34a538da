"""The metric registry: named metrics score demo-like data, defaults follow the references,
and a summary's deltas are the paired differences with multiplicity-adjusted p-values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import InvalidInput
from core.metrics.registry import METRICS, check_metrics, default_metrics, score, summarize

REFS = [json.dumps({"category": c, "priority": p, "summary": s}) for c, p, s in (
    ("billing", "low", "Customer wants a copy of an invoice."),
    ("shipping", "high", "The parcel has not arrived after two weeks."),
    ("technical", "urgent", "The dashboard returns error 500 for everyone."))]


def test_every_metric_scores_each_example_and_names_its_version():
    preds = [REFS[0], '{"category": "shipping", "priority": "low", "summary": "x"}', "I am sorry, I cannot help."]
    # tests_pass: test_metrics_code; corpus-level metrics (one score per set): test_metrics_corpus
    on_references = [n for n, m in METRICS.items() if m.needs == "references" and m.scorer is not None]
    # label_accuracy and schema_valid take what a dataset version declares (labels, a JSON schema).
    options = {"labels": ["billing", "shipping"], "json_schema": {"type": "object", "required": ["priority"]}}
    scores = score(on_references, preds, REFS, options=options)
    assert set(scores) == set(on_references) and all(len(v) == 3 for v in scores.values())
    assert scores["schema_valid"] == [1.0, 1.0, 0.0]
    assert scores["exact_match"] == [1.0, 0.0, 0.0]
    assert scores["json_valid"] == [1.0, 1.0, 0.0]
    assert scores["field_accuracy"] == pytest.approx([1.0, 1 / 3, 0.0])
    assert scores["rouge1"][0] == pytest.approx(1.0) and scores["bleu"][0] == pytest.approx(100.0)
    assert scores["ter"][0] == 0.0 and not METRICS["ter"].higher_is_better
    assert METRICS["rouge1"].version.startswith("rouge-score ") and METRICS["chrf"].version.startswith("sacrebleu ")


def test_defaults_follow_the_references_and_unknown_names_are_refused():
    assert default_metrics(REFS)[:2] == ["json_valid", "field_accuracy"]
    assert "rougeL" in default_metrics(["A plain answer.", "Another one."])
    with pytest.raises(InvalidInput, match="unknown meteor"):
        check_metrics(["rouge1", "meteor"])


def test_summary_deltas_are_paired_differences_with_adjusted_p_values():
    rng = np.random.default_rng(0)
    base = rng.random(80)
    scores = {"base": {"m1": base, "m2": base, "exact_match": base},
              "adapter:x": {"m1": base + 0.3, "m2": base + rng.normal(0, 0.05, 80), "exact_match": base}}
    summary, deltas = summarize(scores, rounds=400)
    by = {(d["variant"], d["metric"]): d for d in deltas}
    assert by[("adapter:x", "m1")]["delta"] == pytest.approx(0.3)
    assert by[("adapter:x", "m1")]["significant"] and by[("adapter:x", "m1")]["lo"] > 0.25
    assert by[("adapter:x", "exact_match")]["direction"] == "same"
    assert all(d["p_holm"] >= d["p"] for d in deltas)
    means = {(s["variant"], s["metric"]): s for s in summary}
    assert means[("base", "m1")]["mean"] == pytest.approx(base.mean())
    assert means[("base", "m1")]["lo"] < base.mean() < means[("base", "m1")]["hi"]


def test_a_descriptive_metric_is_higher_or_lower_never_better():
    """Length differences are reported by direction only; quality metrics by better/worse."""
    from core.metrics.registry import higher_is_better, summarize

    assert higher_is_better("words") is None and higher_is_better("ter") is False
    scores = {"base": {"words": [30.0, 40, 35, 50, 45, 38], "ter": [0.9, 0.8, 0.85, 0.7, 0.95, 0.9]},
              "adapter:tuned": {"words": [10.0, 12, 9, 14, 11, 10], "ter": [0.2, 0.3, 0.25, 0.1, 0.3, 0.2]}}
    _, deltas = summarize(scores, rounds=200)
    by_metric = {d["metric"]: d for d in deltas}
    assert by_metric["words"]["delta"] < 0 and by_metric["words"]["direction"] == "lower"
    assert by_metric["ter"]["delta"] < 0 and by_metric["ter"]["direction"] == "better"
