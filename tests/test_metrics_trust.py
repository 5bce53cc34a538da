"""[trust] item 4 in the default tier: the Metrics page's intervals and tests against known truth
(a few hundred seeded simulated studies each, tolerances no seed can flake: the seeds are fixed),
the word/interval agreement over random inputs (hypothesis), and the multiple-comparison family.
The full calibration grid is benchmarks/trust_metrics.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.metrics.registry import KINDS, METRICS, metric_kind, summarize
from core.metrics.uncertainty import (
    paired_binary,
    paired_continuous,
    paired_delta,
    proportion_interval,
    studentized_mean,
    tango_interval,
)

# ---- calibration by simulation ---------------------------------------------------------------------------


def _correlated_pairs(rng, studies, n, p, better=False):
    """0/1 outcomes of base and tuned on the same prompts: prompt difficulty u ~ Beta(p, 1 - p) (base and
    tuned correlate by 0.5); the better fine-tune halves each prompt's error rate."""
    u = rng.beta(p, 1 - p, size=(studies, n))
    base = rng.random((studies, n)) < u
    tuned = rng.random((studies, n)) < (1 - (1 - u) / 2 if better else u)
    return (tuned & ~base).sum(1), (~tuned & base).sum(1)


def test_binary_intervals_and_paired_test_are_calibrated():
    rng = np.random.default_rng(2024)
    studies = 400
    # One variant, 24 prompts at a true rate of 0.95: the old percentile bootstrap covered ~70%.
    k = rng.binomial(24, 0.95, size=studies)
    lo, hi = proportion_interval(k, 24)
    assert np.mean((lo <= 0.95) & (0.95 <= hi)) >= 0.9
    for n, p in ((24, 0.5), (100, 0.8), (100, 0.95)):
        b, c = _correlated_pairs(rng, studies, n, p)
        lo, hi = tango_interval(b, c, n)
        assert np.mean((lo > 0) | (hi < 0)) <= 0.08, (n, p)  # false positives at nominal 5%
        b, c = _correlated_pairs(rng, studies, n, p, better=True)
        lo, hi = tango_interval(b, c, n)
        truth = (1 - p) / 2
        assert np.mean((lo <= truth) & (truth <= hi)) >= 0.9, (n, p)
    # ...and the test has power where there is something to find.
    assert np.mean(lo > 0) > 0.1


def _rouge_like(rng, u):
    return np.clip(u + rng.normal(0, 0.1, u.shape), 0, 1)


def test_continuous_intervals_and_paired_test_are_calibrated():
    rng = np.random.default_rng(7)
    studies, n = 200, 24
    big = _rouge_like(np.random.default_rng(8), np.random.default_rng(9).beta(0.6, 1.8, 2_000_000))
    mean = big.mean()  # the true mean of a ROUGE-like score, to +-0.0003
    covered = false_pos = near_binary_fp = covered_delta = 0
    for s in range(studies):
        u = rng.beta(0.6, 1.8, n)
        base = _rouge_like(rng, u)
        est = studentized_mean(base, seed=s)
        covered += est.lo <= mean <= est.hi
        false_pos += paired_continuous(_rouge_like(rng, u), base, seed=s).significant
        # Skewed improvement: 15% of prompts answered perfectly (true difference 0.15 (1 - mean)).
        tuned = np.where(rng.random(n) < 0.15, 1.0, _rouge_like(rng, u))
        d = paired_continuous(tuned, base, seed=s)
        covered_delta += d.lo <= 0.15 * (1 - mean) <= d.hi
        # Few distinct values (field-accuracy-like), no difference: the bootstrap-t alone called 9.5% here.
        nb = [np.where(rng.random(n) < 0.8, 1.0, rng.integers(0, 4, n) / 4) for _ in range(2)]
        near_binary_fp += paired_continuous(nb[0], nb[1], seed=s).significant
    assert covered / studies >= 0.9 and covered_delta / studies >= 0.9
    assert false_pos / studies <= 0.08 and near_binary_fp / studies <= 0.08


# ---- the word never disagrees with the interval ----------------------------------------------------------

LEVELS = st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99, 1 - 0.05 / 7, 1 - 0.05 / 60])


def _agrees(d) -> None:
    assert d.significant == (d.lo > 0 or d.hi < 0)
    assert (d.p < 1 - d.level) == d.significant, d
    assert d.lo <= d.delta <= d.hi


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=80), LEVELS)
def test_paired_binary_word_and_interval_agree(pairs, level):
    tuned, base = (np.array(x, dtype=float) for x in zip(*pairs))
    _agrees(paired_binary(tuned, base, level))


# Scores from a small set make ties and equal differences common; floats make everything else.
SCORES = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0, 1, allow_nan=False))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(SCORES, SCORES), min_size=1, max_size=30), LEVELS, st.integers(0, 3))
def test_paired_continuous_word_and_interval_agree(pairs, level, seed):
    tuned, base = (np.array(x, dtype=float) for x in zip(*pairs))
    _agrees(paired_continuous(tuned, base, level, rounds=200, seed=seed))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 40), st.integers(1, 3), st.integers(0, 10_000), st.sampled_from([0.01, 0.05, 0.2]),
       st.sampled_from([None, ["json_valid"], ["chrf", "words"]]))
def test_every_summarized_verdict_follows_its_interval(n, tuned_variants, seed, alpha, family):
    rng = np.random.default_rng(seed)
    scores = {v: {"json_valid": (rng.random(n) < rng.uniform(0.3, 1)).astype(float),
                  "chrf": np.clip(rng.normal(rng.uniform(30, 70), 20, n), 0, 100),
                  "words": rng.poisson(20, n).astype(float)}
              for v in ["base"] + [f"adapter:{i}" for i in range(tuned_variants)]}
    _, deltas = summarize(scores, rounds=100, alpha=alpha, family=family)
    members = [d for d in deltas if d["in_family"]]
    for d in deltas:
        if d["in_family"]:
            assert d["level"] == pytest.approx(1 - alpha / len(members))
            assert d["significant"] == (d["lo"] > 0 or d["hi"] < 0) == (d["p_holm"] < alpha)
            bonferroni = min(1.0, len(members) * d["p"])
            assert d["p_holm"] == pytest.approx(bonferroni) or d["p_holm"] in (alpha, np.nextafter(alpha, 0))
        else:
            assert not d["significant"] and d["p_holm"] is None and d["p_bh"] is None
        assert d["lo"] <= d["delta"] <= d["hi"]
    assert not any(d["in_family"] for d in deltas if d["metric"] == "words")


# ---- the family ------------------------------------------------------------------------------------------


def test_metric_kinds_are_declared():
    assert all(m.kind in KINDS for m in METRICS.values())
    assert {n for n, m in METRICS.items() if m.kind == "descriptive"} == \
        {n for n, m in METRICS.items() if m.higher_is_better is None} == {"words"}
    assert {"json_valid", "exact_match"} <= {n for n, m in METRICS.items() if m.kind == "binary"}
    assert metric_kind("pass@5") == "continuous" and metric_kind("rougeL") == "continuous"


def test_family_is_the_declared_metrics_and_length_is_never_tested():
    rng = np.random.default_rng(3)
    n = 80
    base = {"json_valid": (rng.random(n) < 0.5).astype(float), "chrf": rng.uniform(20, 60, n),
            "words": rng.poisson(30, n).astype(float)}
    better = {"json_valid": np.maximum(base["json_valid"], (rng.random(n) < 0.8)), "chrf": base["chrf"] + 30,
              "words": base["words"] + 10}
    scores = {"base": base, "adapter:a": better, "adapter:b": better}
    _, deltas = summarize(scores, rounds=200, family=["json_valid", "words"])
    by = {(d["variant"], d["metric"]): d for d in deltas}
    # json_valid for two fine-tunes: a family of 2, each interval at 97.5%.
    for v in ("adapter:a", "adapter:b"):
        d = by[(v, "json_valid")]
        assert d["in_family"] and d["level"] == pytest.approx(0.975) and d["significant"] and d["kind"] == "binary"
        assert d["method"].startswith("Tango") and d["p_holm"] == pytest.approx(min(1, 2 * d["p"]))
    # chrf is not declared: a huge shift is reported at the plain level, without a verdict.
    chrf = by[("adapter:a", "chrf")]
    assert not chrf["in_family"] and chrf["level"] == 0.95 and not chrf["significant"] and chrf["lo"] > 0
    assert chrf["p_holm"] is None and chrf["p"] < 0.01
    # words is declared but descriptive: an interval and a direction, no p-value, no verdict.
    words = by[("adapter:a", "words")]
    assert not words["in_family"] and words["p"] is None and words["direction"] == "higher"
    # No declaration: every non-descriptive metric is in the family (4 deltas here).
    _, deltas = summarize(scores, rounds=200)
    assert sorted((d["variant"], d["metric"]) for d in deltas if d["in_family"]) == \
        [("adapter:a", "chrf"), ("adapter:a", "json_valid"), ("adapter:b", "chrf"), ("adapter:b", "json_valid")]


def test_a_large_family_can_still_find_clear_differences():
    # 52 deltas: with the old fixed 1,000 permutation rounds the smallest p was 1/1001, so 52 * p > 0.05 and
    # nothing could be significant whatever the data. Rounds now grow with the family.
    rng = np.random.default_rng(4)
    n = 20
    base = rng.uniform(0.2, 0.5, n)
    scores = {"base": {"m": base}}
    for i in range(52):
        scores[f"adapter:{i}"] = {"m": base + 0.3 + rng.normal(0, 0.02, n)}
    _, deltas = summarize(scores, rounds=1000)
    assert len(deltas) == 52 and all(d["in_family"] and d["significant"] for d in deltas)
    assert max(d["p_holm"] for d in deltas) < 0.05
    old = paired_delta(scores["adapter:0"]["m"], base, rounds=1000)
    assert 52 * old.p_permutation > 0.05  # the old method's best possible adjusted p


def test_binary_summary_rows_are_counts_with_honest_intervals():
    scores = {"base": {"json_valid": [1.0] * 24, "field_accuracy": [1.0] * 24, "chrf": [100.0] * 12 + [0.0] * 12},
              "adapter:x": {"json_valid": [1.0] * 23 + [0.0], "field_accuracy": [1.0] * 20 + [0.5] * 4,
                            "chrf": [100.0] * 24}}
    summary, deltas = summarize(scores, rounds=200)
    rows = {(r["variant"], r["metric"]): r for r in summary}
    valid = rows[("base", "json_valid")]
    assert valid["kind"] == "binary" and valid["successes"] == 24 and valid["mean"] == 1.0
    assert valid["lo"] == pytest.approx(0.8369, abs=1e-4) and valid["hi"] == 1.0
    # A bounded metric whose every score sits at a bound is a proportion too (scaled to its range).
    assert rows[("base", "field_accuracy")]["kind"] == "binary" and rows[("base", "field_accuracy")]["lo"] < 0.85
    chrf = rows[("base", "chrf")]
    assert chrf["kind"] == "binary" and chrf["mean"] == 50.0 and 25 < chrf["lo"] < 40 and 60 < chrf["hi"] < 75
    assert rows[("adapter:x", "field_accuracy")]["kind"] == "continuous"
    by = {d["metric"]: d for d in deltas}
    assert by["chrf"]["kind"] == "binary" and by["chrf"]["delta"] == pytest.approx(50.0)
    assert by["field_accuracy"]["kind"] == "continuous"
