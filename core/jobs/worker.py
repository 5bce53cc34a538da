"""The one skeleton every job worker runs in: `main(run_dir)` is `run_worker(run_dir, work)`.

The skeleton owns what each worker would otherwise repeat: SIGTERM turned into a stop flag, the
event writer (rank 0 only under `accelerate launch`), the job's config, and the end of a run that
goes wrong: the traceback's tail in the worker's log, a `failed` event with a readable error, exit
code 1. The work owns its events (`started`, progress, `finished`) and says `cancelled` either by
emitting it or by raising `Stopped(**payload)`. Imports nothing that touches the database.
"""

from __future__ import annotations

import signal
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.jobs.events import EventWriter, NullEvents, cancel_requested, is_main_process, read_config

TRACEBACK_TAIL = 4000  # characters of a traceback the worker's log keeps


class Stopped(Exception):
    """Raised by a worker's work to end as `cancelled`; the keyword arguments are the event's payload."""

    def __init__(self, **payload):
        super().__init__("cancelled")
        self.payload = payload


@dataclass
class WorkerRun:
    """What a worker's work gets: its run folder, its config, where its events go, whether to stop."""

    folder: Path
    events: EventWriter | NullEvents
    config: dict = field(default_factory=dict)
    signalled: bool = False  # SIGTERM arrived (the launcher's stop)

    def should_stop(self) -> bool:
        """A stop was asked for: SIGTERM, or the cancel file in the run folder."""
        return self.signalled or cancel_requested(self.folder)

    def check(self) -> None:
        """Raise `Stopped` (no payload) if a stop was asked for."""
        if self.should_stop():
            raise Stopped


def failure(exc: BaseException, limit: int = 500) -> str:
    """The `failed` event's error for an exception: its type and the start of its message."""
    return f"{type(exc).__name__}: {str(exc)[:limit]}"


def run_worker(run_dir: str | Path, work: Callable[[WorkerRun], int | None], *,
               error: Callable[[WorkerRun, Exception], str] = lambda run, exc: failure(exc),
               interrupted: Callable[[WorkerRun], dict] | None = None,
               trap_sigterm: bool = True) -> int:
    """Run `work` as a job's worker and return the process's exit code.

    An exception from `work` is reported as `failed` with `error(run, exc)` (exit code 1); with
    `interrupted`, one raised while a stop was asked for (the cancel interrupted a step) is reported
    as `cancelled` with `interrupted(run)` as its payload instead. Without `trap_sigterm`, SIGTERM
    ends the process at once (for work that cannot stop between steps: the owner then sees the
    cancel file and records the job as cancelled)."""
    run = WorkerRun(Path(run_dir), NullEvents())
    if trap_sigterm:
        signal.signal(signal.SIGTERM, lambda *_: setattr(run, "signalled", True))
    with (EventWriter(run.folder) if is_main_process() else NullEvents()) as events:
        run.events = events
        try:
            run.config = read_config(run.folder)
            return work(run) or 0
        except Stopped as stop:
            events.emit("cancelled", **stop.payload)
            return 0
        except Exception as exc:  # reported, then a non-zero exit; the owner marks the job failed
            print("".join(traceback.format_exception(exc))[-TRACEBACK_TAIL:], file=sys.stderr, flush=True)
            if interrupted is not None and run.should_stop():
                events.emit("cancelled", **interrupted(run))
                return 0
            try:
                message = error(run, exc)
            except Exception:  # noqa: BLE001 - e.g. the config it names was never read: say what happened
                message = failure(exc)
            events.emit("failed", error=message)
            return 1
