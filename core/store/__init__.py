"""The DuckDB database: one owning process, numbered migrations, short transactions.

DuckDB lets one process write a file at a time. The dashboard server (or a single CLI
command when no dashboard runs) opens it; worker processes never do (see core.jobs).
Within the owner, each call takes its own cursor, so Streamlit's script threads can use
one Store concurrently.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import duckdb

from core.errors import StoreBusy, StoreError
from core.store.migrations import MIGRATIONS

_LOCK_PID = re.compile(r"PID (\d+)")


def _translate(exc: Exception, path: Path) -> Exception:
    text = str(exc)
    if "lock" in text.lower() and ("conflicting" in text.lower() or "could not set" in text.lower()):
        pid = _LOCK_PID.search(text)
        who = f" (process {pid.group(1)})" if pid else ""
        return StoreBusy(
            f"The tuneboard database {path} is in use by another process{who}. Only one process "
            "may own it: use the running dashboard, or stop it and run this command again.")
    if "No space left" in text:
        return StoreError(f"The disk holding {path} is full: nothing was written. Free space and retry.")
    if "Read-only" in text or "read-only" in text or "Permission denied" in text:
        return StoreError(f"The database {path} cannot be written ({text.splitlines()[0]}). "
                          "Check the workspace folder's permissions.")
    return StoreError(f"The database {path} could not be used: {text.splitlines()[0]}")


class Store:
    """The owner's handle on the database."""

    def __init__(self, path: str | Path, wait_s: float = 3.0):
        self.path = Path(path)
        self._lock = threading.Lock()
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._con = duckdb.connect(str(self.path))
                break
            except (duckdb.Error, OSError) as exc:
                error = _translate(exc, self.path)
                # A CLI command that waits on a job opens the database for a moment every few
                # seconds: meeting it is a matter of waiting that moment out.
                if not isinstance(error, StoreBusy) or time.monotonic() > deadline:
                    raise error from None
                time.sleep(0.1)
        self.migrate()

    # ---- schema --------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations, each in its own transaction. Returns those applied."""
        with self._lock:
            con = self._con.cursor()
            try:
                con.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,
                    applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""")
                done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
                applied = []
                for version, name, sql in MIGRATIONS:
                    if version in done:
                        continue
                    con.begin()
                    try:
                        con.execute(sql)
                        con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                                    [version, name])
                        con.commit()
                    except Exception:
                        con.rollback()
                        raise
                    applied.append(version)
                return applied
            except duckdb.Error as exc:
                raise _translate(exc, self.path) from None
            finally:
                con.close()

    def schema_version(self) -> int:
        return self.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations")

    # ---- access --------------------------------------------------------------------
    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self._con.cursor()
        try:
            yield cur
        except duckdb.Error as exc:
            raise _translate(exc, self.path) from None
        finally:
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: every statement inside commits together or not at all."""
        cur = self._con.cursor()
        cur.begin()
        try:
            yield cur
            cur.commit()
        except BaseException as exc:
            try:
                cur.rollback()
            except duckdb.Error:
                pass
            if isinstance(exc, duckdb.Error):
                raise _translate(exc, self.path) from None
            raise
        finally:
            cur.close()

    def execute(self, sql: str, params: list | tuple | None = None) -> None:
        with self.cursor() as cur:
            cur.execute(sql, params or [])

    def rows(self, sql: str, params: list | tuple | None = None) -> list[dict[str, Any]]:
        with self.cursor() as cur:
            result = cur.execute(sql, params or [])
            cols = [d[0] for d in result.description]
            return [dict(zip(cols, row)) for row in result.fetchall()]

    def row(self, sql: str, params: list | tuple | None = None) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: list | tuple | None = None) -> Any:
        with self.cursor() as cur:
            got = cur.execute(sql, params or []).fetchone()
            return got[0] if got else None

    def df(self, sql: str, params: list | tuple | None = None):
        with self.cursor() as cur:
            return cur.execute(sql, params or []).df()

    def close(self) -> None:
        self._con.close()


def insert_rows(cur: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], rows: Iterable[Sequence],
                verb: str = "INSERT") -> int:
    """Many rows in one statement (`verb`: INSERT, INSERT OR IGNORE or INSERT OR REPLACE); how many.

    DuckDB runs executemany as one statement per row (740 suite outcomes took ~2 s); one
    INSERT ... SELECT over an Arrow table takes milliseconds. Arrow keeps None as NULL (a
    pandas frame would turn it into NaN in a float column). A key repeated within `rows` keeps
    its first row.
    """
    import pyarrow as pa

    rows = [list(r) for r in rows]
    if not rows:
        return 0
    tb_insert_rows = pa.table(  # noqa: F841  (read by the SQL below)
        {name: pa.array([r[i] for r in rows]) for i, name in enumerate(columns)})
    names = ", ".join(f'"{name}"' for name in columns)
    # DuckDB finds the Arrow table by its variable name (a replacement scan): no register() needed,
    # which a cursor with an unread result (an INSERT just before) would refuse.
    cur.execute(f"{verb} INTO {table} ({names}) SELECT {names} FROM tb_insert_rows").fetchall()
    return len(rows)


def open_store(settings) -> Store:
    """Open (creating and migrating) the workspace database named by the settings."""
    for folder in (settings.workspace_dir, settings.runs_dir, settings.models_dir, settings.exports_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the workspace folder {folder}: {exc.strerror}. "
                             "Set workspace.path (or TUNEBOARD_WORKSPACE) to a writable folder.") from None
    return Store(settings.database_path)
