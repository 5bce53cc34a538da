"""What every command group shares: the consoles, this invocation's settings, its connection to the
HTTP API (cli/api.py: over HTTP to the workspace's running server, else the same API in this
process), following a job, and the translation of errors into one clean message and exit code.

The command line acts with engineer rights (whoever runs it can read the workspace files).
Errors meant for people print one clean message and exit non-zero; never a traceback.
"""

from __future__ import annotations

import os
import sys
import time
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Callable, Optional

import click
import httpx
import typer
from rich.console import Console

from api.client import ApiError
from core.config import Settings, load_settings
from core.errors import DatasetError, InvalidInput, TuneboardError
from core.fields import about
from core.serving.backends import Decoding

class _Console:
    """`out` / `err`: the console of this invocation (stdout and stderr, or the streams `invoke` was
    given), looked up per call so concurrent invocations never mix."""

    def __init__(self, which: int):
        self.which = which

    def __getattr__(self, name):
        return getattr(_consoles.get()[self.which], name)


def _terminal() -> tuple[Console, Console]:
    # Pipes get wide lines: rich would wrap tables at 80 columns and break one-row-per-line output.
    return (Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200),
            Console(stderr=True, highlight=False, soft_wrap=True))


_consoles: ContextVar[tuple[Console, Console]] = ContextVar("tuneboard_consoles", default=_terminal())
out, err = _Console(0), _Console(1)

# This invocation's settings and connection. A command `invoke` runs against an owner already open
# in this process gets its own dict holding that owner ("given"): used, never opened or closed here.
_invocation: ContextVar[dict] = ContextVar("tuneboard_invocation")
_process_state: dict = {}


def _state() -> dict:
    return _invocation.get(_process_state)


def use_config(config: Optional[Path]) -> None:
    """The --config of this invocation (read when a command first asks for the settings)."""
    _state()["config"] = config


def settings() -> Settings:
    state = _state()
    if "given" in state:
        return state["given"].settings
    if "settings" not in state:
        state["settings"] = load_settings(state.get("config"))
    return state["settings"]


def connection():
    """This command's way to tuneboard: the HTTP API, over HTTP to the workspace's running server or
    in this process (cli/api.py)."""
    state = _state()
    if "connection" not in state:
        from cli.api import Connection

        state["connection"] = Connection(settings(), owner=state.get("given"),
                                         on_open=lambda o: print_admin_password(o.generated_admin_password))
    return state["connection"]


def api():
    """The API client of this command (api.client.Client): paths under /api/v1."""
    return connection().client


def export(path: str, folder: Path, **params) -> Path:
    """An export file of the API written into the --out-dir `folder` (made if missing); its path."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return api().download(path, folder, **params)
    except OSError as exc:
        raise InvalidInput(f"--out-dir {folder}: cannot write there ({exc.strerror or exc}).") from None


def environ(name: str) -> str | None:
    """An environment variable of the user's shell (`--password-env VAR`), or of the `env` given to
    `invoke`."""
    state = _state()
    if "given" in state:
        return (state.get("env") or {}).get(name)
    return os.environ.get(name)


def can_prompt() -> bool:
    """Whether a question can be asked on a terminal (not in a command `invoke` runs)."""
    return "given" not in _state() and sys.stdin.isatty()


def local_path(path: str | Path) -> Path:
    """A path the user typed, as their shell meant it: for `invoke`, relative to the working directory
    it was given (typer's Path parameters get this through `_client_paths`)."""
    cwd = _state().get("cwd")
    path = Path(path)
    return path if cwd is None or path.is_absolute() else Path(cwd) / path


def print_admin_password(password: str | None) -> None:
    if password:
        out.print(f"Created the engineer account [bold]admin[/] with password [bold]{password}[/]"
                  " (shown once; set TUNEBOARD_ADMIN_PASSWORD to choose it).")


def decoding_help(field: str) -> str:
    return about(Decoding, field).help


def csv_list(value: str) -> list[str]:
    """The items of a comma-separated option, blanks dropped."""
    return [v.strip() for v in value.split(",") if v.strip()]


def read_file(path: Path) -> bytes:
    path = local_path(path)
    if not path.exists():
        raise InvalidInput(f"{path}: no such file.")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a folder; give a .jsonl, .csv or .parquet file.")
    return path.read_bytes()


def _show(e: dict) -> None:
    """One event of a followed job, as a line (the ones worth a line)."""
    if e["type"] == "train" and (e["step"] % 10 == 0 or e["step"] == e["max_steps"]):
        out.print(f"step {e['step']}/{e['max_steps']}  loss {e['loss']:.4f}  lr {e['learning_rate']:.2e}  "
                  f"{e['tokens_per_s']:.0f} tok/s  eta {e['eta_s']:.0f} s", markup=False)
    elif e["type"] == "eval":
        out.print(f"step {e['step']}  validation loss {e['eval_loss']:.4f}" + ("  (best)" if e["best"] else ""),
                  markup=False)
    elif e["type"] == "warning":
        out.print(f"warning: {e.get('message')}", markup=False)


def _ended(job: dict, note: str | None, job_id: str) -> dict:
    if job["status"] not in ("queued", "running"):
        if note:
            out.print(f"warning: {note}", markup=False)
    else:
        out.print(f"still running; follow it with `tuneboard runs follow {job_id}`", markup=False)
    return job


POLL_S = 2.0


def follow_job(job_id: str, timeout: float, after: int = 0, show: Callable[[dict], None] | None = None) -> dict:
    """Print a job's events through the API until it ends (Ctrl-C leaves the worker running); `show`
    prints one event instead of the default lines. In-process, the database is let go between
    looks (every POLL_S seconds) so `tuneboard serve` can start meanwhile; the rest of the following
    then goes through it."""
    show, c = show or _show, connection()
    deadline, last, pause = time.monotonic() + timeout, after, 0.25
    while True:
        events, job = c.client.get(f"/jobs/{job_id}/events", after=last), c.client.get(f"/jobs/{job_id}")
        for e in events:
            last = e["seq"]
            show(e)
        if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return _ended(job, job.get("warning"), job_id)
        c.release()
        time.sleep(pause)
        pause = min(POLL_S, pause * 2)  # a short job is seen to end at once; a long one is looked at every POLL_S
        if c.moved():
            out.print("a tuneboard server started for this workspace: following the job through it", markup=False)


def finish(job_id: str, job: dict) -> None:
    """The closing line of a followed job: its status, and its error if it failed; a failed job ends the
    command with exit code 1 (the one rule for every command that follows a job)."""
    out.print(f"{job_id}: {job['status']}" + (f" ({job['error']})" if job["error"] else ""), markup=False)
    if job["status"] == "failed":
        raise typer.Exit(1)


def _translated(call) -> int:
    """Run `call`; core's typed errors become one clean message and their exit code."""
    try:
        call()
        return 0
    except DatasetError as exc:
        err.print(f"error: {exc.summary}", markup=False)
        for p in exc.problems:
            err.print(f"  {p}", markup=False)
        return exc.exit_code
    except TuneboardError as exc:
        err.print(f"error: {exc}", markup=False)
        return exc.exit_code
    except ApiError as exc:  # the API's answer: the same words core would have printed
        err.print(f"error: {exc.message}", markup=False)
        return 1
    except httpx.TransportError as exc:
        err.print(f"error: the tuneboard server stopped before this command finished ({exc}). What it had stored "
                  "is complete; jobs it started keep running and are picked up when it starts again "
                  "(`tuneboard runs list`).", markup=False)
        return 1


def run(app: typer.Typer) -> None:
    """Run the command line in this process (the database opened for this one call)."""
    from core import audit

    audit.set_door("cli")
    try:
        code = _translated(app)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        code = 130
    finally:
        connected = _state().pop("connection", None)
        if connected is not None:
            connected.close()
    sys.exit(code)


_click_path_convert = click.Path.convert


def _client_paths(self, value, param, ctx):
    """typer's Path parameters of a command `invoke` runs: relative to the working directory it was given,
    not this process's (local_path)."""
    if isinstance(value, (str, os.PathLike)) and _state().get("cwd") is not None:
        value = str(local_path(value))
    return _click_path_convert(self, value, param, ctx)


click.Path.convert = _client_paths


def invoke(app: typer.Typer, argv: list[str], cwd: str, given_owner, stdout: IO[str], stderr: IO[str],
           env: dict[str, str] | None = None) -> int:
    """Run one command in this process against an owner already open here (a test's): its API answers
    in-process with that owner, paths are relative to `cwd`, `--password-env` reads `env`, output goes
    to the given streams. Returns the exit code (2 for a usage error). What it does is audited as
    coming through the command line's door."""
    from core import audit

    consoles = (Console(file=stdout, highlight=False, soft_wrap=True, width=200),
                Console(file=stderr, highlight=False, soft_wrap=True, width=200))
    token_c, token_i = _consoles.set(consoles), _invocation.set({"given": given_owner, "cwd": cwd,
                                                                 "env": dict(env or {})})
    try:
        def call():
            try:
                code = app(args=argv, prog_name="tuneboard", standalone_mode=False)
                if isinstance(code, int) and code:  # click returns an Exit's code in this mode
                    raise SystemExit(code)
            except click.exceptions.Exit as exc:
                raise SystemExit(exc.exit_code) from None
            except click.ClickException as exc:
                exc.show(file=stderr)
                raise SystemExit(exc.exit_code) from None
            except click.exceptions.Abort:
                raise SystemExit(1) from None

        try:
            with audit.through("cli"):
                return _translated(call)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        connected = _state().pop("connection", None)
        if connected is not None:
            connected.close()
        _consoles.reset(token_c)
        _invocation.reset(token_i)
