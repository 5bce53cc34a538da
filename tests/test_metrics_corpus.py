"""Corpus-level metrics: corpus BLEU's value against sacrebleu itself, its replicates against the
corpus bootstrap and randomization tests of core.metrics.uncertainty, its verdicts by simulation
(false positives under no difference, power under a real one), and a real score job storing it
beside the per-example metrics."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sacrebleu.metrics import BLEU

from core.demo.review import seed_generation_set
from core.errors import InvalidInput
from core.metrics import corpus, results, text
from core.metrics.registry import METRICS, summarize
from core.metrics.scoring import start_scoring, summary
from core.metrics.uncertainty import paired_delta_statistic

from tests.test_metrics_scoring import _wait

WORDS = "the a cat dog sat ran on under mat rug quickly slowly home away red blue".split()


def _sentences(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=rng.randint(4, 12))) for _ in range(n)]


def _noisy(rng: random.Random, refs: list[str], keep: float) -> list[str]:
    """Each reference word kept with probability `keep`, else replaced by a random word."""
    return [" ".join(w if rng.random() < keep else rng.choice(WORDS) for w in r.split()) for r in refs]


def test_corpus_bleu_equals_sacrebleus_corpus_score_on_any_resample():
    rng = random.Random(3)
    refs = _sentences(rng, 60)
    preds = _noisy(rng, refs, 0.6)
    statistic = text.bleu_corpus_statistic(preds, refs)
    for idx in (np.arange(60), np.array([5, 5, 5, 9]), np.random.default_rng(1).integers(0, 60, 60)):
        expected = BLEU().corpus_score([preds[i] for i in idx], [[refs[i] for i in idx]]).score
        assert statistic(idx) == pytest.approx(expected, abs=1e-9)
    # Not the mean of sentence BLEU, which the "bleu" metric reports.
    assert statistic(np.arange(60)) != pytest.approx(np.mean(text.bleu(preds, refs)), abs=0.5)


def test_replicates_give_the_same_interval_and_tests_as_the_corpus_functions_in_uncertainty():
    rng = random.Random(5)
    refs = _sentences(rng, 40)
    tuned, base = _noisy(rng, refs, 0.75), _noisy(rng, refs, 0.6)
    statistic = text.bleu_corpus_statistic(tuned + base, refs + refs)
    reps = corpus.replicates(statistic, 40, ["tuned", "base"], "base", rounds=400, seed=0)
    direct = paired_delta_statistic(
        40, lambda idx, from_tuned: statistic(np.where(from_tuned, idx, 40 + idx)), rounds=400, level=0.9, seed=0)
    got = corpus.paired(reps["tuned"], reps["base"], level=0.9)
    assert got["delta"] == pytest.approx(direct.delta)
    assert got["p"] == pytest.approx(max(direct.p_bootstrap, direct.p_permutation))
    if got["significant"]:
        assert (got["lo"], got["hi"]) == pytest.approx((direct.lo, direct.hi))
    assert got["significant"] == (got["lo"] > 0 or got["hi"] < 0) == (got["p"] < 0.1)


def _verdicts(keep_tuned: float, keep_base: float, sims: int, n: int = 30, level: float = 0.9) -> list[dict]:
    rng = random.Random(11)
    out = []
    for _ in range(sims):
        refs = _sentences(rng, n)
        tuned, base = _noisy(rng, refs, keep_tuned), _noisy(rng, refs, keep_base)
        statistic = text.bleu_corpus_statistic(tuned + base, refs + refs)
        reps = corpus.replicates(statistic, n, ["tuned", "base"], "base", rounds=400, seed=rng.randrange(1 << 30))
        out.append(corpus.paired(reps["tuned"], reps["base"], level))
    return out


def test_no_real_difference_is_called_significant_at_most_about_alpha_of_the_time():
    verdicts = _verdicts(0.6, 0.6, sims=120)
    rate = np.mean([v["significant"] for v in verdicts])
    assert rate <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / 120)  # alpha 0.1, three standard errors of slack
    assert all(v["significant"] == (v["lo"] > 0 or v["hi"] < 0) for v in verdicts)


def test_a_real_difference_is_found_and_its_interval_excludes_zero():
    verdicts = _verdicts(0.9, 0.5, sims=20)
    assert np.mean([v["significant"] and v["lo"] > 0 for v in verdicts]) >= 0.9


def test_a_score_job_stores_corpus_bleu_and_the_summary_tests_it_in_the_family(owner, accounts):
    store, jobs, eng = owner.store, owner.jobs, accounts["engineer"]
    gen = seed_generation_set(store, n_prompts=24, variants=("base", "adapter:tuned"), seed=4)
    job = _wait(jobs, start_scoring(store, jobs, eng, gen, ["bleu_corpus", "exact_match"]))
    assert job["status"] == "succeeded", job["error"]
    rows = store.rows("SELECT variant_id, metric_version, value, n, len(boot) AS b, swaps IS NULL AS no_swaps "
                      "FROM metric_corpus WHERE set_id = ? ORDER BY variant_id", [gen])
    assert [r["variant_id"] for r in rows] == ["adapter:tuned", "base"]
    assert all(r["n"] == 24 and r["b"] >= 1000 and r["metric_version"] == METRICS["bleu_corpus"].version
               for r in rows)
    assert [r["no_swaps"] for r in rows] == [False, True]  # swaps are against the base
    outputs = {v: [o["output"] for o in store.rows(
        "SELECT output FROM generations WHERE set_id = ? AND variant_id = ? ORDER BY prompt_idx", [gen, v])]
        for v in ("base", "adapter:tuned")}
    refs = [r["reference"] for r in store.rows(
        "SELECT reference FROM generation_prompts WHERE set_id = ? ORDER BY prompt_idx", [gen])]
    for r in rows:
        assert r["value"] == pytest.approx(BLEU().corpus_score(outputs[r["variant_id"]], [refs]).score)
    means, deltas = summary(store, eng, gen, rounds=300)
    row = next(d for d in deltas if d["metric"] == "bleu_corpus")
    assert row["in_family"] and row["level"] == pytest.approx(1 - 0.05 / 2)  # two metrics in the family
    assert row["significant"] == (row["lo"] > 0 or row["hi"] < 0) and row["p_holm"] is not None
    mean = next(m for m in means if m["metric"] == "bleu_corpus" and m["variant"] == "base")
    assert mean["lo"] <= mean["mean"] <= mean["hi"] and "corpus-level" in mean["method"]
    res = results.latest(store, eng, gen, owner.settings.metrics)
    assert "bleu_corpus" in res.metrics and "bleu_corpus" not in res.per_example
    with pytest.raises(InvalidInput, match="corpus-level"):
        results.examples(store, eng, gen, "bleu_corpus", "adapter:tuned")


def test_summarize_takes_corpus_metrics_into_the_same_family():
    rng = np.random.default_rng(0)
    base = rng.random(40)
    scores = {"base": {"rouge1": base}, "tuned": {"rouge1": base + 0.01}}
    reps = {"base": {"bleu_corpus": {"value": 20.0, "boot": list(rng.normal(20, 1, 2000)), "swaps": None, "n": 40}},
            "tuned": {"bleu_corpus": {"value": 30.0, "boot": list(rng.normal(30, 1, 2000)),
                                      "swaps": list(rng.normal(0, 2, 2000)), "n": 40}}}
    _, deltas = summarize(scores, corpus=reps, rounds=200)
    assert {d["metric"] for d in deltas} == {"rouge1", "bleu_corpus"}
    assert all(d["level"] == pytest.approx(1 - 0.05 / 2) for d in deltas)
    bleu = next(d for d in deltas if d["metric"] == "bleu_corpus")
    assert bleu["significant"] and bleu["direction"] == "better" and bleu["delta"] == pytest.approx(10.0)
