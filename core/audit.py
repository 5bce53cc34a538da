"""The audit trail: who did what, when, and through which door (page, API, CLI, or the server
itself). The one module that writes `audit_log`.

The door is not passed through every call: each edge says which door a request came through
(`through("api")` around an API request, "cli" around a command, "page" around a page run) and
`record` reads it, so core functions stay the same whichever door calls them. Work the server
does on its own (schedules, the owner's restatement of results) records the door "server".
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from core.auth import Action, User, require
from core.store import Store

DOORS = ("page", "api", "cli", "server")
_door: ContextVar[str] = ContextVar("tuneboard_door", default="server")


def door() -> str:
    return _door.get()


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
                [who, action, target, detail, _door.get()])


def entries(store: Store, actor: User, *, limit: int = 500, who: str | None = None, action: str | None = None,
            door_name: str | None = None, since: Any = None) -> list[dict]:
    """The newest entries first, filtered; engineers only (the trail names every account's actions)."""
    require(actor, Action.USERS_MANAGE)
    where, params = [], []
    for column, value in (("actor", who), ("door", door_name)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if action:
        where.append("action LIKE ?")
        params.append(action.rstrip("*") + "%")
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    sql = ("SELECT id, created_at, actor, action, target, detail, door FROM audit_log"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?")
    return store.rows(sql, params + [max(1, min(int(limit), 100_000))])
