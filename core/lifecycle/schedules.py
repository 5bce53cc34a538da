"""Schedules that retrain a task unattended.

A schedule fires every N hours, on a cron expression (standard crontab semantics, computed by
croniter) or when a new version of its task's dataset appears. Schedules live in DuckDB and
fire on the owner's tick (`tick(now)`: the monitor thread calls it every second with the real
clock; tests call it with a fake one), so they survive restarts with no scheduler process of
their own. A schedule never overlaps itself: when its previous pipeline is still going, the
firing is recorded as skipped. Every firing is kept in `schedule_events`.

Why not APScheduler: its job stores want a database it can write from its own threads, while
here one owner holds the DuckDB file, and 3.x numbers cron weekdays from Monday (0), unlike
crontab; croniter does one thing (the next fire time of an expression) and does it the crontab way.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from croniter import croniter

from core import audit
from core.auth import Action, User, require
from core.config import Settings
from core.errors import InvalidInput, NotFound, TuneboardError
from core.jobs import Jobs
from core.lifecycle import pipelines
from core.lifecycle.pipelines import PipelineOptions
from core.store import Store

TRIGGERS = {"interval": "every N hours", "cron": "a cron expression (minute hour day month weekday, UTC)",
            "new_data": "when a new version of the task's dataset is imported"}
_TICKING = threading.Lock()


def utcnow() -> datetime:
    """The clock schedules use: naive UTC (what DuckDB's TIMESTAMP holds)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def next_fire(trigger: str, spec: str, after: datetime) -> datetime | None:
    """When a schedule fires next after `after` (None: it fires on data, not on time)."""
    if trigger == "interval":
        return after + timedelta(hours=float(spec))
    if trigger == "cron":
        return croniter(spec, after).get_next(datetime)
    return None


def _check(trigger: str, spec: str) -> str:
    spec = (spec or "").strip()
    if trigger not in TRIGGERS:
        raise InvalidInput(f"trigger: {trigger!r} is not one of {', '.join(TRIGGERS)}.")
    if trigger == "interval":
        try:
            hours = float(spec)
        except ValueError:
            hours = -1
        if not 0 < hours <= 24 * 366:
            raise InvalidInput(f"spec: {spec!r} must be a number of hours between 0 and 8784 (e.g. 168 for weekly).")
    elif trigger == "cron":
        if not croniter.is_valid(spec) or len(spec.split()) != 5:
            raise InvalidInput(f"spec: {spec!r} is not a cron expression of 5 fields (minute hour day month weekday), "
                               "e.g. '0 3 * * 1' for Mondays at 03:00 UTC.")
    else:
        spec = ""  # filled with the task's newest version when the schedule is made
    return spec


def create_schedule(store: Store, actor: User, name: str, task: str, trigger: str, spec: str = "",
                    options: PipelineOptions | None = None, now: datetime | None = None) -> str:
    """A new schedule (enabled); returns its id. Its pipelines run with `actor`'s rights."""
    require(actor, Action.JOBS_RUN)
    spec = _check(trigger, spec)
    if not name.strip() or len(name) > 120:
        raise InvalidInput("name: give the schedule a name of 1 to 120 characters.")
    if pipelines.newest_version(store, task) is None:
        raise InvalidInput(f"task: no dataset named {task!r}; import it on the Data page.")
    pipelines.source_config(store, actor, task)  # refuses a task with nothing to retrain from
    options = options or PipelineOptions()
    now = now or utcnow()
    if trigger == "new_data":
        spec = pipelines.newest_version(store, task)
    schedule_id = f"schedule-{uuid.uuid4().hex[:10]}"
    with store.transaction() as cur:
        cur.execute("""INSERT INTO schedules (schedule_id, name, task, trigger, spec, options, next_run_at, created_by,
                       created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [schedule_id, name.strip(), task, trigger, spec, json.dumps(asdict(options)),
                     next_fire(trigger, spec, now), actor.username, now])
        audit.record(cur, actor, "schedule", schedule_id, f"{task}: {trigger} {spec}".strip())
    return schedule_id


def set_enabled(store: Store, actor: User, schedule_id: str, enabled: bool, now: datetime | None = None) -> None:
    require(actor, Action.JOBS_RUN)
    s = get_schedule(store, actor, schedule_id)
    # Re-enabling starts counting from now: a schedule paused for a month does not fire a month of runs.
    with store.transaction() as cur:
        cur.execute("UPDATE schedules SET enabled = ?, next_run_at = ? WHERE schedule_id = ?",
                    [enabled, next_fire(s["trigger"], s["spec"], now or utcnow()) if enabled else s["next_run_at"],
                     schedule_id])
        audit.record(cur, actor, "schedule.resume" if enabled else "schedule.pause", schedule_id, s["task"])


def delete_schedule(store: Store, actor: User, schedule_id: str) -> None:
    require(actor, Action.JOBS_RUN)
    s = get_schedule(store, actor, schedule_id)
    with store.transaction() as cur:
        cur.execute("DELETE FROM schedules WHERE schedule_id = ?", [schedule_id])
        audit.record(cur, actor, "schedule.delete", schedule_id, f"{s['name']} ({s['task']}: {s['describe']})")


def schedules(store: Store, actor: User) -> list[dict]:
    require(actor, Action.JOBS_VIEW)
    rows = store.rows("SELECT * FROM schedules ORDER BY created_at")
    for r in rows:
        r["options"] = json.loads(r["options"])
        r["describe"] = describe(r)
    return rows


def get_schedule(store: Store, actor: User, schedule_id: str) -> dict:
    found = [s for s in schedules(store, actor) if s["schedule_id"] == schedule_id]
    if not found:
        raise NotFound(f"No schedule {schedule_id!r}; see `tuneboard retrain schedules`.")
    return found[0]


def describe(s: dict) -> str:
    if s["trigger"] == "interval":
        hours = float(s["spec"])
        return f"every {hours / 24:g} days" if hours % 24 == 0 else f"every {hours:g} hours"
    if s["trigger"] == "cron":
        return f"cron '{s['spec']}' (UTC)"
    return "when a new version of the data is imported"


def events(store: Store, actor: User, schedule_id: str | None = None, limit: int = 50) -> list[dict]:
    require(actor, Action.JOBS_VIEW)
    return store.rows("SELECT * FROM schedule_events WHERE ? IS NULL OR schedule_id = ? ORDER BY id DESC LIMIT ?",
                      [schedule_id, schedule_id, limit])


def _due(store: Store, s: dict, now: datetime) -> str | None:
    """Why a schedule fires now, or None."""
    if s["trigger"] == "new_data":
        # The version seen last: the last pipeline's, else the newest when the schedule was made (its spec).
        newest = pipelines.newest_version(store, s["task"])
        last = store.row("SELECT dataset_version FROM pipelines WHERE schedule_id = ? ORDER BY created_at DESC "
                         "LIMIT 1", [s["schedule_id"]])
        seen = last["dataset_version"] if last else s["spec"]
        return f"new data version {newest}" if newest and newest != seen else None
    if s["next_run_at"] is not None and s["next_run_at"] <= now:
        return f"due at {s['next_run_at']:%Y-%m-%d %H:%M} UTC"
    return None


def tick(store: Store, jobs: Jobs, settings: Settings, now: datetime | None = None) -> list[str]:
    """Fire every enabled schedule that is due; returns the pipelines started."""
    from core.users import acting_user

    now = now or utcnow()
    started = []
    with _TICKING:
        for s in store.rows("SELECT * FROM schedules WHERE enabled ORDER BY created_at"):
            why = _due(store, s, now)
            if why is None:
                continue
            if s["trigger"] != "new_data":
                store.execute("UPDATE schedules SET next_run_at = ? WHERE schedule_id = ?",
                              [next_fire(s["trigger"], s["spec"], now), s["schedule_id"]])
            running = pipelines.active(store, s["schedule_id"])
            if running:
                if s["trigger"] != "new_data":  # new data waits for the running pipeline, then fires
                    _event(store, s["schedule_id"], now, "skipped", None, f"{why}; the previous pipeline "
                           f"{running[0]} is still going (a schedule never overlaps itself)")
                continue
            actor = acting_user(store, s["created_by"])
            try:
                if actor is None:
                    raise InvalidInput(f"{s['created_by']} (who made the schedule) no longer has an active account")
                pipeline_id = pipelines.start_pipeline(store, jobs, settings, actor, s["task"],
                                                       PipelineOptions.from_dict(json.loads(s["options"])),
                                                       schedule_id=s["schedule_id"])
            except TuneboardError as exc:
                _event(store, s["schedule_id"], now, "failed", None, f"{why}; could not start: {exc}")
                if s["trigger"] == "new_data":
                    store.execute("UPDATE schedules SET enabled = FALSE WHERE schedule_id = ?", [s["schedule_id"]])
                continue
            _event(store, s["schedule_id"], now, "started", pipeline_id, why)
            started.append(pipeline_id)
    return started


def _event(store: Store, schedule_id: str, at: datetime, outcome: str, pipeline_id: str | None, note: str) -> None:
    store.execute("INSERT INTO schedule_events (schedule_id, fired_at, outcome, pipeline_id, note) "
                  "VALUES (?, ?, ?, ?, ?)", [schedule_id, at, outcome, pipeline_id, note])


def run_now(store: Store, jobs: Jobs, settings: Settings, actor: User, schedule_id: str,
            now: datetime | None = None) -> str:
    """Fire a schedule by hand (still never beside its own running pipeline)."""
    require(actor, Action.JOBS_RUN)
    s = get_schedule(store, actor, schedule_id)
    running = pipelines.active(store, schedule_id)
    if running:
        raise InvalidInput(f"{s['name']}: its pipeline {running[0]} is still going; a schedule never overlaps itself.")
    pipeline_id = pipelines.start_pipeline(store, jobs, settings, actor, s["task"],
                                           PipelineOptions.from_dict(s["options"]), schedule_id=schedule_id)
    _event(store, schedule_id, now or utcnow(), "started", pipeline_id, f"run by hand by {actor.username}")
    with store.transaction() as cur:
        audit.record(cur, actor, "schedule.run_now", schedule_id, {"pipeline": pipeline_id})
    return pipeline_id
