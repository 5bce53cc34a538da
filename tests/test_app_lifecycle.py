"""AppTest tier for the Models page's lifecycle parts: the promoted version of each task with
its history, rollback with a reason (engineers), read-only for leads; the deployment and the run
record written by jobs the page starts and follows."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from core.datasets import ImportOptions, import_dataset
from core.lifecycle import promotion, schedules
from core.training.config import TrainConfig
from tests.apptest import assert_clean, goto
from tests.test_app import app, fast_password_hashing  # noqa: F401  (the same fixtures as the other pages)
from tests.test_lifecycle_promotion import LINEAGE, WHY, world  # noqa: F401

pytestmark = pytest.mark.slow


def test_engineer_rolls_back_the_promoted_version_with_a_reason(app, world):
    store, acc = world
    promotion.promote(store, acc["engineer"], "adapter:a", WHY)
    promotion.promote(store, acc["engineer"], "adapter:b", WHY)
    lead = goto(app("leo"), "Models")
    assert_clean(lead)
    assert any(m.value.startswith("**tickets** → `adapter:b` (gate pass)") for m in lead.markdown)
    assert not any(b.label == "Roll back" for b in lead.button)  # leads read only
    at = goto(app("eve"), "Models")
    assert_clean(at)
    at.text_input(key="rollback_reason_tickets").set_value("too short")
    next(b for b in at.button if b.label == "Roll back").click().run()
    assert any("at least 15 characters" in e.value for e in at.error)
    assert promotion.current(store, acc["engineer"], "tickets") == "adapter:b"
    at.text_input(key="rollback_reason_tickets").set_value("b mislabels refund tickets")
    next(b for b in at.button if b.label == "Roll back").click().run()
    assert_clean(at)
    assert promotion.current(store, acc["engineer"], "tickets") == "adapter:a"
    assert any(m.value.startswith("**tickets** → `adapter:a` (gate pass) · rolled back to") for m in at.markdown)
    history = at.dataframe[0].value
    assert list(history["action"]) == ["rollback", "promote", "promote"]


def test_engineer_schedules_a_retrain_and_pauses_it(app, owner, accounts, demo_files, tiny_model):
    good, _ = demo_files
    version = import_dataset(owner.store, accounts["engineer"], good.read_bytes(), good.name,
                             ImportOptions(name="tickets")).version_id
    with owner.store.transaction() as cur:
        cur.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES "
                    "('train-first', 'train', 'succeeded', '', '{}', 'eve')")
        cur.execute("INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage) VALUES "
                    "('train-first', ?, ?, 'lora', ?, ?)",
                    [version, tiny_model, json.dumps(TrainConfig(base_model=tiny_model, dataset_version=version)
                                                     .to_dict()), json.dumps(LINEAGE)])
    at = goto(app("eve"), "Models")
    retrain = at.tabs[1]
    assert any(e.label == "New schedule" for e in retrain.expander)
    at.text_input(key="schedule_name").set_value("Monday retrain")
    at.radio(key="schedule_trigger").set_value("cron")
    at.text_input(key="schedule_spec").set_value("0 3 * * 1")
    next(b for b in at.button if b.label == "Create schedule").click().run()
    assert_clean(at)
    [s] = schedules.schedules(owner.store, accounts["lead"])
    assert (s["name"], s["task"], s["trigger"], s["spec"], s["enabled"]) == ("Monday retrain", "tickets", "cron",
                                                                             "0 3 * * 1", True)
    assert s["next_run_at"].weekday() == 0 and s["next_run_at"].hour == 3  # a Monday, 03:00 UTC
    at.run()
    assert any("cron '0 3 * * 1' (UTC)" in m.value for m in at.tabs[1].markdown)
    next(b for b in at.button if b.label == "Pause").click().run()
    assert_clean(at)
    assert not schedules.schedules(owner.store, accounts["lead"])[0]["enabled"]
    assert any("paused" in m.value for m in at.tabs[1].markdown)
    lead = goto(app("leo"), "Models")
    assert not any(e.label == "New schedule" for e in lead.tabs[1].expander)
    assert not any(b.label in ("Run now", "Resume", "Delete") for b in lead.button)  # leads read


def test_deployment_and_contenders_on_the_models_page(app, world, tiny_model):
    store, acc = world
    promotion.promote(store, acc["engineer"], "adapter:a", WHY)
    at = goto(app("eve"), "Models")
    assert_clean(at)
    versions = at.tabs[0]
    assert "Deployment" in [h.value for h in versions.subheader]
    # The fixture's versions have no adapter files: the plan says so instead of writing a broken deployment.
    assert any("tickets" in w.value for w in versions.warning)
    assert not any(b.label.startswith("Write the deployment") for b in at.button)
    contenders_tab = at.tabs[2]
    assert contenders_tab.label == "Contenders" and any(i.value == "No contender yet." for i in contenders_tab.info)
    at.text_input(key="contender_name").set_value("prompted-base")
    at.text_area(key="contender_system").set_value("Reply with the JSON triage object only.")
    next(b for b in at.button if b.label == "Add contender").click().run()
    assert_clean(at)
    table = at.tabs[2].dataframe[0].value
    assert list(table["contender"]) == ["contender:prompted-base"] and list(table["kind"]) == ["prompted"]
    assert table["system prompt"][0] == "Reply with the JSON triage object only."
    lead = goto(app("leo"), "Models")
    assert not any(e.label == "Add a contender" for e in lead.tabs[2].expander)


def test_the_deployment_and_the_run_record_are_jobs_the_page_follows(app, world, owner, monkeypatch):
    """Both buttons start a job (its real worker) and return at once; the page shows the job's progress and
    then the result: what was written, or a download button for the zip. The dashboard's owner runs the
    bundle worker paused once half-way through the zip, so the page is seen while it runs."""
    import core.owner
    from core.jobs.launchers import LocalLauncher
    from tests.test_lifecycle_deploy import SHIM

    paused = LocalLauncher(lambda module, run_dir: [sys.executable, "-c", SHIM, str(run_dir), module, "advance",
                                                    "zipping", "1"])
    monkeypatch.setattr(core.owner, "training_launchers", lambda settings: {"bundle": paused})
    store, acc = world
    promotion.promote(store, acc["engineer"], "base", "the base is good enough here", override=True, task="tickets")
    at = goto(app("eve"), "Models")
    assert_clean(at)
    [write] = [b for b in at.button if b.label.startswith("Write the deployment to ")]
    at = write.click().run()
    assert_clean(at)
    deploy_job = at.session_state["deploy_job"]
    chosen = next(s for s in at.selectbox if s.label == "Run").value
    at = next(b for b in at.button if b.label == "Prepare the run record (zip)").click().run()
    assert_clean(at)
    bundle_job = at.session_state[f"bundle_job_{chosen}"]
    run = Path(owner.jobs.get(bundle_job)["run_dir"])
    deadline = time.monotonic() + 60
    while not (run / "paused").exists() or not owner.jobs.events(bundle_job, "progress"):
        assert time.monotonic() < deadline, owner.jobs.log_tail(bundle_job)
        time.sleep(0.1)
    at.run()
    assert_clean(at)
    [bar] = [p for p in at.get("progress") if p.proto.text.startswith("Preparing the run record")]
    assert bar.proto.text.startswith(f"Preparing the run record ({bundle_job}): zipping, ") and not at.get(
        "download_button")
    (run / "go").touch()
    deadline = time.monotonic() + 60
    while {owner.jobs.get(j)["status"] for j in (deploy_job, bundle_job)} & {"queued", "running"}:
        assert time.monotonic() < deadline, "the page's jobs did not finish"  # the dashboard's monitor ingests
        time.sleep(0.2)
    at.run()
    assert_clean(at)
    target = owner.settings.exports_dir / "deployment"
    assert any(s.value.startswith("Wrote 3 files") and f"start it with {target / 'serve.sh'}" in s.value
               for s in at.success), [s.value for s in at.success]
    assert len([b for b in at.get("download_button") if b.proto.label.startswith(f"Download {chosen}.zip (")]) == 1
    assert (target / "serve.sh").exists()
    door = {r["action"]: r["door"] for r in store.rows("SELECT action, door FROM audit_log WHERE action IN "
                                                           "('deploy', 'bundle.export')")}
    assert door == {"deploy": "page", "bundle.export": "page"}
