"""The command line as a client of a running server: when `tuneboard serve` runs for the
workspace (server.discovery), a command goes to it (server.bridge) instead of opening the
database, which the server owns; its output streams back as it is printed."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

# Commands that never go to the server: they need no database, or they are the server (or
# another long-lived server) themselves.
LOCAL = {("serve",), ("serve-models",), ("config",), ("data", "validate")}


def _words(argv: list[str]) -> tuple[list[str], Path | None]:
    """(the command words before the first option, the root --config if given)."""
    words, config, i = [], None, 0
    while i < len(argv):
        a = argv[i]
        if a == "--config" and not words and i + 1 < len(argv):
            config, i = Path(argv[i + 1]), i + 2
            continue
        if a.startswith("--config=") and not words:
            config = Path(a.split("=", 1)[1])
        elif a.startswith("-"):
            break
        else:
            words.append(a)
        i += 1
    return words, config


def target(argv: list[str]) -> tuple[str, str] | None:
    """(url, token) of the running server this command should go to, or None to run it here."""
    words, config = _words(argv)
    if not words or "--help" in argv or any(tuple(words[:len(w)]) == w for w in LOCAL):
        return None
    try:
        from core.config import load_settings
        from server import bridge, discovery

        settings = load_settings(config)
        found, token = discovery.running(settings), bridge.read_token(settings)
    except Exception:  # noqa: BLE001 - a broken config: run here, which reports it properly
        return None
    if not found or not token:
        return None
    return found["url"], token


# Options that name an environment variable holding a secret of the user's (a password): the client
# sends that variable's value with the command, since the server cannot read the user's shell.
ENV_OPTIONS = ("--password-env",)


def _named_env(argv: list[str]) -> dict[str, str]:
    names = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ENV_OPTIONS]
    names += [a.split("=", 1)[1] for a in argv if a.split("=", 1)[0] in ENV_OPTIONS and "=" in a]
    return {n: os.environ[n] for n in names if n in os.environ}


def forward(url: str, token: str, argv: list[str]) -> int:
    """Run the command on the server, printing its output as it comes; its exit code. -1: the server
    could not be reached at all (the caller runs the command here instead)."""
    command = [a for a in argv]
    body = json.dumps({"argv": command, "cwd": os.getcwd(), "env": _named_env(argv)}).encode()
    request = urllib.request.Request(f"{url}/api/v1/cli", body, method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        response = urllib.request.urlopen(request, timeout=None)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        print(f"error: the tuneboard server at {url} refused the command ({exc.code}): {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, ConnectionError, OSError):
        return -1
    try:
        with response:
            for line in response:
                item = json.loads(line)
                if "out" in item:
                    sys.stdout.write(item["out"])
                    sys.stdout.flush()
                elif "err" in item:
                    sys.stderr.write(item["err"])
                    sys.stderr.flush()
                elif "exit" in item:
                    return int(item["exit"])
    except (OSError, ValueError, ConnectionError):
        pass
    print(f"error: the tuneboard server at {url} stopped before `tuneboard {' '.join(argv)}` finished. What it had "
          "stored is complete; jobs it started keep running and are picked up when the server starts again "
          "(`tuneboard runs list`).", file=sys.stderr)
    return 1
