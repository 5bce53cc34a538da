"""[api] Regression runs and gates, promotion and rollback, pipelines and schedules, contenders,
deployment folders and bundles, accounts and the audit trail, over HTTP: per route, a call with a
role that may make it, and one with a role that may not (403, nothing written). No worker runs: the
jobs' launcher only records, so started jobs stay as they were started."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

from core import tokens
from core.datasets import ImportOptions, import_dataset
from core.lifecycle import promotion
from core.regression import runs
from core.training.config import TrainConfig
from tests.apptest import table_counts, use_fast_password_hashing
from tests.test_api import bearer, client  # noqa: F401  (the fixture)
from tests.test_lifecycle_schedules import _quiet
from tests.test_regression_runs import seed_suite_set

WHY = "reads better and passes the gate"
LINEAGE = {"dataset": {"name": "tickets", "version_id": "v", "content_hash": "0" * 16}, "base_model": {"id": "m"},
           "code": {"tuneboard": "0", "commit": "0" * 10, "dirty": False}, "seed": 13}
WRITES = ("jobs", "promotions", "pipelines", "schedules", "model_variants", "api_tokens", "users", "audit_log",
          "regression_gates")


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    use_fast_password_hashing(monkeypatch)


@pytest.fixture
def as_role(owner, accounts):
    """role -> Authorization header of a token of that role's account (made in core: no log-in needed)."""
    made = {}
    for role in ("rater", "lead", "engineer"):
        made[role] = bearer(tokens.create_token(owner.store, accounts[role], "test", 1, 365)[1])
    return made


@pytest.fixture
def world(owner, accounts, demo_files, tiny_model):
    """The task 'tickets' with a finished run (a config on this base, to retrain from) and two fine-tuned
    versions of it whose gates passed; jobs start no worker."""
    good, _ = demo_files
    store = owner.store
    version = import_dataset(store, accounts["engineer"], good.read_bytes(), good.name,
                             ImportOptions(name="tickets")).version_id
    config = TrainConfig(base_model=tiny_model, dataset_version=version, max_steps=4)
    with store.transaction() as cur:
        for name in ("a", "b"):
            cur.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES "
                        "(?, 'train', 'succeeded', '', '{}', 'eve')", [f"train-{name}"])
            cur.execute("INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage) VALUES "
                        "(?, ?, ?, 'lora', ?, ?)", [f"train-{name}", version, tiny_model,
                                                    json.dumps(config.to_dict()), json.dumps(LINEAGE)])
            cur.execute("INSERT INTO model_variants (variant_id, kind, name, path, base_model, job_id, detail) VALUES "
                        "(?, 'adapter', ?, '', ?, ?, ?)", [f"adapter:{name}", name, tiny_model, f"train-{name}",
                                                            json.dumps({"dataset_version": version})])
    suite_set = seed_suite_set(store, {}, tuned=("adapter:a", "adapter:b"))
    _quiet(owner)
    return {"store": store, "version": version, "suite_set": suite_set}


def refused(client, owner, method: str, path: str, headers: dict, **kwargs) -> None:  # noqa: F811
    """The call is answered 403 with a JSON error, and nothing is written."""
    before = {t: owner.store.scalar(f"SELECT count(*) FROM {t}") for t in WRITES}
    before.update(table_counts(owner.store))
    r = client.request(method, path, headers=headers, **kwargs)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (method, path, r.text)
    after = {t: owner.store.scalar(f"SELECT count(*) FROM {t}") for t in WRITES}
    after.update(table_counts(owner.store))
    assert after == before, (method, path)


def audited(owner, action: str) -> dict:
    row = owner.store.row("SELECT actor, action, target, detail, door FROM audit_log WHERE action = ? "
                          "ORDER BY id DESC LIMIT 1", [action])
    assert row is not None, f"no audit entry {action}"
    assert row["door"] == "api"
    return row


def test_regression_runs_start_list_and_show_each_gate(client, owner, world, as_role):  # noqa: F811
    body = {"variants": ["adapter:a"], "items": 2, "path": "transformers"}
    refused(client, owner, "POST", "/regression/runs", as_role["rater"], json=body)
    r = client.post("/regression/runs", headers=as_role["lead"], json=body)
    assert r.status_code == 202, r.text
    started = r.json()["id"]
    assert owner.store.scalar("SELECT kind FROM jobs WHERE job_id = ?", [started]) == "generate"
    assert json.loads(audited(owner, "regression.run")["detail"]) == {"items": 2, "path": "transformers",
                                                                      "variants": ["adapter:a"]}
    assert audited(owner, "generate.start")["target"] == started

    refused(client, owner, "GET", "/regression/runs", as_role["rater"])
    listed = client.get("/regression/runs", headers=as_role["lead"]).json()
    assert {r["set_id"] for r in listed["runs"]} == {started, world["suite_set"]}
    refused(client, owner, "GET", f"/regression/runs/{world['suite_set']}", as_role["rater"])
    shown = client.get(f"/regression/runs/{world['suite_set']}", headers=as_role["engineer"]).json()
    assert [(g["variant_id"], g["verdict"]) for g in shown["gates"]] == [("adapter:a", "pass"), ("adapter:b", "pass")]
    assert shown["gates"][0]["detail"]["overall"]["n"] > 0
    assert client.get("/regression/runs/nope", headers=as_role["lead"]).status_code == 404


def test_promote_and_roll_back_with_reasons(client, owner, world, as_role):  # noqa: F811
    for variant in ("adapter:a", "adapter:b"):
        runs.judge(owner.store, owner_user(owner), world["suite_set"], variant, owner.settings.regression)
    body = {"variant": "adapter:a", "reason": WHY}
    for role in ("rater", "lead"):
        refused(client, owner, "POST", "/promotions", as_role[role], json=body)
    r = client.post("/promotions", headers=as_role["engineer"], json=body)
    assert r.status_code == 201 and r.json()["task"] == "tickets" and r.json()["current"] == "adapter:a", r.text
    assert client.post("/promotions", headers=as_role["engineer"],
                       json={"variant": "adapter:b", "reason": "ok"}).json()["error"]["code"] == "invalid_input"
    client.post("/promotions", headers=as_role["engineer"], json={**body, "variant": "adapter:b"})
    back = {"task": "tickets", "reason": "b answers refunds wrongly"}
    refused(client, owner, "POST", "/promotions/rollback", as_role["lead"], json=back)
    r = client.post("/promotions/rollback", headers=as_role["engineer"], json=back)
    assert r.status_code == 201 and r.json()["current"] == "adapter:a"
    assert audited(owner, "rollback")["actor"] == "eve"
    refused(client, owner, "GET", "/promotions", as_role["rater"])
    shown = client.get("/promotions", headers=as_role["lead"]).json()
    assert shown["promoted"]["tickets"]["current"] == "adapter:a"
    assert [h["action"] for h in shown["history"]] == ["rollback", "promote", "promote"]


def owner_user(owner):
    from core.auth import OWNER

    return OWNER


def test_pipelines_and_schedules(client, owner, world, as_role):  # noqa: F811
    eng, lead = as_role["engineer"], as_role["lead"]
    new = {"task": "tickets", "trigger": "interval", "spec": "168", "suite_items": 2}
    refused(client, owner, "POST", "/schedules", lead, json=new)
    r = client.post("/schedules", headers=eng, json=new)
    assert r.status_code == 201 and r.json()["describe"] == "every 7 days", r.text
    sid = r.json()["schedule_id"]
    refused(client, owner, "GET", "/schedules", as_role["rater"])
    assert [s["schedule_id"] for s in client.get("/schedules", headers=lead).json()["schedules"]] == [sid]

    refused(client, owner, "POST", f"/schedules/{sid}/pause", lead)
    assert client.post(f"/schedules/{sid}/pause", headers=eng).json()["enabled"] is False
    assert client.post(f"/schedules/{sid}/resume", headers=eng).json()["enabled"] is True
    assert [a["action"] for a in owner.store.rows("SELECT action FROM audit_log WHERE target = ? ORDER BY id",
                                                  [sid])] == ["schedule", "schedule.pause", "schedule.resume"]

    refused(client, owner, "POST", f"/schedules/{sid}/run", lead)
    r = client.post(f"/schedules/{sid}/run", headers=eng)
    assert r.status_code == 202 and r.json()["status"] == "running", r.text
    pid = r.json()["id"]
    assert audited(owner, "schedule.run_now")["target"] == sid
    assert json.loads(audited(owner, "pipeline.start")["detail"])["schedule"] == sid
    assert audited(owner, "train.start")["actor"] == "eve"

    refused(client, owner, "POST", "/pipelines", lead, json={"task": "tickets"})
    refused(client, owner, "GET", "/pipelines", as_role["rater"])
    assert [p["pipeline_id"] for p in client.get("/pipelines", headers=lead).json()] == [pid]
    shown = client.get(f"/pipelines/{pid}", headers=lead).json()
    assert shown["pipeline"]["status"] == "running" and shown["summary"] is None

    decision = {"decision": "dismissed", "reason": "the old version reads better"}
    refused(client, owner, "POST", f"/pipelines/{pid}/decision", lead, json=decision)
    r = client.post(f"/pipelines/{pid}/decision", headers=eng, json=decision)
    assert r.status_code == 400 and "decide once its candidate is measured" in r.json()["error"]["message"]
    owner.store.execute("UPDATE pipelines SET stage = 'ready' WHERE pipeline_id = ?", [pid])
    r = client.post(f"/pipelines/{pid}/decision", headers=eng, json=decision)
    assert r.status_code == 200 and r.json()["status"] == "dismissed", r.text
    assert json.loads(audited(owner, "pipeline.decide")["detail"])["decision"] == "dismissed"

    refused(client, owner, "DELETE", f"/schedules/{sid}", lead)
    assert client.delete(f"/schedules/{sid}", headers=eng).status_code == 204
    assert audited(owner, "schedule.delete")["target"] == sid
    assert client.get("/schedules", headers=lead).json()["schedules"] == []


def test_contenders(client, owner, world, as_role):  # noqa: F811
    eng, lead = as_role["engineer"], as_role["lead"]
    prompted = {"name": "polite", "system_prompt": "Answer politely.",
                "few_shot": [{"user": "Hi", "assistant": "Hello! How can I help?"}], "tasks": ["tickets"]}
    refused(client, owner, "POST", "/contenders/prompted", lead, json=prompted)
    r = client.post("/contenders/prompted", headers=eng, json=prompted)
    assert r.status_code == 201 and r.json() == {"variant_id": "contender:polite"}, r.text
    external = {"name": "vendor", "url": "https://api.example.com/v1", "model": "gpt-x", "key_env": "VENDOR_KEY"}
    refused(client, owner, "POST", "/contenders/external", lead, json=external)
    assert client.post("/contenders/external", headers=eng, json=external).json() == {"variant_id": "external:vendor"}
    assert "VENDOR_KEY" in audited(owner, "contender")["detail"]
    model = {"name": "newer", "model": "/no/such/folder"}
    refused(client, owner, "POST", "/contenders/model", lead, json=model)
    r = client.post("/contenders/model", headers=eng, json=model)
    assert r.status_code == 400 and "not a model folder" in r.json()["error"]["message"]
    refused(client, owner, "GET", "/contenders", as_role["rater"])
    listed = client.get("/contenders", headers=lead).json()
    assert {c["variant_id"]: c["kind"] for c in listed} == {"contender:polite": "prompted", "external:vendor": "external"}
    refused(client, owner, "DELETE", "/contenders/external:vendor", lead)
    assert client.delete("/contenders/external:vendor", headers=eng).status_code == 204
    assert audited(owner, "contender.remove")["target"] == "external:vendor"


def test_deploy_and_bundles(client, owner, world, as_role, tmp_path):  # noqa: F811
    """Both are jobs: these two kinds run their real workers here (the other kinds still start nothing)."""
    from core.jobs.launchers import LocalLauncher

    owner.jobs.launchers.update(deploy=LocalLauncher(), bundle=LocalLauncher())
    eng, lead = as_role["engineer"], as_role["lead"]
    promotion.promote(owner.store, owner_user(owner), "base", "the base is good enough here", override=True,
                      task="tickets")
    refused(client, owner, "GET", "/deploy/plan", as_role["rater"])
    plan = client.get("/deploy/plan", headers=lead).json()
    assert plan["problems"] == [] and plan["versions"]["tickets"]["variant_id"] == "base"
    target = tmp_path / "deployment"
    refused(client, owner, "POST", "/deploy", lead, json={"out_dir": str(target)})
    assert not target.exists()
    r = client.post("/deploy", headers=eng, params={"wait": "true"}, json={"out_dir": str(target)})
    assert r.status_code == 201 and (target / "serve.sh").exists(), r.text
    done = r.json()
    assert done["status"] == "succeeded" and "serve.sh" in done["result"]["files"] and done["out_dir"] == str(target)
    assert json.loads(audited(owner, "deploy")["detail"])["versions"] == {"tickets": "base"}
    refused(client, owner, "GET", f"/deploy/jobs/{done['job_id']}", as_role["rater"])
    shown = client.get(f"/deploy/jobs/{done['job_id']}", headers=lead).json()
    assert shown["status"] == "succeeded" and shown["progress"]["stage"] == "hashing"  # a base: 0 bytes to copy
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    jobs = owner.store.scalar("SELECT count(*) FROM jobs")
    r = client.post("/deploy", headers=eng, json={"out_dir": str(tmp_path / "mine")})
    assert r.status_code == 400 and "not empty" in r.json()["error"]["message"], r.text
    assert owner.store.scalar("SELECT count(*) FROM jobs") == jobs  # refused before any job

    refused(client, owner, "POST", "/bundles", as_role["rater"], json={"run_id": "train-a"})
    r = client.post("/bundles", headers=lead, json={"run_id": "train-a", "data": False})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.json()["download"] == f"/bundles/jobs/{job_id}/zip" and r.json()["run_id"] == "train-a"
    deadline = time.monotonic() + 60
    while (status := client.get(f"/bundles/jobs/{job_id}", headers=lead).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["status"] == "succeeded" and status["progress"]["stage"] == "zipping", status
    assert status["result"]["file"] == "train-a.zip" and "path" not in status["result"]  # no server path
    refused(client, owner, "GET", f"/bundles/jobs/{job_id}/zip", as_role["rater"])
    r = client.get(f"/bundles/jobs/{job_id}/zip", headers=lead)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
    zipped = r.content
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(zipped)).read("bundle.json"))
    assert manifest["run"]["job_id"] == "train-a" and manifest["data"]["included"] is False
    assert audited(owner, "bundle.export")["actor"] == "leo"
    r = client.get("/bundles/jobs/train-a", headers=lead)
    assert r.status_code == 404 and "training run" in r.json()["error"]["message"], r.text
    assert client.post("/bundles", headers=lead, json={"run_id": "train-nope"}).status_code == 404
    # A worker that has not finished: the zip is 409 until it has; `wait` gives up with 202.
    owner.jobs.launchers.pop("bundle")  # back to the recording launcher: the job stays running
    r = client.post("/bundles", headers=lead, params={"wait": "true", "timeout": 0.5}, json={"run_id": "train-a"})
    assert r.status_code == 202 and r.json()["status"] == "running", r.text
    r = client.get(f"/bundles/jobs/{r.json()['job_id']}/zip", headers=lead)
    assert r.status_code == 409 and "still being written" in r.json()["error"]["message"], r.text

    refused(client, owner, "POST", "/bundles/reproduce", {**lead, "Content-Type": "application/zip"},
            content=zipped)
    r = client.post("/bundles/reproduce", content=b"not a zip", headers={**eng, "Content-Type": "application/zip"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input", r.text


def test_accounts_and_the_audit_trail(client, owner, accounts, as_role):  # noqa: F811
    eng, lead = as_role["engineer"], as_role["lead"]
    refused(client, owner, "GET", "/users", lead)
    assert {u["username"] for u in client.get("/users", headers=eng).json()} == {"admin", "rita", "leo", "eve"}
    refused(client, owner, "POST", "/users", lead, json={"username": "ci", "role": "engineer"})
    r = client.post("/users", headers=eng, json={"username": "ci", "role": "engineer"})
    assert r.status_code == 201 and len(r.json()["password"]) >= 10, r.text
    refused(client, owner, "PUT", "/users/ci/role", lead, json={"role": "lead"})
    assert client.put("/users/ci/role", headers=eng, json={"role": "lead"}).json()["role"] == "lead"
    refused(client, owner, "PUT", "/users/ci/disabled", lead, json={"disabled": True})
    assert client.put("/users/ci/disabled", headers=eng, json={"disabled": True}).status_code == 200
    assert client.put("/users/eve/disabled", headers=eng, json={"disabled": True}).status_code == 400  # oneself

    refused(client, owner, "GET", "/audit", lead)
    refused(client, owner, "GET", "/audit?format=csv", as_role["rater"])
    entries = client.get("/audit?who=eve&action=users.", headers=eng).json()
    assert [(e["action"], e["target"], e["door"]) for e in entries] == [
        ("users.set_disabled", "ci", "api"), ("users.set_role", "ci", "api"), ("users.add", "ci", "api")]
    assert client.get("/audit?door=api&limit=1", headers=eng).json()[0]["action"] == "users.set_disabled"
    assert client.get("/audit?since=2999-01-01T00:00:00", headers=eng).json() == []
    assert client.get("/audit?door=ftp", headers=eng).status_code == 422
    added = client.get("/audit?action=users.add", headers=eng).json()
    assert {e["target"] for e in added} == {"admin", "rita", "leo", "eve", "ci"}
    csv = client.get("/audit?action=users.add&format=csv", headers=eng)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0] == "id,created_at,actor,action,target,detail,door" and len(lines) == 1 + len(added)
