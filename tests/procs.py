"""Processes by identity, for the kill -9 proofs: a pid alone can be reused by a new process on a busy
machine, so a process is (pid, start time) and "still running" means that very process, not a zombie."""

from __future__ import annotations

from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def identities(pids) -> dict[int, str]:
    """pid -> its start time (clock ticks since boot), for the pids that exist now."""
    out = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            out[pid] = fields[19]  # field 22 of /proc/PID/stat: starttime
    return out


def still_running(known: dict[int, str]) -> list[int]:
    """Which of the processes in `known` still run (the same start time, not a zombie)."""
    alive = []
    for pid, started in known.items():
        fields = _stat(pid)
        if fields is not None and fields[19] == started and fields[0] != "Z":
            alive.append(pid)
    return alive
