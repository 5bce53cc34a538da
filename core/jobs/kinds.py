"""Every kind of job, declared once: its worker, the action it needs, its event handler, its launcher.

`Jobs.submit`/`cancel`/`resume` read the action and the worker, the owner's ingest the handler,
`core.owner.training_launchers` the launcher choice, and the role tests the whole table.

A handler is named as "module:function" and imported on first use: the modules that own the
kinds (training, serving, ...) import `core.jobs` themselves, so this table imports none of
them and there is no import circle (and no handler depends on an import's side effect).
A worker module runs as `python -m MODULE RUN_DIR`; its `main` goes through
`core.jobs.worker.run_worker`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Literal

from core.auth import Action

EventHandler = Callable[[Any, dict, str, dict], None]  # (cursor, job row, event type, payload)


@dataclass(frozen=True)
class JobKind:
    """One kind of job.

    `handler` is what the owner does with the kind's events beyond storing them, inside the same
    transaction as the event rows (so it happens exactly once): e.g. a finished training run
    registers its adapter. `launcher` is "local" (a process on this machine) or "training" (the
    training launcher of the settings: local, accelerate or a Ray cluster)."""

    worker: str
    action: Action = Action.JOBS_RUN
    handler: str | None = None
    launcher: Literal["local", "training"] = "local"

    def event_handler(self) -> EventHandler | None:
        if self.handler is None:
            return None
        module, _, name = self.handler.partition(":")
        return getattr(importlib.import_module(module), name)


KINDS: dict[str, JobKind] = {
    "ticker": JobKind("core.jobs.ticker"),
    "train": JobKind("core.training.worker", handler="core.training:_on_train_event", launcher="training"),
    "merge": JobKind("core.training.merge", handler="core.training:_on_merge_event"),
    "generate": JobKind("core.serving.worker", Action.GENERATE, "core.serving:_on_generate_event"),
    "serve": JobKind("core.serving.serve_worker", Action.GENERATE),
    "score": JobKind("core.metrics.worker", Action.GENERATE, "core.metrics.scoring:_on_score_event"),
    "harness": JobKind("core.regression.harness_worker", Action.GENERATE, "core.regression.harness:_on_harness_event"),
    "import": JobKind("core.datasets.import_worker", Action.DATA_IMPORT, "core.datasets.imports:_on_import_event"),
    "bundle": JobKind("core.lifecycle.bundle_worker", Action.JOBS_VIEW,  # leads export run records
                      "core.lifecycle.bundle:_on_bundle_event"),
    "deploy": JobKind("core.lifecycle.deploy_worker", handler="core.lifecycle.deploy:_on_deploy_event"),
}


def action_for(kind: str) -> Action:
    """The action a person needs to start, cancel or resume a job of this kind."""
    known = KINDS.get(kind)
    return known.action if known else Action.JOBS_RUN
