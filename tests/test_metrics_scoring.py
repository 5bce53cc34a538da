"""Scoring a generation set as a real `score` job: every (variant, metric, example) stored
once, re-scoring idempotent, and a summary that finds the better variant."""

from __future__ import annotations

import time

import pytest

from core.demo.review import seed_generation_set
from core.errors import InvalidInput
from core.metrics.scoring import scores, start_scoring, summary


def _wait(jobs, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs.reconcile()
        job = jobs.get(job_id)
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"{job_id} still running")


def test_scoring_job_stores_every_score_once_and_rescoring_replaces(owner, accounts):
    store, jobs, eng = owner.store, owner.jobs, accounts["engineer"]
    gen = seed_generation_set(store, n_prompts=20, variants=("base", "adapter:tuned"), seed=4)
    job = _wait(jobs, start_scoring(store, jobs, eng, gen))
    assert job["status"] == "succeeded", job["error"]
    metrics = ["json_valid", "field_accuracy", "exact_match", "chrf", "words"]  # the defaults for JSON references
    assert store.scalar("SELECT count(*) FROM metric_scores WHERE set_id = ?", [gen]) == 2 * len(metrics) * 20
    again = _wait(jobs, start_scoring(store, jobs, eng, gen, ["field_accuracy"]))
    assert again["status"] == "succeeded"
    assert store.scalar("SELECT count(*) FROM metric_scores WHERE set_id = ?", [gen]) == 2 * len(metrics) * 20
    assert store.scalar("SELECT count(DISTINCT job_id) FROM metric_scores WHERE metric = 'field_accuracy'") == 1
    got = scores(store, eng, gen)
    assert set(got) == {"base", "adapter:tuned"} and len(got["base"]["chrf"]) == 20
    means, deltas = summary(store, eng, gen, rounds=300)
    field = next(d for d in deltas if d["metric"] == "field_accuracy")
    expected = sum(got["adapter:tuned"]["field_accuracy"]) / 20 - sum(got["base"]["field_accuracy"]) / 20
    assert field["delta"] == pytest.approx(expected) and field["variant"] == "adapter:tuned"
    assert {(m["variant"], m["metric"]) for m in means} == {(v, m) for v in got for m in metrics}


def test_scoring_refuses_what_cannot_be_scored(owner, accounts):
    store, jobs, eng = owner.store, owner.jobs, accounts["engineer"]
    gen = seed_generation_set(store, n_prompts=3, seed=1)
    with pytest.raises(InvalidInput, match="unknown meteor"):
        start_scoring(store, jobs, eng, gen, ["meteor"])
    store.execute("UPDATE generation_prompts SET reference = 'plain words' WHERE set_id = ? AND prompt_idx = 1", [gen])
    with pytest.raises(InvalidInput, match="prompt 1's is not one"):
        start_scoring(store, jobs, eng, gen, ["field_accuracy"])
    assert store.scalar("SELECT count(*) FROM jobs WHERE kind = 'score'") == 0
