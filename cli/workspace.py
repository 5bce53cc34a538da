"""`tuneboard init`, `config`, `serve` and `demo`: the workspace, its settings and the dashboard."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from cli.context import connection, out, print_admin_password, settings
from core.config import documented_defaults
from core.errors import InvalidInput

commands = typer.Typer()


@commands.command()
def init() -> None:
    """Create the workspace and database, and the first engineer account."""
    c = connection()
    if not c.in_process:
        out.print(f"Workspace ready: {settings().workspace_dir} (served by {c.client.url}).")
        return
    owner = c.owner()  # opening it makes the database and the first account (its password is printed)
    out.print(f"Workspace ready: {settings().workspace_dir} (schema version {owner.store.schema_version()}).")


@commands.command("config")
def config_cmd() -> None:
    """Print every setting with its default and help, as a tuneboard.toml."""
    out.print(documented_defaults(), markup=False)


@commands.command()
def serve(port: Optional[int] = typer.Option(None, help="Port (default server.port)."),
          host: Optional[str] = typer.Option(None, help="Address (default server.host).")) -> None:
    """Start tuneboard's one process: the dashboard and /api/v1 (it owns the database while it runs;
    other commands then go through it)."""
    from server import discovery

    cfg = settings()
    running = discovery.running(cfg)
    if running:
        raise InvalidInput(f"a tuneboard server already runs for {cfg.workspace_dir} at {running['url']} "
                           f"(pid {running['pid']}); stop it first, or use that one.")
    # Fail early, with a clean message, if another process owns the database.
    from core.store import open_store
    from core.users import ensure_admin

    s = open_store(cfg)
    print_admin_password(ensure_admin(s, dict(os.environ)))
    s.close()
    args = [sys.executable, "-m", "server", "--port", str(port or cfg.server.port), "--host", host or cfg.server.host]
    out.print(f"tuneboard on http://{host or cfg.server.host}:{port or cfg.server.port} (pages, and /api/v1/health)")
    sys.stdout.flush()
    os.execv(sys.executable, args)


@commands.command()
def demo(serve_after: bool = typer.Option(False, "--serve", help="Start the dashboard afterwards."),
         examples: int = typer.Option(1200, help="Number of demo examples.", min=100, max=100_000)) -> None:
    """Build the offline demo (model, dataset, accounts) if not cached, and print the logins."""
    c = connection()
    if c.in_process:
        # Its log as it goes: in this process the build runs here (POST /demo streams the same lines
        # from a server, which the in-process client could only give at the end).
        from core.demo.setup import build_demo

        logins = build_demo(c.owner().store, settings(), examples=examples,
                            log=lambda m: out.print(m, markup=False)).logins
    else:
        logins = []
        for item in c.client.lines("POST", "/demo", json={"examples": examples}):
            if "log" in item:
                out.print(item["log"], markup=False)
            elif "error" in item:
                raise InvalidInput(item["error"])
            else:
                logins = item["logins"]
    out.print("")
    out.print("[bold]Logins[/]")
    for username, role, password in logins:
        out.print(f"  {role:9} {username:8} {password}")
    if serve_after and not c.in_process:
        out.print("The dashboard is already being served: log in there.")
    elif serve_after:
        c.close()
        serve(None, None)
