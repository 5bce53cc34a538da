"""A small Python client of tuneboard's HTTP API, for scripts, CI pipelines and notebooks.

    from api.client import Client

    tb = Client("http://localhost:8501", token=os.environ["TUNEBOARD_TOKEN"])
    job = tb.post("/datasets", files={"file": open("tickets.jsonl", "rb")}, data={"name": "tickets"})["job_id"]
    version = tb.wait(f"/imports/{job}")["result"]["version_id"]  # an import is a job (or pass wait=true)

Every method takes the path under /api/v1. An error answer raises `ApiError` with the server's
code and message (the same words the pages and the CLI show).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import httpx

TERMINAL = ("succeeded", "failed", "cancelled")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, body: Any = None):
        super().__init__(f"{message} ({status} {code})")
        self.status, self.code, self.message, self.body = status, code, message, body


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float | None = 60.0):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout)

    @classmethod
    def over(cls, http) -> "Client":
        """A client whose calls go through `http` (anything with httpx's request, stream and close; the
        command line's in-process API, cli/api.py)."""
        client = cls.__new__(cls)
        client.url, client.http = "in-process", http
        return client

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- plain calls -----------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs) -> Any:
        response = self.http.request(method, path, **kwargs)
        return self._read(response)

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def put(self, path: str, json: Any = None, **kwargs) -> Any:
        return self.request("PUT", path, json=json, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    @staticmethod
    def _read(response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            if response.is_success:
                return None
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.is_success:
            return body
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise ApiError(response.status_code, error.get("code", "http_error"),
                       error.get("message", str(body)[:500]), body)

    def download(self, path: str, target: str | Path, **params) -> Path:
        """GET a file (a run record's zip, an export) into `target`, a file path or a folder (then under the
        name the server gives it): written whole under a temporary name, then renamed, so the file is
        never seen half-written. Returns its path."""
        target = Path(target)
        with self.http.stream("GET", path, params={k: v for k, v in params.items() if v is not None}) as response:
            if not response.is_success:
                response.read()
                self._read(response)  # raises the API's error
            if target.is_dir():
                named = re.search(r'filename="?([^";]+)"?', response.headers.get("content-disposition", ""))
                target = target / Path(named.group(1) if named else path).name  # a name, never a path
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    for chunk in response.iter_bytes():
                        fh.write(chunk)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return target

    # ---- jobs ------------------------------------------------------------------------------
    def lines(self, method: str, path: str, **kwargs) -> Iterator[dict]:
        """An NDJSON answer (events as they happen, the demo's log), one object per line as it arrives."""
        with self.http.stream(method, path, timeout=None, **kwargs) as r:
            if not r.is_success:
                r.read()
                self._read(r)
            for line in r.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def events(self, run_id: str) -> Iterator[dict]:
        """A training run's events as they happen, until it ends."""
        yield from self.lines("GET", f"/runs/{run_id}/events", params={"follow": "true"})

    def wait(self, path: str, timeout: float = 7200, poll: float = 2.0) -> dict:
        """GET `path` (a run, a job, a generation set...) until its `status` is final; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.get(path)
            if item.get("status") in TERMINAL:
                return item
            if time.monotonic() > deadline:
                raise ApiError(408, "timeout", f"{path} is still {item.get('status')} after {timeout:.0f} s.", item)
            time.sleep(poll)
