"""Jobs: worker processes write events, the owner ingests each exactly once, also after restarts."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from core.errors import JobError, PermissionDenied
from core.jobs import Jobs
from core.jobs.events import EVENTS_FILE, EventWriter
from core.owner import Owner
from tests.procs import identities, still_running


def _ticks(jobs: Jobs, job_id: str) -> list[int]:
    return [e["step"] for e in jobs.events(job_id, "tick")]


def test_worker_events_ingested_exactly_once(owner, accounts):
    jobs = owner.jobs
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 15, "interval": 0.01})
    job = jobs.wait(job_id, timeout=60)
    assert job["status"] == "succeeded"
    assert _ticks(jobs, job_id) == list(range(1, 16))
    # Ingesting again (and again) adds nothing.
    assert jobs.ingest(job_id).events == 0
    jobs.reconcile()
    assert owner.store.scalar("SELECT count(*) FROM job_events WHERE job_id = ?", [job_id]) == 17
    assert [e["type"] for e in jobs.events(job_id)][0::16] == ["started", "finished"]



def test_follow_yields_each_event_once_until_the_job_ends(owner, accounts):
    """What the demo prints while it waits on a job: every event once, in order, until the job ends."""
    jobs, eng = owner.jobs, accounts["engineer"]
    job_id = jobs.submit(eng, "ticker", {"steps": 15, "interval": 0.01})
    seen, passes = [], []
    job = jobs.follow(job_id, lambda job, events: (seen.extend(events), passes.append(job["status"])),
                      timeout=60, poll=0.05)
    assert [e["seq"] for e in seen] == sorted({e["seq"] for e in seen})
    assert [e["step"] for e in seen if e["type"] == "tick"] == list(range(1, 16))
    assert seen[-1]["type"] == "finished" and job["status"] == "succeeded" and passes[-1] == "succeeded"
    slow = jobs.submit(eng, "ticker", {"steps": 400, "interval": 0.05})
    passes.clear()
    job = jobs.follow(slow, lambda job, events: passes.append(job), timeout=0, poll=0.05)
    assert len(passes) == 1  # one pass, then it stops following: the job runs on
    assert job["status"] in ("queued", "running")
    jobs.cancel(eng, slow)
    assert jobs.wait(slow, timeout=30)["status"] == "cancelled"

def test_owner_restart_resumes_from_committed_offset(settings, env, accounts, owner):
    job_id = owner.jobs.submit(accounts["engineer"], "ticker", {"steps": 80, "interval": 0.03})
    deadline = time.time() + 30
    while len(owner.jobs.events(job_id)) < 3 and time.time() < deadline:  # a few events, not all
        owner.jobs.ingest(job_id)
        time.sleep(0.02)
    seen_before = len(owner.jobs.events(job_id))
    owner.close()  # the owner goes away while the worker keeps writing
    run_dir = Path(settings.runs_dir, job_id)
    deadline = time.time() + 30
    while "finished" not in (run_dir / EVENTS_FILE).read_text() and time.time() < deadline:
        time.sleep(0.05)
    reopened = Owner.open(settings, monitor=False, env=env)  # reconcile on open re-attaches
    try:
        job = reopened.jobs.wait(job_id, timeout=30)
        assert job["status"] == "succeeded"
        assert 0 < seen_before < 82
        assert _ticks(reopened.jobs, job_id) == list(range(1, 81))
        lines = (run_dir / EVENTS_FILE).read_text().splitlines()
        stored = reopened.store.scalar("SELECT count(*) FROM job_events WHERE job_id = ?", [job_id])
        assert stored == len(lines)
    finally:
        reopened.close()


def test_replayed_and_corrupt_lines(owner, accounts):
    """A line with an old seq is ignored; a garbage line is recorded and skipped."""
    job_id = owner.jobs.submit(accounts["engineer"], "ticker", {"steps": 3, "interval": 0.01})
    owner.jobs.wait(job_id, timeout=30)
    path = Path(owner.jobs.get(job_id)["run_dir"], EVENTS_FILE)
    with open(path, "ab") as fh:
        fh.write(json.dumps({"seq": 2, "at": 0, "type": "tick", "step": 99}).encode() + b"\n")
        fh.write(b"{this is not json\n")
        fh.write(json.dumps({"seq": 6, "at": 0, "type": "note", "text": "late"}).encode() + b"\n")
        fh.write(b'{"seq": 7, "at": 0, "type": "partial')  # no newline yet: not read
    result = owner.jobs.ingest(job_id)
    assert (result.events, result.problems) == (1, 1)
    assert 99 not in _ticks(owner.jobs, job_id)
    problems = owner.jobs.ingest_problems(job_id)
    assert len(problems) == 1 and "unreadable event line" in problems[0]["message"]
    assert owner.jobs.ingest(job_id).events == 0  # the partial line waits
    with open(path, "ab") as fh:
        fh.write(b'", "x": 1}\n')
    assert owner.jobs.ingest(job_id).events == 1


def test_crashed_worker_is_failed_with_log_tail_and_resumable(owner, accounts):
    jobs = owner.jobs
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 8, "interval": 0.01, "fail_at": 5})
    job = jobs.wait(job_id, timeout=30)
    assert job["status"] == "failed"
    assert "failing on purpose at step 5" in job["error"]
    assert _ticks(jobs, job_id) == [1, 2, 3, 4]
    # Resume continues from the worker's own state (the crash was on purpose only at step 5 once).
    cfg_path = Path(job["run_dir"], "config.json")
    cfg_path.write_text(json.dumps({"steps": 8, "interval": 0.01}))
    jobs.resume(accounts["engineer"], job_id)
    job = jobs.wait(job_id, timeout=30)
    assert job["status"] == "succeeded"
    assert _ticks(jobs, job_id) == list(range(1, 9))


def test_killed_worker_is_marked_failed(owner, accounts):
    jobs = owner.jobs
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 500, "interval": 0.02})
    time.sleep(0.5)
    os.kill(jobs.get(job_id)["pid"], signal.SIGKILL)
    job = jobs.wait(job_id, timeout=30)
    assert job["status"] == "failed" and "exited without finishing" in job["error"]


def test_cancel_is_graceful(owner, accounts):
    jobs = owner.jobs
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 500, "interval": 0.02})
    deadline = time.monotonic() + 60
    while not jobs.events(job_id, "started") and time.monotonic() < deadline:  # the worker is up and listening
        jobs.ingest(job_id)
        time.sleep(0.05)
    jobs.cancel(accounts["engineer"], job_id)
    job = jobs.wait(job_id, timeout=30)
    assert job["status"] == "cancelled"
    assert jobs.events(job_id)[-1]["type"] == "cancelled"
    with pytest.raises(JobError):
        jobs.cancel(accounts["engineer"], job_id)


def test_cancel_before_the_worker_listens_is_still_a_cancel(owner, accounts):
    """A cancel that stops the worker while it is still starting (no handler yet) is not a failure."""
    jobs = owner.jobs
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 500, "interval": 0.02})
    jobs.cancel(accounts["engineer"], job_id)
    job = jobs.wait(job_id, timeout=30)
    assert job["status"] == "cancelled" and not job["error"]
    jobs.resume(accounts["engineer"], job_id)  # and it can be resumed like any cancelled job
    jobs.cancel(accounts["engineer"], job_id)
    assert jobs.wait(job_id, timeout=30)["status"] == "cancelled"


def test_only_engineers_run_jobs(owner, accounts):
    for role in ("rater", "lead"):
        with pytest.raises(PermissionDenied):
            owner.jobs.submit(accounts[role], "ticker", {"steps": 1})
    assert owner.store.scalar("SELECT count(*) FROM jobs") == 0
    assert not any(Path(owner.settings.runs_dir).iterdir())


def test_event_writer_continues_sequence_after_torn_write(tmp_path):
    with EventWriter(tmp_path) as w:
        w.emit("a")
        w.emit("b")
    with open(tmp_path / EVENTS_FILE, "ab") as fh:
        fh.write(b'{"seq": 3, "at"')  # killed mid-line
    with EventWriter(tmp_path) as w:
        assert w.emit("c") == 3
    records = [json.loads(x) for x in (tmp_path / EVENTS_FILE).read_text().splitlines()]
    assert [r["seq"] for r in records] == [1, 2, 3] and records[-1]["type"] == "c"


def test_reading_jobs_needs_lead_or_engineer(owner, accounts):
    job_id = owner.jobs.submit(accounts["engineer"], "ticker", {"steps": 2, "interval": 0.01})
    owner.jobs.wait(job_id, timeout=30)
    for role in ("lead", "engineer"):
        assert [j["job_id"] for j in owner.jobs.list(accounts[role])] == [job_id]
        assert [e["type"] for e in owner.jobs.history(accounts[role], job_id)][-1] == "finished"
    with pytest.raises(PermissionDenied):
        owner.jobs.list(accounts["rater"])
    with pytest.raises(PermissionDenied):
        owner.jobs.history(accounts["rater"], job_id)


def test_resume_refuses_while_the_worker_still_runs(owner, accounts):
    jobs = owner.jobs
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 5000, "interval": 0.02})
    owner.store.execute("UPDATE jobs SET status = 'failed' WHERE job_id = ?", [job_id])  # a stale record
    started = time.monotonic()
    with pytest.raises(JobError, match="still running"):
        jobs.resume(accounts["engineer"], job_id)
    assert time.monotonic() - started >= 19  # it waited for the worker to exit before refusing
    os.kill(jobs.get(job_id)["pid"], signal.SIGKILL)


def test_a_job_being_launched_is_not_failed_by_the_monitor(owner, accounts):
    """Between the job row and the worker's pid, reconcile must leave the job alone."""
    owner.store.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) "
                        "VALUES ('launching', 'ticker', 'queued', '/nonexistent', '{}', 'eve')")
    owner.jobs.reconcile()
    assert owner.jobs.get("launching")["status"] == "queued"


def picky_ticker_handler(cur, job, type_, payload):  # writes in the ingest transaction, as real handlers do
    if type_ == "tick" and payload["step"] == 2:
        raise KeyError("rows")
    if type_ == "tick":
        cur.execute("INSERT INTO audit_log (actor, action, target) VALUES ('test', 'tick', ?)",
                    [str(payload["step"])])


def test_an_event_its_handler_cannot_take_is_reported_and_skipped(owner, accounts, monkeypatch):
    """Valid JSON of the wrong shape (a 'generated' event without rows) once stopped every later
    ingest of its job; now it is recorded as a problem and the lines after it still land."""
    from dataclasses import replace

    from core.jobs.kinds import KINDS

    monkeypatch.setitem(KINDS, "ticker", replace(KINDS["ticker"], handler=f"{__name__}:picky_ticker_handler"))
    job_id = owner.jobs.submit(accounts["engineer"], "ticker", {"steps": 4, "interval": 0.01})
    job = owner.jobs.wait(job_id, timeout=30)
    assert job["status"] == "succeeded"  # the 'finished' event after the bad one was ingested
    assert _ticks(owner.jobs, job_id) == [1, 3, 4]
    handled = owner.store.rows("SELECT target FROM audit_log WHERE action = 'tick' ORDER BY id")
    assert [r["target"] for r in handled] == ["1", "3", "4"]  # once each, the rolled-back try left nothing
    [problem] = owner.jobs.ingest_problems(job_id)
    assert "(tick)" in problem["message"] and "was skipped: KeyError" in problem["message"]
    assert owner.jobs.ingest(job_id).events == 0  # nothing twice


def test_run_worker_says_failed_with_a_readable_error_and_cancelled(tmp_path, capsys):
    """The skeleton every worker runs in (core.jobs.worker), in this process: a failure is a `failed`
    event with the error's type and message (the traceback's tail goes to the log), `Stopped` is a
    `cancelled` event, and with `interrupted` an error raised while a stop was asked is a cancel too."""
    from core.jobs.events import CANCEL_FILE, CONFIG_FILE
    from core.jobs.worker import Stopped, run_worker

    (tmp_path / CONFIG_FILE).write_text(json.dumps({"rows": 3}))

    def events() -> list[dict]:
        return [json.loads(line) for line in (tmp_path / EVENTS_FILE).read_text().splitlines()]

    def broken(run):
        run.events.emit("started", rows=run.config["rows"])
        raise ValueError("row 3 has no messages")

    assert run_worker(tmp_path, broken, trap_sigterm=False) == 1
    assert [(e["type"], e.get("error")) for e in events()] == [("started", None),
                                                                ("failed", "ValueError: row 3 has no messages")]
    assert "Traceback" in capsys.readouterr().err
    assert run_worker(tmp_path, broken, error=lambda run, exc: f"{run.config['rows']} rows: {exc}",
                      trap_sigterm=False) == 1
    assert events()[-1]["error"] == "3 rows: row 3 has no messages" and events()[-1]["seq"] == 4

    def stops(run):
        raise Stopped(done=2)

    assert run_worker(tmp_path, stops, trap_sigterm=False) == 0
    assert events()[-1]["type"] == "cancelled" and events()[-1]["done"] == 2
    (tmp_path / CANCEL_FILE).touch()
    assert run_worker(tmp_path, broken, interrupted=lambda run: {"generated": 5}, trap_sigterm=False) == 0
    assert events()[-1]["type"] == "cancelled" and events()[-1]["generated"] == 5


# ---- nothing of a killed or cancelled job outlives it -------------------------------------------
def _until_child(jobs: Jobs, job_id: str) -> dict[int, str]:
    """The helper the ticker started (with its start time: a pid alone may be reused)."""
    deadline = time.monotonic() + 60
    while not jobs.events(job_id, "child") and time.monotonic() < deadline:
        jobs.ingest(job_id)
        time.sleep(0.05)
    return identities([jobs.events(job_id, "child")[0]["pid"]])


def test_a_killed_worker_leaves_no_process_behind(owner, accounts):
    """SIGKILL to the worker (as the OOM killer does) orphans what it started, here a helper in its own
    session that ignores SIGTERM, as vLLM's engine processes are; the owner ends it with the worker."""
    from core.jobs.launchers import job_processes

    jobs = owner.jobs
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 2000, "interval": 0.02, "child": True})
    child = _until_child(jobs, job_id)
    worker = jobs.get(job_id)["pid"]
    assert set(job_processes(job_id)) >= {worker, *child}
    os.kill(worker, signal.SIGKILL)
    job = jobs.wait(job_id, timeout=30)
    assert job["status"] == "failed" and "exited without finishing" in job["error"]
    assert job_processes(job_id) == [] and still_running(child) == []


def test_a_cancelled_worker_that_does_not_stop_is_ended_with_all_it_started(owner, accounts, monkeypatch):
    from core.jobs.launchers import job_processes

    jobs = owner.jobs
    monkeypatch.setattr(jobs, "cancel_grace_s", 1.0)
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 5000, "interval": 0.02, "child": True,
                                                          "deaf": True})
    child = _until_child(jobs, job_id)
    jobs.cancel(accounts["engineer"], job_id)
    time.sleep(0.5)
    jobs.reconcile()
    assert jobs.get(job_id)["status"] == "running"  # within its grace it may still stop by itself
    job = jobs.wait(job_id, timeout=30)
    assert job["status"] == "cancelled"
    assert job_processes(job_id) == [] and still_running(child) == []
    # A graceful one stops by itself long before the grace; nothing of it is left either.
    monkeypatch.setattr(jobs, "cancel_grace_s", 300.0)
    polite = jobs.submit(accounts["engineer"], "ticker", {"steps": 5000, "interval": 0.02, "child": True})
    child = _until_child(jobs, polite)
    jobs.cancel(accounts["engineer"], polite)
    assert jobs.wait(polite, timeout=30)["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while job_processes(polite) and time.monotonic() < deadline:
        jobs.reconcile()
        time.sleep(0.1)
    assert still_running(child) == []
