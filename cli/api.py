"""How a `tuneboard` command reaches tuneboard: through the HTTP API (api/), with the same Python
client scripts use (api.client.Client).

When `tuneboard serve` runs for the workspace (server/discovery.py), over HTTP with the workspace's
command-line token. Otherwise the same API app runs inside this process and the command is the
database's owner while it talks to it; while it only waits on a job it lets the database go
(`release`), so a server may start meanwhile, and the next call then goes to that server.
Either way the command acts as the command line's engineer (core/tokens.py) and is audited
through the command line's door.
"""

from __future__ import annotations

from typing import Callable

from api.client import Client
from core.config import Settings


class _InProcess:
    """An httpx-like client whose requests run the API app in this process (Starlette's in-process
    transport), with this process as the database's owner from the first request until `close`."""

    def __init__(self, settings: Settings, on_open: Callable[[object], None], owner=None):
        from starlette.applications import Starlette
        from starlette.routing import Mount
        from starlette.testclient import TestClient

        from api.app import build
        from core.tokens import issue_cli_token

        self.settings, self.on_open, self.owner = settings, on_open, None
        self.given = owner  # an owner already open in this process (the server's, a test's): used, never closed
        self.installed = False
        app = Starlette(routes=[Mount("/api/v1", app=build())])  # where the server mounts it
        self.http = TestClient(app, base_url="http://tuneboard.local/api/v1", raise_server_exceptions=False,
                               headers={"Authorization": f"Bearer {issue_cli_token()}"})

    def open(self):
        if self.given is not None:
            from core import owner as owners

            if owners.running() is None:
                owners.install(self.given)
                self.installed = True
            self.given.catch_up()  # without a monitor (a test's owner), each look takes in what workers wrote
            return self.given
        if self.owner is None:
            from core import owner as owners
            from core.owner import Owner

            _log_to_workspace(self.settings)
            self.owner = Owner.open(self.settings, monitor=False)
            self.owner.catch_up()  # what workers wrote meanwhile, and the sweeps and pipelines waiting on it
            owners.install(self.owner)
            self.on_open(self.owner)
        return self.owner

    def let_go(self) -> None:
        """Close the database (the next request opens it again)."""
        if self.owner is not None:
            from core import owner as owners

            owners.install(None)
            owner, self.owner = self.owner, None
            owner.close()

    def close(self) -> None:
        self.let_go()
        if self.installed:
            from core import owner as owners

            owners.install(None)
        self.http.close()

    def request(self, method: str, path: str, **kwargs):
        self.open()
        return self.http.request(method, path, **kwargs)

    def stream(self, method: str, path: str, **kwargs):
        self.open()
        return self.http.stream(method, path, **kwargs)


LOG_FILE = "cli.log"


def _log_to_workspace(settings: Settings) -> None:
    """What the in-process API logs (an unexpected failure's traceback, with its incident id) goes to the
    workspace's cli.log, as a server's goes to its log: never onto the user's terminal."""
    import logging

    logger = logging.getLogger("tuneboard")
    if any(getattr(h, "tuneboard_cli", False) for h in logger.handlers):
        return
    try:
        settings.workspace_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(settings.workspace_dir / LOG_FILE, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.tuneboard_cli = True
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False


def running_server(settings: Settings) -> tuple[str, str] | None:
    """(url, token) of the live server of this workspace, or None."""
    from core.tokens import read_cli_token
    from server import discovery

    found, token = discovery.running(settings), read_cli_token(settings.workspace_dir)
    return (found["url"], token) if found and token else None


class Connection:
    """This command's API client, over HTTP or in-process; `release` lets the database go while the
    command waits, `moved` says whether a server started meanwhile (the client then goes to it)."""

    def __init__(self, settings: Settings, on_open: Callable[[object], None] = lambda owner: None, owner=None):
        self.settings, self.on_open, self.given = settings, on_open, owner
        self.local: _InProcess | None = None
        self.client = self._connect()

    def _connect(self) -> Client:
        found = None if self.given is not None else running_server(self.settings)
        if found is not None:
            return Client(*found, timeout=None)
        self.local = _InProcess(self.settings, self.on_open, self.given)
        return Client.over(self.local)

    @property
    def in_process(self) -> bool:
        return self.local is not None

    def owner(self):
        """This process's owner (in-process only): for what the API does not carry (a local server)."""
        return self.local.open() if self.local is not None else None

    def release(self) -> None:
        if self.local is not None:
            self.local.let_go()

    def moved(self) -> bool:
        """After `release`: whether a server now runs for the workspace; if so, later calls go to it."""
        if self.local is None or self.given is not None or self.local.owner is not None \
                or running_server(self.settings) is None:
            return False
        self.local = None
        self.client = self._connect()
        return True

    def close(self) -> None:
        self.client.close()
