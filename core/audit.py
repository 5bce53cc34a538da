"""The audit trail: who did what, when, and through which door (page, API, CLI, or the server
itself). The one module that writes `audit_log`.

The door is not passed through every call: each edge says which door a request came through
(`through("api")` around an API request, "cli" around a command, "page" around a page run) and
`record` reads it, so core functions stay the same whichever door calls them. Work the server
does on its own (schedules, the owner's restatement of results) records the door "server".

An edge whose threads are not its own to wrap (Streamlit runs a page's callbacks and fragment
reruns in threads that start before any line of the page) registers `default_door`: a function
that names the door of the current thread when none was set, or None.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

from core.auth import Action, User, require
from core.errors import InvalidInput
from core.store import Store

DOORS = ("page", "api", "cli", "server")
_door: ContextVar[str | None] = ContextVar("tuneboard_door", default=None)
_defaults: list[Callable[[], str | None]] = []
COLUMNS = ("id", "created_at", "actor", "action", "target", "detail", "door")


def door() -> str:
    chosen = _door.get()
    if chosen is not None:
        return chosen
    for guess in _defaults:
        found = guess()
        if found in DOORS:
            return found
    return "server"


def default_door(guess: Callable[[], str | None]) -> None:
    """Register how to tell the door of a thread no edge wrapped (registered once per process)."""
    if guess not in _defaults:
        _defaults.append(guess)


def set_door(name: str) -> None:
    """Set the door for the rest of this context (a page run, a command, a request's task)."""
    if name not in DOORS:
        raise ValueError(f"unknown door {name!r}")
    _door.set(name)


@contextmanager
def through(name: str) -> Iterator[None]:
    if name not in DOORS:
        raise ValueError(f"unknown door {name!r}")
    token = _door.set(name)
    try:
        yield
    finally:
        _door.reset(token)


def record(cur, actor: User | str, action: str, target: str | None = None, detail: Any = None) -> None:
    """One audit row, inside the caller's transaction (so it is written exactly when the change is)."""
    who = actor if isinstance(actor, str) else actor.username
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, default=str, sort_keys=True)
    cur.execute("INSERT INTO audit_log (actor, action, target, detail, door) VALUES (?, ?, ?, ?, ?)",
                [who, action, target, detail, door()])


def entries(store: Store, actor: User, *, limit: int = 500, who: str | None = None, action: str | None = None,
            door_name: str | None = None, since: Any = None) -> list[dict]:
    """The newest entries first, filtered; engineers only (the trail names every account's actions)."""
    require(actor, Action.USERS_MANAGE)
    if door_name and door_name not in DOORS:
        raise InvalidInput(f"door: {door_name!r} is not one of {', '.join(DOORS)}.")
    where, params = [], []
    for column, value in (("actor", who), ("door", door_name)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if action:
        where.append("starts_with(action, ?)")  # a prefix taken as typed ('_' and '%' are no wildcards)
        params.append(action.rstrip("*"))
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    sql = ("SELECT id, created_at, actor, action, target, detail, door FROM audit_log"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?")
    return store.rows(sql, params + [max(1, min(int(limit), 100_000))])


def actors(store: Store, actor: User) -> list[str]:
    """Everyone who appears in the trail (accounts, also removed ones; the command line; the server)."""
    require(actor, Action.USERS_MANAGE)
    return [r["actor"] for r in store.rows("SELECT DISTINCT actor FROM audit_log ORDER BY actor")]


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`--since` as people write it: an ISO date or time (2026-05-01, 2026-05-01T09:30), or an age
    (30m, 12h, 7d). None or blank: no bound."""
    text = (text or "").strip()
    if not text:
        return None
    age = re.fullmatch(r"(\d+)\s*([mhd])", text)
    if age:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[age.group(2)]
        return (now or datetime.now()) - timedelta(**{unit: int(age.group(1))})
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"since: {text!r} is neither a date or time (2026-05-01, 2026-05-01T09:30) nor an age "
                           "(30m, 12h, 7d).") from None


def _inert(value: Any) -> str:
    """A cell a spreadsheet shows as text: a leading =, +, -, @ (or tab/CR) would start a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(rows: list[dict]) -> str:
    """Entries as CSV (the columns of `entries`), every cell inert in a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_inert(row.get(c)) for c in COLUMNS])
    return buffer.getvalue()
