"""Schedules on a fake clock: when they fire, that they never overlap themselves, that they survive
an owner restart, data-triggered schedules, and roles. Jobs here start no worker (a launcher that
only records), so a started pipeline stays in training until a test says otherwise; the real
pipeline on the tiny model is tested in test_lifecycle_pipeline.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.datasets import ImportOptions, import_dataset
from core.errors import InvalidInput, PermissionDenied
from core.lifecycle import pipelines, schedules
from core.lifecycle.pipelines import PipelineOptions
from core.owner import Owner
from core.training.config import TrainConfig

T0 = datetime(2026, 11, 29, 5, 0)  # a Sunday


class RecordingLauncher:
    """Starts nothing; a job stays queued or running until the test changes its row."""

    def __init__(self):
        self.started: list[str] = []

    def start(self, job_id, module, run_dir) -> int:
        self.started.append(job_id)
        return 4242

    def alive(self, job_id, pid) -> bool:
        return True

    def stop(self, job_id, pid) -> None:
        pass

    def end(self, job_id, pid) -> int:
        return 0


def _quiet(owner) -> RecordingLauncher:
    launcher = RecordingLauncher()
    owner.jobs.default_launcher = launcher
    owner.jobs.launchers = {}
    return launcher


@pytest.fixture
def task(owner, accounts, demo_files, tiny_model):
    """The 'tickets' task with one finished run to retrain from."""
    good, _ = demo_files
    version = import_dataset(owner.store, accounts["engineer"], good.read_bytes(), good.name,
                             ImportOptions(name="tickets")).version_id
    config = TrainConfig(base_model=tiny_model, dataset_version=version, max_steps=4)
    with owner.store.transaction() as cur:
        cur.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES "
                    "('train-first', 'train', 'succeeded', '', '{}', 'eve')")
        cur.execute("INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage) VALUES "
                    "('train-first', ?, ?, 'lora', ?, '{}')", [version, tiny_model, json.dumps(config.to_dict())])
    _quiet(owner)
    return "tickets"


def _set_status(owner, job_id: str, status: str) -> None:
    owner.store.execute("UPDATE jobs SET status = ? WHERE job_id = ?", [status, job_id])


def test_an_interval_schedule_fires_when_due_and_never_overlaps_itself(owner, accounts, task):
    eng = accounts["engineer"]
    sid = schedules.create_schedule(owner.store, eng, "weekly retrain", task, "interval", "168", now=T0)
    assert schedules.get_schedule(owner.store, eng, sid)["next_run_at"] == T0 + timedelta(days=7)
    assert schedules.tick(owner.store, owner.jobs, owner.settings, T0 + timedelta(days=6)) == []
    [first] = schedules.tick(owner.store, owner.jobs, owner.settings, T0 + timedelta(days=7, minutes=1))
    p = pipelines.get_pipeline(owner.store, accounts["lead"], first)
    assert p["status"] == "running" and p["stage"] == "train" and p["schedule_id"] == sid
    assert p["config"]["dataset_version"] == p["dataset_version"] and "newest finished run" in p["config"]["_origin"]
    assert owner.jobs.get(p["train_job"])["kind"] == "train"
    # A week later the first is still training: the firing is recorded as skipped, nothing starts.
    assert schedules.tick(owner.store, owner.jobs, owner.settings, T0 + timedelta(days=14, minutes=1)) == []
    with pytest.raises(InvalidInput, match="still going"):
        schedules.run_now(owner.store, owner.jobs, owner.settings, eng, sid)
    # Once it has failed (nobody resumed it), the next firing starts a new one.
    _set_status(owner, p["train_job"], "failed")
    assert pipelines.get_pipeline(owner.store, eng, first)["status"] == "failed"
    [second] = schedules.tick(owner.store, owner.jobs, owner.settings, T0 + timedelta(days=21, minutes=1))
    assert second != first
    history = schedules.events(owner.store, eng, sid)
    assert [e["outcome"] for e in reversed(history)] == ["started", "skipped", "started"]
    assert "never overlaps itself" in history[1]["note"]
    assert schedules.get_schedule(owner.store, eng, sid)["next_run_at"] == T0 + timedelta(days=28, minutes=1)


def test_schedules_survive_an_owner_restart(owner, accounts, task, settings, env):
    sid = schedules.create_schedule(owner.store, accounts["engineer"], "nightly", task, "cron", "0 3 * * 1", now=T0)
    assert schedules.get_schedule(owner.store, accounts["lead"], sid)["next_run_at"] == datetime(2026, 11, 30, 3, 0)
    owner.close()
    again = Owner.open(settings, monitor=False, env=env)
    try:
        _quiet(again)
        assert schedules.tick(again.store, again.jobs, again.settings, datetime(2026, 11, 30, 2, 59)) == []
        started = schedules.tick(again.store, again.jobs, again.settings, datetime(2026, 11, 30, 3, 0))
        assert len(started) == 1
        assert schedules.get_schedule(again.store, accounts["lead"], sid)["next_run_at"] == datetime(2026, 12, 7, 3, 0)
    finally:
        again.close()


def test_a_data_schedule_fires_once_per_new_version(owner, accounts, task, demo_files, tmp_path):
    from core.demo.tickets import write_demo_files

    eng = accounts["engineer"]
    sid = schedules.create_schedule(owner.store, eng, "on new data", task, "new_data", now=T0)
    assert schedules.tick(owner.store, owner.jobs, owner.settings, T0) == []  # nothing new yet
    newer, _ = write_demo_files(tmp_path / "more", n=120, seed=11)
    version = import_dataset(owner.store, eng, Path(newer).read_bytes(), Path(newer).name,
                             ImportOptions(name="tickets")).version_id
    [started] = schedules.tick(owner.store, owner.jobs, owner.settings, T0 + timedelta(minutes=1))
    assert pipelines.get_pipeline(owner.store, eng, started)["dataset_version"] == version
    assert schedules.tick(owner.store, owner.jobs, owner.settings, T0 + timedelta(minutes=2)) == []
    assert "new data version" in schedules.events(owner.store, eng, sid)[0]["note"]


def test_disabled_schedules_wait_and_bad_schedules_say_why(owner, accounts, task):
    eng = accounts["engineer"]
    sid = schedules.create_schedule(owner.store, eng, "daily", task, "interval", "24", now=T0)
    schedules.set_enabled(owner.store, eng, sid, False)
    assert schedules.tick(owner.store, owner.jobs, owner.settings, T0 + timedelta(days=3)) == []
    schedules.set_enabled(owner.store, eng, sid, True, now=T0 + timedelta(days=3))  # counts from now, no backlog
    assert schedules.get_schedule(owner.store, eng, sid)["next_run_at"] == T0 + timedelta(days=4)
    with pytest.raises(InvalidInput, match="not a cron expression"):
        schedules.create_schedule(owner.store, eng, "x", task, "cron", "0 25 * * *")
    with pytest.raises(InvalidInput, match="number of hours"):
        schedules.create_schedule(owner.store, eng, "x", task, "interval", "weekly")
    with pytest.raises(InvalidInput, match="no dataset named 'nope'"):
        schedules.create_schedule(owner.store, eng, "x", "nope", "interval", "24")
    with pytest.raises(InvalidInput, match="options.raters_per_pair"):
        PipelineOptions.from_dict({"raters_per_pair": 0})
    for actor in (accounts["lead"], accounts["rater"]):
        with pytest.raises(PermissionDenied):
            schedules.create_schedule(owner.store, actor, "x", task, "interval", "24")
        with pytest.raises(PermissionDenied):
            schedules.run_now(owner.store, owner.jobs, owner.settings, actor, sid)
    assert len(schedules.schedules(owner.store, accounts["lead"])) == 1  # leads read
