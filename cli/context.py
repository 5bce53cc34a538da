"""What every command group shares: the consoles, this invocation's settings and database owner,
following a job, and the translation of core's typed errors into one clean message and exit code.

The command line acts with engineer rights (whoever runs it can read the workspace files).
Commands that need the database become its owner for their duration; while the dashboard
runs they are refused with a clear message (`data validate` needs no database and always
works). Errors meant for people print one clean message and exit non-zero; never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from core.config import Settings, load_settings
from core.errors import DatasetError, InvalidInput, TuneboardError
from core.serving.backends import Decoding

# Pipes get wide lines: rich would wrap tables at 80 columns and break one-row-per-line output.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_state: dict = {}


def use_config(config: Optional[Path]) -> None:
    """The --config of this invocation (read when a command first asks for the settings)."""
    _state["config"] = config


def settings() -> Settings:
    if "settings" not in _state:
        _state["settings"] = load_settings(_state.get("config"))
    return _state["settings"]


def store():
    if "store" not in _state:
        from core.store import open_store

        _state["store"] = open_store(settings())
    return _state["store"]


def owner():
    """This command as the database's owner, with the job service (ingests worker events)."""
    if "owner" not in _state:
        from core.owner import Owner

        _state["owner"] = Owner.open(settings(), monitor=False)
        _state["store"] = _state["owner"].store
        print_admin_password(_state["owner"].generated_admin_password)
    return _state["owner"]


def release() -> None:
    """Close the database now, for a command that goes on running without it (a server)."""
    if "owner" in _state:
        _state.pop("owner").close()
        _state.pop("store", None)
    elif "store" in _state:
        _state.pop("store").close()


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
    if not path.exists():
        raise InvalidInput(f"{path}: no such file.")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a folder; give a .jsonl, .csv or .parquet file.")
    return path.read_bytes()


def follow(job_id: str, timeout: float) -> dict:
    """Ingest and print a job's events until it ends (Ctrl-C leaves the worker running)."""
    o = owner()
    for e in o.jobs.follow(job_id, timeout):
        if e["type"] == "train" and (e["step"] % 10 == 0 or e["step"] == e["max_steps"]):
            out.print(f"step {e['step']}/{e['max_steps']}  loss {e['loss']:.4f}  lr {e['learning_rate']:.2e}  "
                      f"{e['tokens_per_s']:.0f} tok/s  eta {e['eta_s']:.0f} s", markup=False)
        elif e["type"] == "eval":
            out.print(f"step {e['step']}  validation loss {e['eval_loss']:.4f}" + ("  (best)" if e["best"] else ""),
                      markup=False)
        elif e["type"] == "warning":
            out.print(f"warning: {e.get('message')}", markup=False)
    job = o.jobs.get(job_id)
    if job["status"] not in ("queued", "running"):
        note = o.jobs.skipped_note(job_id)
        if note:
            out.print(f"warning: {note}", markup=False)
        return job
    out.print(f"still running; follow it with `tuneboard runs show {job_id}`", markup=False)
    return job


def finish(job_id: str, job: dict) -> None:
    """The closing line of a followed job: its status, and its error if it failed."""
    out.print(f"{job_id}: {job['status']}" + (f" ({job['error']})" if job["error"] else ""), markup=False)


def run(app: typer.Typer) -> None:
    """Run the command line: core's typed errors become a clean message and their exit code."""
    try:
        app()
    except DatasetError as exc:
        err.print(f"error: {exc.summary}", markup=False)
        for p in exc.problems:
            err.print(f"  {p}", markup=False)
        sys.exit(exc.exit_code)
    except TuneboardError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
    finally:
        if "owner" in _state:
            _state["owner"].close()
        elif "store" in _state:
            _state["store"].close()
