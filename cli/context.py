"""What every command group shares: the consoles, this invocation's settings and database owner,
following a job, and the translation of core's typed errors into one clean message and exit code.

The command line acts with engineer rights (whoever runs it can read the workspace files).
Commands that need the database become its owner for their duration; while the dashboard
runs they are refused with a clear message (`data validate` needs no database and always
works). Errors meant for people print one clean message and exit non-zero; never a traceback.
"""

from __future__ import annotations

import os
import sys
import time
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Optional

import click
import typer
from rich.console import Console

from core.config import Settings, load_settings
from core.errors import DatasetError, InvalidInput, TuneboardError
from core.serving.backends import Decoding

class _Console:
    """`out` / `err`: the console of this invocation (stdout and stderr, or the buffers of a command
    the server runs for a client), looked up per call so concurrent invocations never mix."""

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

# This invocation's settings, store and owner. A command the server runs for a client gets its
# own dict holding the server's owner ("served"): it is used, never opened or closed here.
_invocation: ContextVar[dict] = ContextVar("tuneboard_invocation")
_process_state: dict = {}


def _state() -> dict:
    return _invocation.get(_process_state)


def served() -> bool:
    """Whether this command runs inside the server, for a client."""
    return "served" in _state()


def use_config(config: Optional[Path]) -> None:
    """The --config of this invocation (read when a command first asks for the settings)."""
    _state()["config"] = config


def settings() -> Settings:
    state = _state()
    if "served" in state:
        return state["served"].settings
    if "settings" not in state:
        state["settings"] = load_settings(state.get("config"))
    return state["settings"]


def store():
    state = _state()
    if "served" in state:
        return state["served"].store
    if "store" not in state:
        from core.store import open_store

        state["store"] = open_store(settings())
    return state["store"]


def owner():
    """This command as the database's owner, with the job service (ingests worker events); inside
    the server, the server's owner."""
    state = _state()
    if "served" in state:
        return state["served"]
    if "owner" not in state:
        from core.owner import Owner

        state["owner"] = Owner.open(settings(), monitor=False)
        state["store"] = state["owner"].store
        print_admin_password(state["owner"].generated_admin_password)
    return state["owner"]


def release() -> None:
    """Close the database now, for a command that goes on running without it (a server)."""
    state = _state()
    if "served" in state:
        return
    if "owner" in state:
        state.pop("owner").close()
        state.pop("store", None)
    elif "store" in state:
        state.pop("store").close()


def environ(name: str) -> str | None:
    """An environment variable of the user's shell (`--password-env VAR`): inside the server, the one
    the client sent with the command (cli.client), never the server's own."""
    state = _state()
    if "served" in state:
        return (state.get("env") or {}).get(name)
    return os.environ.get(name)


def can_prompt() -> bool:
    """Whether a question can be asked on a terminal (never inside the server: its terminal is not the user's)."""
    return not served() and sys.stdin.isatty()


def local_path(path: str | Path) -> Path:
    """A path the user typed, as their shell meant it: inside the server, relative to the client's
    working directory (typer's Path parameters get this through `_client_paths`)."""
    cwd = _state().get("cwd")
    path = Path(path)
    return path if cwd is None or path.is_absolute() else Path(cwd) / path


def print_admin_password(password: str | None) -> None:
    if password:
        out.print(f"Created the engineer account [bold]admin[/] with password [bold]{password}[/]"
                  " (shown once; set TUNEBOARD_ADMIN_PASSWORD to choose it).")


def decoding_help(field: str) -> str:
    return Decoding.HELP[field]


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


def follow(job_id: str, timeout: float, after: int = 0) -> dict:
    """Ingest and print a job's events until it ends (Ctrl-C leaves the worker running).

    Inside the server it reads through the server's owner. On its own, the command holds the
    database only for a moment every POLL_S seconds, so `tuneboard serve` can start meanwhile; when
    it does, the rest of the following goes through it (`runs follow`) and this command ends with it.
    """
    if served():
        o = owner()
        for e in o.jobs.follow(job_id, timeout):
            if e["seq"] > after:
                _show(e)
        return _ended(o.jobs.get(job_id), o.jobs.skipped_note(job_id), job_id)
    from core.jobs import Jobs
    from core.store import open_store

    release()
    deadline, last = time.monotonic() + timeout, after
    while True:
        s = open_store(settings())
        try:
            jobs = Jobs(s, settings().runs_dir)
            jobs.reconcile()  # this command is the owner for this moment: it ingests the worker's events
            events, job = jobs.events(job_id, after=last), jobs.get(job_id)
            note = jobs.skipped_note(job_id) if job["status"] not in ("queued", "running") else None
        finally:
            s.close()
        for e in events:
            last = e["seq"]
            _show(e)
        if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return _ended(job, note, job_id)
        time.sleep(POLL_S)
        hand_over(["runs", "follow", job_id, "--after", str(last),
                   "--timeout", str(max(1.0, deadline - time.monotonic()))], "the job")


def hand_over(argv: list[str], what: str) -> None:
    """If a server started for the workspace while this command waited alone, go on through it
    (`argv`: the command that follows `what` from here) and end with its exit code."""
    from cli import client

    found = client.target(argv)
    if found is None:
        return
    out.print(f"a tuneboard server started for this workspace: following {what} through it", markup=False)
    code = client.forward(*found, argv)
    raise typer.Exit(code if code >= 0 else 1)


def finish(job_id: str, job: dict) -> None:
    """The closing line of a followed job: its status, and its error if it failed."""
    out.print(f"{job_id}: {job['status']}" + (f" ({job['error']})" if job["error"] else ""), markup=False)


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
        state = _state()
        if "owner" in state:
            state["owner"].close()
        elif "store" in state:
            state["store"].close()
    sys.exit(code)


_click_path_convert = click.Path.convert


def _client_paths(self, value, param, ctx):
    """typer's Path parameters of a command the server runs for a client: relative to the client's
    working directory, not the server's (local_path)."""
    if isinstance(value, (str, os.PathLike)) and _state().get("cwd") is not None:
        value = str(local_path(value))
    return _click_path_convert(self, value, param, ctx)


click.Path.convert = _client_paths


def invoke(app: typer.Typer, argv: list[str], cwd: str, served_owner, stdout: IO[str], stderr: IO[str],
           env: dict[str, str] | None = None) -> int:
    """Run one command inside the server for a client: the server's owner, the client's working
    directory, output to the given streams. Returns the exit code (2 for a usage error). What it
    does is audited as coming through the command line's door, as it would be run locally."""
    from core import audit

    consoles = (Console(file=stdout, highlight=False, soft_wrap=True, width=200),
                Console(file=stderr, highlight=False, soft_wrap=True, width=200))
    token_c, token_i = _consoles.set(consoles), _invocation.set({"served": served_owner, "cwd": cwd,
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
        _consoles.reset(token_c)
        _invocation.reset(token_i)
