"""Progress in bytes for the workers that copy, hash and zip files (deploy, bundle).

Every step of the work (a block of a file) goes through `ByteProgress.advance`: that is where a
cancel request (SIGTERM or the run folder's cancel file) stops the work, between two blocks, so
the worker can remove what it half-wrote. Events are few whatever the size: one when a stage
starts, one when it ends, and at most one per `interval` seconds in between (each event is
fsynced by the worker and stored by the owner). Imports nothing that touches the database.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

BLOCK = 1 << 20  # bytes read and written at a time: small enough to stop within milliseconds


class Cancelled(Exception):
    """The person cancelled the job (or the owner sent SIGTERM): stop, leave nothing half-written."""


class _Events(Protocol):
    def emit(self, type: str, **payload) -> int: ...


class ByteProgress:
    def __init__(self, events: _Events, stopping: Callable[[], bool], interval: float = 0.5):
        self.events, self.stopping, self.interval = events, stopping, interval
        self.stage, self.done, self.total, self._last = "", 0, 0, 0.0

    def start(self, stage: str, total: int) -> None:
        """A new stage of `total` bytes (a name a person understands: "copying weights", "zipping")."""
        self.check()
        self.stage, self.done, self.total = stage, 0, int(total)
        self._emit()

    def advance(self, n: int) -> None:
        """`n` more bytes of the stage are done."""
        self.check()
        self.done += n
        if self.done >= self.total or time.monotonic() - self._last >= self.interval:
            self._emit()

    def check(self) -> None:
        if self.stopping():
            raise Cancelled

    def _emit(self) -> None:
        self._last = time.monotonic()
        self.events.emit("progress", stage=self.stage, done=min(self.done, self.total), total=self.total)


def readable_bytes(n: int | float) -> str:
    """A byte count as a person reads it in progress lines (pages, command line): 17 B, 3.2 MiB."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:.1f} {unit}"
