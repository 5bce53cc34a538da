"""The audit trail in core: one writer (core.audit.record), the door each edge sets, reading it with
filters (engineers only), the CSV export, and the state changes that write an entry."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core import audit
from core.errors import InvalidInput, PermissionDenied
from tests.test_lifecycle_bundle import NoWorker
from tests.test_lifecycle_schedules import task  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[1]


def test_only_core_audit_writes_the_audit_log():
    writers = [str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py")
               if "INSERT INTO audit_log" in p.read_text() and p.name != "audit.py"]
    assert writers == []


def test_the_door_is_the_edges_and_the_server_otherwise():
    seen = {}

    def look(key: str) -> None:
        seen[key] = audit.door()

    assert audit.door() == "server"
    with audit.through("api"):
        assert audit.door() == "api"
        worker = threading.Thread(target=look, args=("thread",))  # a thread of its own starts with no door
        worker.start()
        worker.join()
    assert audit.door() == "server" and seen["thread"] == "server"

    def page_run() -> None:
        audit.set_door("page")  # as dashboard/app.py does at the start of each run
        look("page")

    worker = threading.Thread(target=page_run)
    worker.start()
    worker.join()
    assert seen["page"] == "page" and audit.door() == "server"  # set in its run only
    with pytest.raises(ValueError):
        audit.set_door("window")


def test_a_registered_default_names_the_door_of_threads_no_edge_wrapped(monkeypatch):
    monkeypatch.setattr(audit, "_defaults", [])
    mine = threading.local()
    audit.default_door(lambda: getattr(mine, "door", None))
    assert audit.door() == "server"
    mine.door = "page"  # e.g. a Streamlit script thread running a callback or a fragment
    assert audit.door() == "page"
    with audit.through("cli"):
        assert audit.door() == "cli"  # an edge's own word wins


def test_entries_filter_and_only_engineers_read_them(owner, accounts):
    store = owner.store
    with store.transaction() as cur:
        with audit.through("api"):
            audit.record(cur, accounts["lead"], "pair_set.create", "ps-1", {"pairs": 3})
        with audit.through("cli"):
            audit.record(cur, "cli", "users.set_role", "rita", "lead")
        audit.record(cur, accounts["engineer"], "train.start", "train-1")
    store.execute("UPDATE audit_log SET created_at = created_at - INTERVAL 3 DAY WHERE target = 'ps-1'")
    eng = accounts["engineer"]
    assert [e["action"] for e in audit.entries(store, eng, limit=3)] == ["train.start", "users.set_role",
                                                                         "pair_set.create"]
    assert [e["target"] for e in audit.entries(store, eng, who="leo")] == ["ps-1"]
    assert {e["action"] for e in audit.entries(store, eng, action="users.")} == {"users.add", "users.set_role"}
    assert [e["door"] for e in audit.entries(store, eng, door_name="cli")] == ["cli"]
    recent = audit.entries(store, eng, since=audit.parse_since("1d"))
    assert "ps-1" not in {e["target"] for e in recent} and "train-1" in {e["target"] for e in recent}
    assert audit.entries(store, eng, who="leo")[0]["detail"] == '{"pairs": 3}'
    assert {"cli", "eve", "leo", "init"} <= set(audit.actors(store, eng))
    for who in ("lead", "rater"):
        with pytest.raises(PermissionDenied):
            audit.entries(store, accounts[who])
        with pytest.raises(PermissionDenied):
            audit.actors(store, accounts[who])
    with pytest.raises(InvalidInput, match="door: 'ftp'"):
        audit.entries(store, eng, door_name="ftp")


def test_since_reads_dates_times_and_ages():
    now = datetime(2026, 5, 10, 12, 0)
    assert audit.parse_since("2026-05-01", now) == datetime(2026, 5, 1)
    assert audit.parse_since("2026-05-01T09:30", now) == datetime(2026, 5, 1, 9, 30)
    assert audit.parse_since("12h", now) == now - timedelta(hours=12)
    assert audit.parse_since("7d", now) == now - timedelta(days=7)
    assert audit.parse_since(" ", now) is None
    with pytest.raises(InvalidInput, match="since: 'last week'"):
        audit.parse_since("last week", now)


def test_the_csv_export_is_inert_in_a_spreadsheet():
    rows = [{"id": 1, "created_at": datetime(2026, 5, 1), "actor": "eve", "action": "contender",
             "target": "=HYPERLINK(\"http://x\")", "detail": "+1, @SUM(A1)", "door": "page"}]
    text = audit.to_csv(rows)
    assert text.splitlines()[0] == "id,created_at,actor,action,target,detail,door"
    assert "'=HYPERLINK" in text and "'+1, @SUM(A1)" in text and ",=" not in text


def test_starting_cancelling_and_resuming_a_job_is_audited_and_a_refusal_writes_nothing(owner, accounts):
    owner.jobs.default_launcher, owner.jobs.launchers = NoWorker(), {}
    eng = accounts["engineer"]
    with pytest.raises(PermissionDenied):
        owner.jobs.submit(accounts["rater"], "ticker", {"steps": 3})
    assert owner.store.scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'ticker.%'") == 0
    job_id = owner.jobs.submit(eng, "ticker", {"steps": 3, "prompts": ["long"] * 3})
    owner.jobs.cancel(eng, job_id)
    owner.store.execute("UPDATE jobs SET status = 'cancelled' WHERE job_id = ?", [job_id])
    owner.jobs.resume(eng, job_id)
    rows = owner.store.rows("SELECT actor, action, target, detail, door FROM audit_log WHERE target = ? ORDER BY id",
                            [job_id])
    assert [(r["actor"], r["action"], r["door"]) for r in rows] == [
        ("eve", "ticker.start", "server"), ("eve", "ticker.cancel", "server"), ("eve", "ticker.resume", "server")]
    assert rows[0]["detail"] == '{"steps": 3}'  # short scalar fields only, never prompts or rows


def test_a_schedule_firing_is_the_servers_doing_as_the_account_that_made_it(owner, accounts, task):  # noqa: F811
    from core.lifecycle import schedules
    from tests.test_lifecycle_schedules import T0

    with audit.through("api"):
        sid = schedules.create_schedule(owner.store, accounts["engineer"], "hourly", task, "interval", "1", now=T0)
    [pipeline_id] = schedules.tick(owner.store, owner.jobs, owner.settings, now=T0 + timedelta(hours=2))
    made = owner.store.row("SELECT actor, door FROM audit_log WHERE action = 'schedule' AND target = ?", [sid])
    fired = owner.store.row("SELECT actor, door, detail FROM audit_log WHERE action = 'pipeline.start' AND target = ?",
                            [pipeline_id])
    assert made == {"actor": "eve", "door": "api"}
    assert fired["actor"] == "eve" and fired["door"] == "server" and sid in fired["detail"]
