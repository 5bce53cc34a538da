"""`tuneboard init`, `config`, `serve` and `demo`: the workspace, its settings and the dashboard."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from cli.context import out, print_admin_password, release, settings, store
from core.config import documented_defaults

commands = typer.Typer()


@commands.command()
def init() -> None:
    """Create the workspace and database, and the first engineer account."""
    from core.users import ensure_admin

    s = store()
    print_admin_password(ensure_admin(s, dict(os.environ)))
    out.print(f"Workspace ready: {settings().workspace_dir} (schema version {s.schema_version()}).")


@commands.command("config")
def config_cmd() -> None:
    """Print every setting with its default and help, as a tuneboard.toml."""
    out.print(documented_defaults(), markup=False)


@commands.command()
def serve(port: Optional[int] = typer.Option(None, help="Port (default server.port)."),
          host: Optional[str] = typer.Option(None, help="Address (default server.host).")) -> None:
    """Start the dashboard (it owns the database while it runs)."""
    import dashboard  # only to find the Streamlit entrypoint's file

    cfg = settings()
    # Fail early, with a clean message, if another process owns the database.
    from core.store import open_store
    from core.users import ensure_admin

    s = open_store(cfg)
    print_admin_password(ensure_admin(s, dict(os.environ)))
    s.close()
    app_path = Path(dashboard.__file__).with_name("app.py")
    args = [sys.executable, "-m", "streamlit", "run", str(app_path),
            "--server.port", str(port or cfg.server.port), "--server.address", host or cfg.server.host,
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.maxUploadSize", str(cfg.data.max_upload_mb), "--theme.base", "light",
            "--client.toolbarMode", "minimal", "--server.fileWatcherType", "none",
            # Streamlit's gc.collect(2) after every page run walks the whole heap (torch and
            # transformers are loaded): with 50 raters it was half the server's CPU (py-spy).
            # Python's own collector still runs; dashboard/context.py freezes the start-up heap.
            "--runner.postScriptGC", "false"]
    out.print(f"tuneboard dashboard on http://{host or cfg.server.host}:{port or cfg.server.port}")
    sys.stdout.flush()
    os.execv(sys.executable, args)


@commands.command()
def demo(serve_after: bool = typer.Option(False, "--serve", help="Start the dashboard afterwards."),
         examples: int = typer.Option(1200, help="Number of demo examples.", min=100, max=100_000)) -> None:
    """Build the offline demo (model, dataset, accounts) if not cached, and print the logins."""
    from core.demo.setup import build_demo

    result = build_demo(store(), settings(), examples=examples, log=lambda m: out.print(m, markup=False))
    out.print("")
    out.print("[bold]Logins[/]")
    for username, role, password in result.logins:
        out.print(f"  {role:9} {username:8} {password}")
    if serve_after:
        release()
        serve(None, None)
