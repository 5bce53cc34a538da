"""The owning process's services in one object: settings, store, jobs and the event monitor.

The server's lifespan opens exactly one before its first request (server/app.py, `install`)
and every page uses it; a page run without a server (Streamlit's AppTest) opens its own once.
Tests create their own. Nothing here imports streamlit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass

from core import audit
from core import webhooks
from core.auth import OWNER
from core.config import Settings
from core.jobs import KINDS, JobMonitor, Jobs
from core.jobs.launchers import LocalLauncher, RayJobsLauncher, accelerate_command
from core.lifecycle import pipelines, schedules
from core.regression.sweep import advance as advance_sweeps
from core.metrics import custom
from core.metrics import results as metric_results
from core.regression import runs
from core.review import results as review_results
from core.review.desk import RatingDesk
from core.store import Store, open_store
from core.users import ensure_admin


def follow_ups(store: Store, jobs: Jobs, settings: Settings, hooks: webhooks.Webhooks | None = None) -> None:
    """What the owner does after each ingest pass: work that starts jobs when others finish,
    schedules that start work when they are due, and (last, so it sees what they did) the
    webhook events of what happened since the last pass."""
    advance_sweeps(store, jobs, settings)
    pipelines.advance(store, jobs, settings)
    schedules.tick(store, jobs, settings)
    if hooks is not None:
        hooks.collect()


def restate_results(store: Store, settings: Settings) -> dict[str, int]:
    """Recompute, once, stored results an older method computed ([trust]: review statistics by
    prompt, metric summaries, regression gates); returns how many of each kind. The owner runs it in the background at start, so pages
    keep reading small stored tables and never pay for the change."""
    done = {"review": review_results.restate(store, settings.review),
            "metrics": metric_results.restate(store, settings.metrics),
            "gates": runs.restate(store)}
    if any(done.values()):
        with store.transaction() as cur:
            audit.record(cur, OWNER.username, "results.restate", "stored results", json.dumps(done))
    return done


def training_launchers(settings: Settings) -> dict:
    """The launcher of each job kind that the table (core.jobs.kinds) gives the training launcher of the
    settings: accelerate or a Ray cluster (none: they run locally, as every other kind)."""
    if settings.training.launcher == "accelerate":
        command = accelerate_command(settings.training.accelerate_strategy, settings.training.num_processes)
        launcher = LocalLauncher(command)
    elif settings.training.launcher == "ray":
        launcher = RayJobsLauncher(settings.training.ray_address,
                                   unreachable_grace_s=settings.training.ray_unreachable_grace_s)
    else:
        return {}
    return {name: launcher for name, kind in KINDS.items() if kind.launcher == "training"}


_running: Owner | None = None


def install(owner: "Owner | None") -> None:
    """Make `owner` the process's owner (the server's lifespan does, before the first request)."""
    global _running
    _running = owner


def running() -> "Owner | None":
    """The owner the server's lifespan opened in this process, if any."""
    return _running


def _quietly(work, *args) -> None:
    """Background work that must never take the owner down: a failure is logged, not raised."""
    try:
        work(*args)
    except Exception:  # noqa: BLE001 - logged with its traceback; pages then recompute on demand
        logging.getLogger("tuneboard").exception("background %s failed", getattr(work, "__name__", work))


@dataclass
class Owner:
    settings: Settings
    store: Store
    jobs: Jobs
    monitor: JobMonitor | None
    desk: RatingDesk
    generated_admin_password: str | None = None
    restating: threading.Thread | None = None
    hooks: webhooks.Webhooks | None = None  # collects on the monitor's pass; sends while the monitor runs

    @classmethod
    def open(cls, settings: Settings, monitor: bool = True, env: dict[str, str] | None = None) -> "Owner":
        custom.register_all(settings.metrics.evaluate, settings.config_dir)  # a team's evaluate metrics, by name
        store = open_store(settings)
        password = ensure_admin(store, dict(os.environ if env is None else env))
        jobs = Jobs(store, settings.runs_dir, launchers=training_launchers(settings),
                    cancel_grace_s=settings.server.cancel_grace_s)
        jobs.reconcile()  # re-attach: ingest what workers wrote while no owner ran
        hooks = webhooks.Webhooks(store)
        mon = JobMonitor(jobs, after=lambda: follow_ups(store, jobs, settings, hooks)).start() if monitor else None
        if monitor:
            hooks.start()
        restating = threading.Thread(target=_quietly, args=(restate_results, store, settings), name="restate",
                                     daemon=True)
        restating.start()
        return cls(settings, store, jobs, mon, RatingDesk(store, settings.review.min_vote_seconds), password,
                   restating, hooks)

    def catch_up(self) -> None:
        """For an owner with no monitor (a command's own, for a moment): what the monitor's pass would
        do for work already under way. Take in what workers wrote, then move on the sweeps and
        pipelines waiting on it. Schedules and webhooks wait for a server."""
        if self.monitor is not None and self.monitor.alive:
            return
        self.jobs.reconcile()
        advance_sweeps(self.store, self.jobs, self.settings)
        pipelines.advance(self.store, self.jobs, self.settings)

    def close(self) -> None:
        if self.restating is not None:
            self.restating.join(timeout=60)  # a restate in flight finishes before the store closes
        if self.monitor:
            self.monitor.stop()
        if self.hooks is not None:
            self.hooks.stop()
        self.store.close()
