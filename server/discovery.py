"""Where a running server of a workspace listens, for clients on the same machine (the CLI).

The server writes `server.json` (url, pid, start time) into the workspace when its owner is
open and removes it on shutdown; a file left by a server that died is recognised by its pid.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.config import Settings

FILE = "server.json"


def path(settings: Settings) -> Path:
    return settings.workspace_dir / FILE


def announce(settings: Settings, url: str) -> None:
    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    tmp = path(settings).with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    tmp.replace(path(settings))


def withdraw(settings: Settings) -> None:
    try:
        if json.loads(path(settings).read_text()).get("pid") == os.getpid():
            path(settings).unlink()
    except (OSError, ValueError):
        pass


def running(settings: Settings) -> dict | None:
    """{"url", "pid"} of the live server of this workspace, or None."""
    try:
        found = json.loads(path(settings).read_text())
        os.kill(int(found["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found
