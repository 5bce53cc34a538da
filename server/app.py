"""The ASGI app: the dashboard's pages (`st.App` over dashboard/app.py) and the HTTP routes,
with a lifespan that owns the database for the life of the process."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st

import dashboard
from core import owner as owners
from core import tokens
from core.config import load_settings
from core.owner import Owner
from server import discovery, routes

log = logging.getLogger("tuneboard")
URL_ENV = "TUNEBOARD_SERVER_URL"  # set by the launcher: where this server listens


@asynccontextmanager
async def lifespan(app):
    """Open the owner before the first request: ingest, schedules, sweeps and pipelines run from
    the first second, with or without a browser. Close it on shutdown (SIGTERM included)."""
    settings = load_settings()
    owner = await asyncio.to_thread(Owner.open, settings)
    owners.install(owner)
    # What is loaded by now (libraries, the owner) lives as long as the process: out of the
    # collector's way, so a full collection during a page run does not walk it every time.
    gc.freeze()
    if owner.generated_admin_password:
        print(f"tuneboard: created the engineer account admin with password {owner.generated_admin_password} "
              "(shown once)", flush=True)
    tokens.issue_cli_token(settings.workspace_dir)
    discovery.announce(settings, os.environ.get(URL_ENV, f"http://127.0.0.1:{settings.server.port}"))
    log.info("tuneboard: owner open (%s)", settings.database_path)
    try:
        yield {"owner": owner}
    finally:
        discovery.withdraw(settings)
        owners.install(None)
        await asyncio.to_thread(owner.close)
        log.info("tuneboard: owner closed")


def build() -> st.App:
    return st.App(Path(dashboard.__file__).with_name("app.py"), lifespan=lifespan, routes=routes.ROUTES,
                  middleware=routes.MIDDLEWARE)
