"""The CLI through the running server: `POST /api/v1/cli` runs one `tuneboard` command inside this
process, with its owner, and streams the command's output back as JSON lines ({"out": text},
{"err": text}, then {"exit": code}). So every command works while the dashboard runs, and no
second process ever opens the database.

Who may call it: whoever can read the workspace's `cli-token` (mode 600, a fresh random token at
every start; only its SHA-256 is kept in memory), i.e. the accounts that could open the database
file themselves. The command acts with the CLI's engineer rights, as it would locally. [api]
makes a public, versioned surface with per-user tokens; this route is the CLI's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import threading

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from core import owner as owners
from core.config import Settings

TOKEN_FILE = "cli-token"
_token_hash: bytes | None = None


def issue_token(settings: Settings) -> None:
    """A fresh token for this server's life, written for local clients only (0600)."""
    global _token_hash
    token = secrets.token_urlsafe(32)
    path = settings.workspace_dir / TOKEN_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    tmp.replace(path)
    _token_hash = hashlib.sha256(token.encode()).digest()


def read_token(settings: Settings) -> str | None:
    try:
        return (settings.workspace_dir / TOKEN_FILE).read_text().strip()
    except OSError:
        return None


def _authorised(request: Request) -> bool:
    header = request.headers.get("authorization", "")
    if _token_hash is None or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(hashlib.sha256(header[7:].encode()).digest(), _token_hash)


class _Stream:
    """A text file whose writes go to the response, from the command's thread."""

    def __init__(self, key: str, queue: asyncio.Queue, loop: asyncio.AbstractEventLoop):
        self.key, self.queue, self.loop = key, queue, loop

    def write(self, text: str) -> int:
        if text:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, {self.key: text})
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


async def run_command(request: Request):
    if not _authorised(request):
        return JSONResponse({"error": "a local tuneboard CLI token is needed (the workspace's cli-token)"},
                            status_code=401)
    owner = owners.running()
    if owner is None:
        return JSONResponse({"error": "the server is starting or stopping; try again"}, status_code=503)
    try:
        body = await request.json()
        argv, cwd, env = body["argv"], body["cwd"], body.get("env") or {}
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv) and isinstance(cwd, str)
                and isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": 'send {"argv": [strings], "cwd": "a folder"}'}, status_code=400)
    import cli  # the command line's app, run here for the client
    from cli.context import invoke

    loop, queue = asyncio.get_running_loop(), asyncio.Queue()

    def work() -> None:
        try:
            code = invoke(cli.app, argv, cwd, owner, _Stream("out", queue, loop), _Stream("err", queue, loop),
                          env)
        except Exception as exc:  # noqa: BLE001 - an unexpected failure still ends the client's wait
            code = 1
            loop.call_soon_threadsafe(queue.put_nowait, {"err": f"error: {type(exc).__name__}: {exc}\n"})
        loop.call_soon_threadsafe(queue.put_nowait, {"exit": code})

    async def lines():
        # Its own thread: a command that waits on a job for hours must not hold a worker of the
        # event loop's small default pool.
        threading.Thread(target=work, name="tuneboard-cli-command", daemon=True).start()
        while True:
            item = await queue.get()
            yield json.dumps(item) + "\n"
            if "exit" in item:
                break

    return StreamingResponse(lines(), media_type="application/x-ndjson")
