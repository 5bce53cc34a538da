"""Issue [api] item 2, "Long work as jobs": a dataset import as a job. The worker (a real process)
validates and parses the upload and writes the rows to Parquet; the owner inserts the version when
it ingests the final event, in that one transaction, with import_dataset's own code. Expectations
come from import_dataset on the same bytes in a second, independent store."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

import core.datasets.imports

from core.datasets import ImportOptions, import_dataset
from core.datasets.import_worker import EXAMPLES_FILE, UPLOAD_FILE
from core.datasets.imports import import_status, start_import
from core.errors import PermissionDenied
from core.jobs import Jobs
from core.jobs.events import EVENTS_FILE
from core.jobs.launchers import job_processes
from core.store import Store

VERSION_COLUMNS = ("version_id", "dataset", "content_hash", "source_name", "source_format", "n_examples", "n_train",
                   "n_validation", "n_test", "split_spec", "tokenizer", "report", "created_by", "metrics")


def counts(store) -> dict[str, int]:
    return {t: store.scalar(f"SELECT count(*) FROM {t}") for t in ("datasets", "dataset_versions", "examples")} | {
        "audit": store.scalar("SELECT count(*) FROM audit_log WHERE action = 'data.import'")}


def version_rows(store, vid: str) -> tuple[dict, list[tuple]]:
    version = store.row(f"SELECT {', '.join(VERSION_COLUMNS)} FROM dataset_versions WHERE version_id = ?", [vid])
    examples = store.rows("SELECT * FROM examples WHERE version_id = ? ORDER BY idx", [vid])
    return version, [tuple(r.values()) for r in examples]


def options_of(settings, **changes) -> ImportOptions:
    return replace(ImportOptions.from_settings(settings), **changes)


@pytest.fixture
def files(demo_files):
    return demo_files  # 200 demo tickets, and the bad file with one problem of each kind


def test_a_good_file_through_the_job_is_the_version_import_dataset_makes(owner, accounts, files, tmp_path):
    eve = accounts["engineer"]
    good, _ = files
    data = good.read_bytes()
    options = options_of(owner.settings, name="tickets", metrics=["exact_match", "chrf"])
    job_id = start_import(owner.store, owner.jobs, eve, data, good.name, options, "support tickets")
    job = owner.jobs.wait(job_id, timeout=60)
    assert job["status"] == "succeeded", job["error"]
    status = import_status(owner.store, owner.jobs, eve, job_id)
    vid = status["result"]["version_id"]
    assert status["result"] == {"dataset": "tickets", "version_id": vid, "created": True, "metrics_updated": False}
    progress = owner.jobs.events(job_id, "progress")
    assert [e["stage"] for e in progress][:3] == ["read", "checked", "near_duplicates"]
    assert (progress[-1]["stage"], progress[-1]["done"]) == ("write", progress[-1]["total"])
    assert progress[-1]["total"] == status["report"].valid

    # The same bytes and options through import_dataset, in a store of its own.
    other = Store(tmp_path / "other.duckdb")
    other.migrate()
    try:
        direct = import_dataset(other, eve, data, good.name, options, description="support tickets")
        assert direct.version_id == vid and direct.created
        mine, theirs = version_rows(owner.store, vid), version_rows(other, vid)
        assert mine[0] == theirs[0] and mine[1] == theirs[1] and len(mine[1]) == mine[0]["n_examples"]
        assert owner.store.row("SELECT description FROM datasets WHERE name = 'tickets'") == {
            "description": "support tickets"}
    finally:
        other.close()
    audit = owner.store.rows("SELECT actor, target, detail FROM audit_log WHERE action = 'data.import'")
    assert audit == [{"actor": eve.username, "target": vid, "detail": f"tickets from {good.name}"}]
    run = Path(job["run_dir"])
    assert (run / UPLOAD_FILE).read_bytes() == data and (run / EXAMPLES_FILE).exists()

    # Identical content again (as a job, then in the request): recognised, nothing inserted.
    before = counts(owner.store)
    again = start_import(owner.store, owner.jobs, eve, data, good.name, options)
    assert owner.jobs.wait(again, timeout=60)["status"] == "succeeded"
    assert import_status(owner.store, owner.jobs, eve, again)["result"] == {
        "dataset": "tickets", "version_id": vid, "created": False, "metrics_updated": False}
    assert not import_dataset(owner.store, eve, data, good.name, options).created
    assert counts(owner.store) == before
    # ... and metrics named anew replace the declared ones, at ingest.
    again = start_import(owner.store, owner.jobs, eve, data, good.name, replace(options, metrics=["chrf"]))
    assert owner.jobs.wait(again, timeout=60)["status"] == "succeeded"
    assert import_status(owner.store, owner.jobs, eve, again)["result"]["metrics_updated"]
    assert owner.store.scalar("SELECT metrics FROM dataset_versions WHERE version_id = ?", [vid]) == '["chrf"]'
    assert counts(owner.store) == before


def test_a_bad_file_fails_the_job_with_its_report_and_inserts_nothing(owner, accounts, files):
    eve = accounts["engineer"]
    _, bad = files
    before = counts(owner.store)
    job_id = start_import(owner.store, owner.jobs, eve, bad.read_bytes(), bad.name, options_of(owner.settings))
    job = owner.jobs.wait(job_id, timeout=60)
    assert job["status"] == "failed" and "nothing was imported" in job["error"] and bad.name in job["error"]
    status = import_status(owner.store, owner.jobs, eve, job_id)
    assert status["result"] is None and status["report"] is not None and not status["report"].ok
    from core.datasets import validate

    expected = validate(bad.read_bytes(), bad.name, options_of(owner.settings)).report
    assert status["report"].to_dict() == json.loads(json.dumps(expected.to_dict(), default=str))
    [failed] = owner.jobs.events(job_id, "failed")
    assert failed["errors"] == len(expected.errors) and failed["problems"][0]["line"] == expected.errors[0].line
    assert not (Path(job["run_dir"]) / EXAMPLES_FILE).exists()
    assert counts(owner.store) == before


def test_a_worker_killed_before_its_final_event_imports_nothing_and_the_job_fails(owner, accounts, tmp_path):
    from core.demo.tickets import write_demo_files

    eve = accounts["engineer"]
    big, _ = write_demo_files(tmp_path / "big", n=4000, seed=3)  # seconds of checking: time to kill it
    before = counts(owner.store)
    job_id = start_import(owner.store, owner.jobs, eve, big.read_bytes(), big.name, options_of(owner.settings))
    events = Path(owner.jobs.get(job_id)["run_dir"], EVENTS_FILE)
    deadline = time.monotonic() + 60
    while b'"progress"' not in (events.read_bytes() if events.exists() else b""):
        assert time.monotonic() < deadline, "the worker never reported progress"
        time.sleep(0.005)
    os.kill(owner.jobs.get(job_id)["pid"], signal.SIGKILL)
    job = owner.jobs.wait(job_id, timeout=30)
    assert job["status"] == "failed" and "exited without finishing" in job["error"]
    assert job_processes(job_id) == []  # nothing it started outlives it
    assert not owner.jobs.events(job_id, "finished")
    assert import_status(owner.store, owner.jobs, eve, job_id)["result"] is None
    assert counts(owner.store) == before


class OwnerDied(BaseException):
    """What the owner's process dying half-way through an ingest looks like to its transaction."""


def test_an_owner_dying_inside_the_ingest_leaves_nothing_and_a_restart_imports_once(owner, accounts, files,
                                                                                      monkeypatch):
    import core.datasets as datasets_mod

    eve = accounts["engineer"]
    good, _ = files
    before = counts(owner.store)
    job_id = start_import(owner.store, owner.jobs, eve, good.read_bytes(), good.name, options_of(owner.settings))
    deadline = time.monotonic() + 60
    while owner.jobs.launcher.alive(job_id, owner.jobs.get(job_id)["pid"]):  # the worker has said everything
        assert time.monotonic() < deadline
        time.sleep(0.05)
    real = datasets_mod.audit.record

    def dies_on_import(cur, actor, action, *args, **kw):
        if action == "data.import":  # the version and its examples are inserted by now: this is the latest point
            raise OwnerDied
        return real(cur, actor, action, *args, **kw)

    monkeypatch.setattr(datasets_mod.audit, "record", dies_on_import)
    with pytest.raises(OwnerDied):
        owner.jobs.ingest(job_id)
    assert counts(owner.store) == before and owner.jobs.get(job_id)["ingest_offset"] == 0
    monkeypatch.setattr(datasets_mod.audit, "record", real)
    restarted = Jobs(owner.store, owner.settings.runs_dir)  # a new owner's service: from the committed offset
    restarted.reconcile()
    restarted.reconcile()
    assert restarted.get(job_id)["status"] == "succeeded"
    after = counts(owner.store)
    assert after["dataset_versions"] == before["dataset_versions"] + 1 and after["audit"] == before["audit"] + 1
    assert after["examples"] == before["examples"] + 200


def test_only_those_who_may_import_start_or_read_an_import(owner, accounts, files):
    good, _ = files
    for role in ("rater", "lead"):
        with pytest.raises(PermissionDenied):
            start_import(owner.store, owner.jobs, accounts[role], good.read_bytes(), good.name,
                         options_of(owner.settings))
        with pytest.raises(PermissionDenied):
            import_status(owner.store, owner.jobs, accounts[role], "import-20250101-000000-abc123")
    assert owner.store.scalar("SELECT count(*) FROM jobs") == 0
    assert not any(Path(owner.settings.runs_dir).iterdir())


def test_the_data_page_imports_a_large_file_as_a_job_and_shows_its_progress_then_the_version(
        settings, env, owner, accounts, files, monkeypatch):
    from core.datasets import list_versions
    from tests.apptest import DashboardOwners, assert_clean, button, goto, make_app, use_fast_password_hashing

    monkeypatch.setattr(core.datasets.imports, "JOB_ABOVE_BYTES", 0)  # every file is "large" here
    use_fast_password_hashing(monkeypatch)
    owners = DashboardOwners(monkeypatch)
    try:
        good, _ = files
        at = goto(make_app(env, "eve"), "Data")
        at.radio[0].set_value("Path on the server").run()
        next(t for t in at.text_input if t.label == "File path on the server").set_value(str(good)).run()
        at = button(at, "Import").click().run()
        assert_clean(at)
        [started] = [s for s in (e.value for e in at.success) if s.startswith("Importing ")]
        job_id = started.split(" as job ")[1].split(":")[0]
        deadline = time.monotonic() + 60
        while not list_versions(owner.store, accounts["engineer"]):  # the dashboard's monitor ingests it
            assert time.monotonic() < deadline, "the page's import job did not finish"
            time.sleep(0.2)
        at.run()
        assert_clean(at)
        [version] = list_versions(owner.store, accounts["engineer"])
        assert any(f"version `{version['version_id']}` from {good.name}" in e.value for e in at.success)
        assert owner.jobs.get(job_id)["kind"] == "import" and version["created_by"] == "eve"
    finally:
        owners.close()


def test_a_validation_job_ends_with_the_report_either_way_and_imports_nothing(owner, accounts, files):
    """Validating a large file is a job too (`check_only`): it succeeds with the same report `validate`
    gives, whether the file can be imported or not, and writes no dataset."""
    from core.datasets import validate

    eve = accounts["engineer"]
    before = counts(owner.store)
    for path, importable in zip(files, (True, False)):
        job_id = start_import(owner.store, owner.jobs, eve, path.read_bytes(), path.name,
                              options_of(owner.settings), check_only=True)
        job = owner.jobs.wait(job_id, timeout=60)
        status = import_status(owner.store, owner.jobs, eve, job_id)
        expected = validate(path.read_bytes(), path.name, options_of(owner.settings)).report
        assert job["status"] == "succeeded" and status["check_only"], (job, status)
        assert status["result"] == {"ok": importable, "examples": expected.valid, "errors": len(expected.errors),
                                    "warnings": len(expected.warnings)}
        assert status["report"].to_dict() == json.loads(json.dumps(expected.to_dict(), default=str))
        assert not (Path(job["run_dir"]) / EXAMPLES_FILE).exists()
    assert counts(owner.store) == before


def test_the_data_page_validates_a_large_file_as_a_job(settings, env, owner, accounts, files, monkeypatch):
    from tests.apptest import DashboardOwners, assert_clean, button, goto, make_app, use_fast_password_hashing

    monkeypatch.setattr(core.datasets.imports, "JOB_ABOVE_BYTES", 0)  # every file is "large" here
    use_fast_password_hashing(monkeypatch)
    owners = DashboardOwners(monkeypatch)
    try:
        _, bad = files
        at = goto(make_app(env, "eve"), "Data")
        at.radio[0].set_value("Path on the server").run()
        next(t for t in at.text_input if t.label == "File path on the server").set_value(str(bad)).run()
        at = button(at, "Validate").click().run()
        assert_clean(at)
        assert [s for s in (e.value for e in at.success) if s.startswith("Checking ")]
        deadline = time.monotonic() + 60
        while not any("cannot be imported until the errors are fixed" in e.value for e in at.run().error):
            assert time.monotonic() < deadline, [e.value for e in at.error]
            time.sleep(0.3)
        assert_clean(at)
        assert counts(owner.store)["dataset_versions"] == 0
    finally:
        owners.close()


def test_the_command_line_imports_a_large_file_as_a_job_and_prints_its_progress(owner, accounts, files, tmp_path,
                                                                               monkeypatch):
    """`tuneboard data import` of a file over the threshold starts the import job through the API, prints
    each stage as it ends, then the version; a file with errors ends with every problem, exit 1."""
    import io

    import cli as cli_app
    from cli.context import invoke

    monkeypatch.setattr(core.datasets.imports, "JOB_ABOVE_BYTES", 0)  # every file is "large" here
    good, bad = files

    def run(path) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = invoke(cli_app.app, ["data", "import", str(path), "--name", "tickets"], str(tmp_path), owner, out, err)
        return code, out.getvalue(), err.getvalue()

    code, out, err = run(good)
    assert code == 0, err
    assert re.search(r"^started import-\S+: importing support_tickets\.jsonl as tickets$", out, re.M), out
    assert re.search(r"^checked: \d+ of \d+ rows valid$", out, re.M), out
    [version] = [v for v in owner.store.rows("SELECT version_id FROM dataset_versions")]
    assert f"Imported tickets version {version['version_id']}" in out
    code, out, err = run(bad)
    assert code == 1 and "nothing was imported" in err and "Traceback" not in out + err, (out, err)
    assert owner.store.scalar("SELECT count(*) FROM dataset_versions") == 1
