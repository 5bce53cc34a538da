"""[api] Datasets, training runs, jobs, generation sets and scores over /api/v1, in-process (httpx over
the ASGI app) on one real workspace per module: uploads checked and imported (or refused with every
problem named, nothing written), roles refused by core with nothing written, a real tiny training run
streamed to its end, cancel/resume/reproduce, and a generation set of the base and the run's adapter
scored with intervals. The workers are real processes on the tiny model."""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from core import owner as owners
from core.auth import CLI_USER
from core.config import load_settings
from core.errors import JobError
from core.owner import Owner
from core.users import create_user
from tests.conftest import ADMIN_PASSWORD, ONE_THREAD, PASSWORD
from tests.test_api import bearer, token_of

TINY_RUN = dict(learning_rate=3e-3, max_steps=3, batch_size=8, eval_every=3, lora_rank=8, lora_alpha=16,
                modules_to_save=["lm_head"], max_seq_len=256, early_stopping_patience=0)


@pytest.fixture(scope="module")
def w(tmp_path_factory, tiny_model):
    """One workspace for the module: accounts per role with tokens, the demo data imported through the
    API by the engineer, and a tiny training run started (it trains while the data tests run)."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    import api.app
    from core.demo.tickets import write_demo_files

    root = tmp_path_factory.mktemp("api-data-runs")
    env = {"TUNEBOARD_WORKSPACE": str(root / "ws"), "TUNEBOARD_MODEL_BASE": tiny_model,
           "TUNEBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD, **ONE_THREAD}
    good, bad = write_demo_files(root / "demo", n=200, seed=7)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # no stray tuneboard.toml
        for key, value in env.items():
            mp.setenv(key, value)
        owner = Owner.open(load_settings(env=env), monitor=False, env=env)
        owners.install(owner)
        try:
            for name, role in (("rita", "rater"), ("leo", "lead"), ("eve", "engineer")):
                create_user(owner.store, CLI_USER, name, PASSWORD, role)
            with TestClient(Starlette(routes=[Mount("/api/v1", app=api.app.build())]),
                            base_url="http://testserver/api/v1") as client:
                tokens = {name: bearer(token_of(client, name)) for name in ("rita", "leo", "eve")}
                with open(good, "rb") as fh:
                    imported = client.post("/datasets", headers=tokens["eve"], files={"file": (good.name, fh)},
                                           data={"name": "tickets", "description": "support tickets",
                                                 "metrics": "exact_match,chrf", "seed": "7"})
                # The default is a job: 202 with its id at once; the owner inserts the version at ingest.
                assert imported.status_code == 202, imported.text
                job_id = imported.json()["job_id"]
                assert owner.jobs.wait(job_id, timeout=120)["status"] == "succeeded"
                status = client.get(f"/imports/{job_id}", headers=tokens["eve"])
                assert status.status_code == 200, status.text
                status = status.json()
                assert status["done"] and status["progress"]["stage"] == "write"
                imported = {**status["result"], "metrics": status["metrics"], "report": status["report"],
                            "job_id": job_id}
                version = imported["version_id"]
                started = client.post("/runs", headers=tokens["eve"], json={"dataset_version": version, **TINY_RUN})
                assert started.status_code == 201, started.text
                yield SimpleNamespace(client=client, owner=owner, tokens=tokens, good=good, bad=bad,
                                      imported=imported, version=version, run=started.json())
                for job in owner.store.rows("SELECT job_id FROM jobs WHERE status IN ('queued', 'running')"):
                    with contextlib.suppress(JobError):  # a failed test leaves no worker behind
                        owner.jobs.cancel(CLI_USER, job["job_id"])
                    owner.jobs.wait(job["job_id"], timeout=60)
        finally:
            owners.install(None)
            owner.close()


def _counts(owner) -> dict:
    tables = ("datasets", "dataset_versions", "examples", "jobs", "runs", "generation_sets", "audit_log")
    return {t: owner.store.scalar(f"SELECT count(*) FROM {t}") for t in tables}


def _upload(name: str, data: bytes) -> dict:
    return {"file": (name, data, "application/octet-stream")}


def _follow(w, path: str, token: str = "eve") -> list[dict]:
    with w.client.stream("GET", path, headers=w.tokens[token], params={"follow": "true", "timeout": 300}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in r.iter_lines() if line.strip()]


# ---- datasets ---------------------------------------------------------------------------------
def test_an_import_is_a_version_with_its_splits_examples_and_declared_metrics(w):
    c, eve = w.client, w.tokens["eve"]
    assert w.imported["created"] and w.imported["dataset"] == "tickets"
    assert w.imported["metrics"] == ["exact_match", "chrf"] and w.imported["report"]["ok"]
    listed = c.get("/datasets", headers=eve).json()
    assert [(d["name"], d["description"], d["versions"], d["latest_version"]) for d in listed] == [
        ("tickets", "support tickets", 1, w.version)]
    assert [v["version_id"] for v in c.get("/datasets/tickets/versions", headers=eve).json()] == [w.version]
    shown = c.get(f"/versions/{w.version[:8]}", headers=eve, params={"split": "test", "limit": 2}).json()
    assert shown["version_id"] == w.version and shown["metrics"] == ["exact_match", "chrf"]
    assert sum(shown["splits"].values()) == shown["n_examples"] and shown["splits"]["test"] > 0
    assert shown["examples"]["total"] == shown["splits"]["test"] and len(shown["examples"]["rows"]) == 2
    assert all(r["split"] == "test" and r["messages"][-1]["role"] == "assistant" for r in shown["examples"]["rows"])
    assert shown["report"]["ok"] and shown["split_spec"]["seed"] == 7

    with open(w.good, "rb") as fh:  # the same content again, within the request: the same version, nothing new
        again = c.post("/datasets", headers=eve, files={"file": (w.good.name, fh)}, data={"name": "tickets",
                                                                                        "seed": "7"},
                       params={"wait": "true"})
    assert again.status_code == 200 and again.json()["version_id"] == w.version and not again.json()["created"]
    # ... and as a job: recognised at ingest, nothing inserted
    again = c.post("/datasets", headers=eve, files=_upload(w.good.name, w.good.read_bytes()),
                   data={"name": "tickets", "seed": "7"})
    assert again.status_code == 202, again.text
    assert w.owner.jobs.wait(again.json()["job_id"], timeout=120)["status"] == "succeeded"
    result = c.get(f"/imports/{again.json()['job_id']}", headers=eve).json()["result"]
    assert result == {"dataset": "tickets", "version_id": w.version, "created": False, "metrics_updated": False}
    assert c.get("/datasets", headers=eve).json()[0]["versions"] == 1

    r = c.put(f"/versions/{w.version}/metrics", headers=eve, json={"metrics": ["exact_match", "chrf", "words"]})
    assert r.status_code == 200 and r.json() == {"version_id": w.version, "metrics": ["exact_match", "chrf", "words"],
                                                 "metric_options": None}
    r = c.put(f"/versions/{w.version}/metrics", headers=eve, json={"metrics": ["meteor"]})
    assert r.status_code == 400 and "meteor" in r.json()["error"]["message"]
    # What label_accuracy and schema_valid need; fields left out stay as they are (the metrics too).
    schema = {"type": "object", "required": ["category"]}
    r = c.put(f"/versions/{w.version}/metrics", headers=eve, json={"labels": ["billing", "bug"]})
    assert r.json()["metrics"] == ["exact_match", "chrf", "words"] and r.json()["metric_options"] == {
        "labels": ["billing", "bug"]}
    r = c.put(f"/versions/{w.version}/metrics", headers=eve, json={"json_schema": schema})
    assert r.json()["metric_options"] == {"labels": ["billing", "bug"], "json_schema": schema}
    r = c.put(f"/versions/{w.version}/metrics", headers=eve, json={"json_schema": {"type": 5}})
    assert r.status_code == 400 and "JSON schema is invalid" in r.json()["error"]["message"]
    r = c.put(f"/versions/{w.version}/metrics", headers=eve, json={"labels": []})
    assert r.json()["metric_options"] == {"json_schema": schema}
    c.put(f"/versions/{w.version}/metrics", headers=eve, json={"metrics": ["exact_match", "chrf"], "json_schema": {}})
    assert c.get(f"/versions/{w.version}", headers=eve, params={"limit": 0}).json()["metric_options"] is None


def test_a_bad_file_is_answered_with_every_problem_by_file_line_and_field_and_nothing_is_written(w):
    c, eve = w.client, w.tokens["eve"]
    before = _counts(w.owner)
    report = c.post("/datasets/validate", headers=eve, files=_upload(w.bad.name, w.bad.read_bytes()))
    assert report.status_code == 200, report.text
    body = report.json()
    assert not body["ok"] and body["errors"] > 0 and body["file"] == w.bad.name
    located = [p for p in body["problems"] if p["severity"] == "error"]
    assert all(p["file"] == w.bad.name and p["line"] for p in located) and any(p["field"] for p in located)

    refused = c.post("/datasets", headers=eve, files=_upload(w.bad.name, w.bad.read_bytes()), params={"wait": "true"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_dataset"
    assert refused.json()["error"]["problems"] == located

    not_utf8 = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}\n' \
               b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n{"messages": [oops]}\n'
    r = c.post("/datasets", headers=eve, files=_upload("mixed.jsonl", not_utf8), params={"wait": "true"})
    assert r.status_code == 400, r.text
    problems = {p["line"]: p for p in r.json()["error"]["problems"]}
    assert problems[2]["code"] == "non_utf8" and problems[3]["code"] == "invalid_json"
    assert all(p["file"] == "mixed.jsonl" for p in problems.values())

    r = c.post("/datasets", headers=eve, files=_upload("../../etc/x.txt", b"hello"), data={"split": "0.5,0.5"})
    assert r.status_code == 400 and "split" in r.json()["error"]["message"]
    r = c.post("/datasets/validate", headers=eve, files=_upload("../../etc/x.txt", b"hello"))
    assert r.json()["problems"][0]["code"] == "unknown_format" and r.json()["file"] == "x.txt"
    r = c.post("/datasets", headers=eve, files=_upload("a.jsonl", b"x"), data={"format": "xml"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "format"

    settings = w.owner.settings.data
    limit, settings.max_upload_mb = settings.max_upload_mb, 1
    try:
        r = c.post("/datasets", headers=eve, files=_upload("big.jsonl", b"x" * (1024 * 1024 + 10)))
    finally:
        settings.max_upload_mb = limit
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large" and "max_upload_mb" in r.text
    for answer in (report, refused, r):
        assert "Traceback" not in answer.text
    assert _counts(w.owner) == before


def test_a_bad_file_as_a_job_fails_with_its_report_and_inserts_nothing(w):
    c, eve = w.client, w.tokens["eve"]
    before = _counts(w.owner)
    started = c.post("/datasets", headers=eve, files=_upload(w.bad.name, w.bad.read_bytes()))
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    job = w.owner.jobs.wait(job_id, timeout=120)
    assert job["status"] == "failed" and "nothing was imported" in job["error"]
    status = c.get(f"/imports/{job_id}", headers=eve).json()
    assert status["status"] == "failed" and status["result"] is None and not status["report"]["ok"]
    expected = c.post("/datasets/validate", headers=eve, files=_upload(w.bad.name, w.bad.read_bytes())).json()
    assert status["report"]["problems"] == expected["problems"]
    shown = c.get(f"/jobs/{job_id}", headers=eve).json()
    assert shown["kind"] == "import" and shown["status"] == "failed"
    after = _counts(w.owner)
    assert {t: after[t] - before[t] for t in after} == {"datasets": 0, "dataset_versions": 0, "examples": 0,
                                                        "jobs": 1, "runs": 0, "generation_sets": 0,
                                                        "audit_log": 1}  # the job's start, nothing imported


def test_an_unknown_version_dataset_run_set_or_job_is_404(w):
    c, eve = w.client, w.tokens["eve"]
    for path in ("/versions/ffffffffffff", "/versions/abc", "/datasets/nope/versions", "/runs/train-nope",
                 "/runs/train-nope/events", "/jobs/nope", "/jobs/nope/events", "/generations/nope",
                 "/generations/nope/scores", "/imports/nope", f"/imports/{w.run['run_id']}"):
        r = c.get(path, headers=eve)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, r.text)
    r = c.put("/versions/ffffffffffff/metrics", headers=eve, json={"metrics": None})
    assert r.status_code == 404


def test_a_raters_token_is_refused_everywhere_here_and_nothing_is_written(w):
    c, rita = w.client, w.tokens["rita"]
    before = _counts(w.owner)
    run, version = w.run["run_id"], w.version
    calls = [("post", "/datasets/validate", {"files": _upload(w.good.name, w.good.read_bytes())}),
             ("post", "/datasets", {"files": _upload(w.good.name, w.good.read_bytes()), "data": {"name": "mine"}}),
             ("get", "/datasets", {}), ("get", "/datasets/tickets/versions", {}), ("get", "/versions", {}),
             ("get", f"/versions/{version}", {}), ("put", f"/versions/{version}/metrics", {"json": {"metrics": None}}),
             ("post", "/runs", {"json": {"dataset_version": version, **TINY_RUN}}), ("get", "/runs", {}),
             ("get", f"/runs/{run}", {}), ("get", f"/runs/{run}/events", {}),
             ("get", f"/runs/{run}/events?follow=true", {}), ("post", f"/runs/{run}/cancel", {}),
             ("post", f"/runs/{run}/resume", {}), ("post", f"/runs/{run}/merge", {}),
             ("post", f"/runs/{run}/reproduce", {}), ("get", "/jobs", {}), ("get", f"/jobs/{run}", {}),
             ("get", f"/jobs/{run}/events", {}), ("get", "/variants", {}), ("get", "/generations", {}),
             ("post", "/generations", {"json": {"prompts": {"version": version, "limit": 2}}}),
             ("get", f"/generations/{run}", {}), ("get", f"/generations/{run}/outputs", {}),
             ("post", f"/generations/{run}/scores", {}), ("get", f"/generations/{run}/scores", {}),
             ("get", f"/imports/{w.imported['job_id']}", {}), ("get", "/imports/import-nope", {})]
    for method, path, kw in calls:
        r = getattr(c, method)(path, headers=rita, **kw)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (method, path, r.text)
    assert _counts(w.owner) == before


def test_a_leads_token_reads_data_and_runs_but_imports_and_trains_nothing(w):
    c, leo = w.client, w.tokens["leo"]
    before = _counts(w.owner)
    assert c.get("/datasets", headers=leo).status_code == 200
    assert c.get(f"/versions/{w.version}", headers=leo).json()["version_id"] == w.version
    assert w.run["run_id"] in [r["job_id"] for r in c.get("/runs", headers=leo).json()]
    assert c.get(f"/runs/{w.run['run_id']}", headers=leo).status_code == 200
    assert c.get(f"/jobs/{w.run['run_id']}", headers=leo).json()["kind"] == "train"
    refused = [c.post("/datasets", headers=leo, files=_upload(w.good.name, w.good.read_bytes())),
               c.post("/datasets/validate", headers=leo, files=_upload(w.good.name, w.good.read_bytes())),
               c.put(f"/versions/{w.version}/metrics", headers=leo, json={"metrics": None}),
               c.post("/runs", headers=leo, json={"dataset_version": w.version, **TINY_RUN}),
               c.post(f"/runs/{w.run['run_id']}/cancel", headers=leo),
               c.post(f"/runs/{w.run['run_id']}/merge", headers=leo),
               c.post(f"/runs/{w.run['run_id']}/reproduce", headers=leo)]
    assert [r.status_code for r in refused] == [403] * len(refused), [r.text for r in refused]
    assert _counts(w.owner) == before


# ---- training runs ----------------------------------------------------------------------------
def test_a_bad_training_config_names_its_field_and_starts_nothing(w):
    c, eve = w.client, w.tokens["eve"]
    before = _counts(w.owner)
    r = c.post("/runs", headers=eve, json={"dataset_version": w.version, "learning_rate": 5.0, "method": "magic"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    assert "learning_rate" in r.json()["error"]["message"] and "method" in r.json()["error"]["message"]
    r = c.post("/runs", headers=eve, json={"dataset_version": w.version, "learning_rat": 1e-4})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "learning_rat"
    r = c.post("/runs", headers=eve, json={"dataset_version": w.version, "batch_size": "many"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "batch_size"
    r = c.post("/runs", headers=eve, json={"dataset_version": "ffffffffffff"})
    assert r.status_code == 404
    r = c.post("/runs", headers=eve, json={"dataset_version": w.version, "preset": "nope"})
    assert r.status_code == 400 and "preset" in r.text
    assert _counts(w.owner) == before
    schema = c.get("/openapi.json").json()["components"]["schemas"]["TrainRequest"]["properties"]
    assert schema["learning_rate"]["maximum"] == 1e-2 and "Peak learning rate" in schema["learning_rate"]["description"]


def test_a_run_streams_its_events_until_it_ends_and_then_shows_its_adapter(w):
    c, eve, run_id = w.client, w.tokens["eve"], w.run["run_id"]
    assert w.run["status"] == "running" and w.run["estimate"]["steps"] == 3
    lines = _follow(w, f"/runs/{run_id}/events")
    assert lines[-1]["type"] == "end" and lines[-1]["status"] == "succeeded", lines[-1]
    events = lines[:-1]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["step"] for e in events if e["type"] == "train"] == [1, 2, 3]
    assert events[-1]["type"] == "finished"
    assert c.get(f"/runs/{run_id}/events", headers=eve).json() == json.loads(json.dumps(events))
    tail = c.get(f"/runs/{run_id}/events", headers=eve, params={"after": events[-2]["seq"]}).json()
    assert [e["type"] for e in tail] == ["finished"]
    assert [e["step"] for e in c.get(f"/jobs/{run_id}/events", headers=w.tokens["leo"],
                                     params={"type": "train"}).json()] == [1, 2, 3]

    shown = c.get(f"/runs/{run_id}", headers=eve).json()
    assert shown["status"] == "succeeded" and shown["adapter_dir"] and shown["final_step"] == 3
    assert shown["best_checkpoint"] and shown["best_eval_loss"] is not None and shown["progress"]["step"] == 3
    assert shown["config"]["max_steps"] == 3 and shown["lineage"]["dataset"]["version_id"] == w.version
    listed = {r["job_id"]: r for r in c.get("/runs", headers=eve).json()}
    assert listed[run_id]["status"] == "succeeded"

    for action in ("cancel", "resume"):  # a finished run: refused cleanly, nothing changes
        r = c.post(f"/runs/{run_id}/{action}", headers=eve)
        assert r.status_code == 409 and r.json()["error"]["code"] == "job_conflict", r.text
        assert run_id in r.json()["error"]["message"]
    assert c.get(f"/runs/{run_id}", headers=eve).json()["status"] == "succeeded"


def test_reproduce_cancel_and_resume_a_run_and_merge_needs_a_finished_adapter(w):
    c, eve, run_id = w.client, w.tokens["eve"], w.run["run_id"]
    w.owner.jobs.wait(run_id, timeout=300, poll=0.3)
    again = c.post(f"/runs/{run_id}/reproduce", headers=eve)
    assert again.status_code == 201, again.text
    copy = again.json()["run_id"]
    assert copy != run_id and c.get(f"/runs/{copy}", headers=eve).json()["config"] == \
        c.get(f"/runs/{run_id}", headers=eve).json()["config"]
    assert c.post(f"/runs/{copy}/cancel", headers=eve).status_code == 202
    assert _follow(w, f"/runs/{copy}/events")[-1]["status"] == "cancelled"
    r = c.post(f"/runs/{copy}/merge", headers=eve, json={"prompts": 2})
    assert r.status_code == 400 and "no finished adapter" in r.json()["error"]["message"]
    assert c.post(f"/runs/{copy}/resume", headers=eve).json()["status"] == "running"
    assert c.post(f"/runs/{copy}/cancel", headers=eve).status_code == 202
    end = _follow(w, f"/jobs/{copy}/events")[-1]
    assert end["type"] == "end" and end["status"] == "cancelled" and end["ended"]


# ---- generation sets and scores ---------------------------------------------------------------
def test_a_generation_set_of_the_base_and_the_adapter_is_scored_with_intervals(w):
    c, eve, leo, run_id = w.client, w.tokens["eve"], w.tokens["leo"], w.run["run_id"]
    w.owner.jobs.wait(run_id, timeout=300, poll=0.3)
    adapter = f"adapter:{run_id}"
    assert adapter in [v["variant_id"] for v in c.get("/variants", headers=eve).json()]
    made = c.post("/generations", headers=eve, json={
        "variants": ["base", adapter], "prompts": {"version": w.version, "split": "test", "limit": 2},
        "decoding": {"max_tokens": 8}, "path": "transformers"})
    assert made.status_code == 201, made.text
    set_id = made.json()["set_id"]
    assert made.json()["prompts"] == 2
    end = _follow(w, f"/jobs/{set_id}/events")[-1]
    assert end["status"] == "succeeded", end

    shown = c.get(f"/generations/{set_id}", headers=leo).json()
    assert shown["status"] == "succeeded" and shown["chosen_path"] == "transformers" and shown["n_outputs"] == 4
    assert {v["variant_id"]: v["n"] for v in shown["per_variant"]} == {"base": 2, adapter: 2}
    assert shown["decoding"]["max_tokens"] == 8 and "run_dir" not in shown
    outputs = c.get(f"/generations/{set_id}/outputs", headers=leo, params={"variant": adapter}).json()
    assert outputs["total"] == 2 and all(r["variant_id"] == adapter and r["reference"] for r in outputs["rows"])
    assert set_id in [s["set_id"] for s in c.get("/generations", headers=leo).json()]
    assert c.get(f"/generations/{set_id}/scores", headers=leo).status_code == 404  # not scored yet

    scoring = c.post(f"/generations/{set_id}/scores", headers=eve, json={"metrics": ["exact_match", "chrf"]})
    assert scoring.status_code == 202, scoring.text
    assert _follow(w, f"/jobs/{scoring.json()['job_id']}/events")[-1]["status"] == "succeeded"
    scores = c.get(f"/generations/{set_id}/scores", headers=leo)
    assert scores.status_code == 200, scores.text
    body = scores.json()
    assert body["metrics"][:2] == ["exact_match", "chrf"]
    means = {(m["variant"], m["metric"]): m for m in body["summary"]}
    assert set(means) == {(v, m) for v in ("base", adapter) for m in ("exact_match", "chrf")}
    assert all(m["n"] == 2 and {"mean", "lo", "hi"} <= set(m) for m in means.values())
    exact = means[("base", "exact_match")]
    assert 0 <= exact["lo"] <= exact["mean"] <= exact["hi"] <= 1  # a proportion's interval (Agresti-Coull)
    assert {(d["variant"], d["metric"]) for d in body["deltas"]} == {(adapter, "exact_match"), (adapter, "chrf")}
    assert isinstance(body["verdict"], list) and body["confidence"] == w.owner.settings.metrics.confidence
    r = c.post(f"/generations/{set_id}/scores", headers=eve, json={"metrics": ["meteor"]})
    assert r.status_code == 400 and "meteor" in r.json()["error"]["message"]


def test_values_from_the_store_and_pandas_become_plain_json():
    from datetime import datetime
    from decimal import Decimal

    import numpy as np
    import pandas as pd

    from api.plain import plain

    frame = pd.DataFrame({"mean": [np.float64(0.5), np.nan], "n": np.array([2, 3], dtype=np.int64)})
    value = {"frame": frame, "when": datetime(2025, 1, 2, 3, 4, 5), "inf": float("inf"), "big": Decimal("1.5"),
             "flag": np.bool_(True), "missing": pd.NaT, "nested": (np.int32(7), [np.float32(0.25)])}
    assert json.loads(json.dumps(plain(value), allow_nan=False)) == {
        "frame": [{"mean": 0.5, "n": 2}, {"mean": None, "n": 3}], "when": "2025-01-02T03:04:05", "inf": None,
        "big": 1.5, "flag": True, "missing": None, "nested": [7, [0.25]]}
