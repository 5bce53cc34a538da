"""The owning process's services in one object: settings, store, jobs and the event monitor.

The dashboard server creates exactly one (Streamlit's cache_resource) and shares it across
sessions; tests create their own. Nothing here imports streamlit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.config import Settings
import core.metrics.scoring  # noqa: F401  (registers the score job's event handler)
import core.regression.harness  # noqa: F401  (registers the harness job's event handler)
import core.serving  # noqa: F401  (registers the generate job's event handler)
import core.training  # noqa: F401  (registers the train job's event handler)
from core.jobs import JobMonitor, Jobs
from core.jobs.launchers import LocalLauncher, RayJobsLauncher, accelerate_command
from core.lifecycle import pipelines, schedules
from core.regression.sweep import advance as advance_sweeps
from core.review.desk import RatingDesk
from core.store import Store, open_store
from core.users import ensure_admin


def follow_ups(store: Store, jobs: Jobs, settings: Settings) -> None:
    """What the owner does after each ingest pass: work that starts jobs when others finish, and
    schedules that start work when they are due."""
    advance_sweeps(store, jobs, settings)
    pipelines.advance(store, jobs, settings)
    schedules.tick(store, jobs, settings)


def training_launchers(settings: Settings) -> dict:
    """The launcher per job kind chosen in the settings (training may use accelerate or a Ray cluster)."""
    if settings.training.launcher == "accelerate":
        command = accelerate_command(settings.training.accelerate_strategy, settings.training.num_processes)
        return {"train": LocalLauncher(command)}
    if settings.training.launcher == "ray":
        return {"train": RayJobsLauncher(settings.training.ray_address)}
    return {}


@dataclass
class Owner:
    settings: Settings
    store: Store
    jobs: Jobs
    monitor: JobMonitor | None
    desk: RatingDesk
    generated_admin_password: str | None = None

    @classmethod
    def open(cls, settings: Settings, monitor: bool = True, env: dict[str, str] | None = None) -> "Owner":
        store = open_store(settings)
        password = ensure_admin(store, dict(os.environ if env is None else env))
        jobs = Jobs(store, settings.runs_dir, launchers=training_launchers(settings))
        jobs.reconcile()  # re-attach: ingest what workers wrote while no owner ran
        mon = JobMonitor(jobs, after=lambda: follow_ups(store, jobs, settings)).start() if monitor else None
        return cls(settings, store, jobs, mon, RatingDesk(store, settings.review.min_vote_seconds), password)

    def close(self) -> None:
        if self.monitor:
            self.monitor.stop()
        self.store.close()
