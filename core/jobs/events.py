"""The worker side of the event contract. Imports nothing that touches the database.

A worker appends one JSON object per line to `<run_dir>/events.jsonl`:
`{"seq": n, "at": unix_time, "type": "...", ...payload}` with `seq` rising by one from 1.
Each line is flushed and fsynced before the next, so whatever the owner has read is on
disk. A worker that restarts in the same folder continues the sequence.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

EVENTS_FILE = "events.jsonl"
CONFIG_FILE = "config.json"
LOG_FILE = "worker.log"
CANCEL_FILE = "cancel.requested"
TERMINAL = {"finished": "succeeded", "failed": "failed", "cancelled": "cancelled"}


def last_seq_in(path: Path) -> int:
    """The highest sequence number among the complete, valid lines of an event file."""
    if not path.exists():
        return 0
    best = 0
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                best = max(best, int(json.loads(raw)["seq"]))
            except (ValueError, KeyError, TypeError):
                continue
    return best


class EventWriter:
    def __init__(self, run_dir: str | Path, fsync: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / EVENTS_FILE
        self.fsync = fsync
        self._truncate_partial_tail()
        self.seq = last_seq_in(self.path)
        self._fh = open(self.path, "ab")

    def _truncate_partial_tail(self) -> None:
        """A worker killed mid-write leaves half a line; drop it so the next line is whole."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)

    def emit(self, type: str, **payload) -> int:
        self.seq += 1
        record = {"seq": self.seq, "at": time.time(), "type": type, **payload}
        self._fh.write(json.dumps(record, default=str).encode() + b"\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        return self.seq

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_config(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / CONFIG_FILE).read_text(encoding="utf-8"))


def cancel_requested(run_dir: str | Path) -> bool:
    return (Path(run_dir) / CANCEL_FILE).exists()


class NullEvents:
    """What ranks other than 0 of a multi-process worker write: nothing (rank 0 reports)."""

    seq = 0

    def emit(self, type: str, **payload) -> int:
        return 0

    def close(self) -> None:
        pass

    def __enter__(self) -> "NullEvents":
        return self

    def __exit__(self, *exc) -> None:
        pass


def is_main_process() -> bool:
    """Rank 0 under `accelerate launch`/torchrun, or a plain single process."""
    return int(os.environ.get("RANK", "0")) == 0
