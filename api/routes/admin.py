"""Accounts and the audit trail (engineers: core.users and core.audit refuse anyone else)."""

from __future__ import annotations

import json
import logging
import queue
import threading
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from api.auth import caller, the_owner
from api.errors import ApiError
from api.plain import plain
from core import audit
from core.auth import ROLES, User
from core.errors import TuneboardError
from core.owner import Owner

router = APIRouter(tags=["admin"])
log = logging.getLogger("tuneboard.api")

RoleName = Literal[ROLES]  # type: ignore[valid-type]


class NewUser(BaseModel):
    username: str = Field(max_length=32, description="2-32 characters a-z, 0-9, '.', '_' or '-'.")
    role: RoleName = Field(description="rater, lead or engineer.")
    password: str | None = Field(None, max_length=1000, description="The password (default: one is generated and "
                                 "returned this once).")


class UserOut(BaseModel):
    username: str
    role: str
    password: str | None = Field(None, description="The generated password, when none was given (shown this once).")


class RoleChange(BaseModel):
    role: RoleName = Field(description="The new role (the last engineer cannot be demoted).")


class Access(BaseModel):
    disabled: bool = Field(description="True: the account can no longer sign in and its sessions and tokens stop "
                           "working at once; false: enabled again.")


@router.get("/users", summary="Accounts with their role and state")
def list_users(user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core import users

    return plain(users.list_users(owner.store, user))


@router.post("/users", response_model=UserOut, status_code=201, summary="Create an account")
def add_user(body: NewUser, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> UserOut:
    from core import users

    password = body.password or users.generate_password()
    created = users.create_user(owner.store, user, body.username, password, body.role,
                                owner.settings.auth.min_password_length)
    return UserOut(username=created.username, role=created.role.value,
                   password=None if body.password else password)


@router.put("/users/{username}/role", response_model=UserOut, summary="Change an account's role")
def set_role(username: str, body: RoleChange, user: User = Depends(caller),
             owner: Owner = Depends(the_owner)) -> UserOut:
    from core import users

    changed = users.set_role(owner.store, user, username, body.role)
    return UserOut(username=changed.username, role=changed.role.value)


@router.put("/users/{username}/disabled", summary="Disable an account (or enable it again)")
def set_disabled(username: str, body: Access, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core import users

    users.set_disabled(owner.store, user, username, body.disabled)
    return {"username": username, "disabled": body.disabled}


@router.get("/audit", summary="The audit trail, newest first: who did what, when, through which door "
            "(?format=csv for a file)",
            responses={200: {"content": {"application/json": {}, "text/csv": {}},
                             "description": "The entries, as JSON or as CSV."}})
def audit_trail(who: str | None = Query(None, description="Only this account's actions."),
                action: str | None = Query(None, description="Only actions starting with this, e.g. users. or train."),
                door: Literal["page", "api", "cli", "server"] | None = Query(None, description="Only through this door."),
                since: datetime | None = Query(None, description="From this time on (ISO 8601)."),
                limit: int = Query(500, ge=1, le=100_000, description="At most this many entries."),
                format: Literal["json", "csv"] = Query("json", description="json, or csv for a spreadsheet."),
                user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    if since is not None and since.tzinfo is not None:
        since = since.astimezone().replace(tzinfo=None)  # stored times are the server's local time
    rows = audit.entries(owner.store, user, limit=limit, who=who, action=action, door_name=door, since=since)
    if format == "csv":
        return PlainTextResponse(audit.to_csv(rows), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="tuneboard-audit.csv"'})
    return plain(rows)


# ---- the offline demo (`tuneboard demo` through a running server) ------------------------------
class Demo(BaseModel):
    examples: int = Field(1200, ge=100, le=100_000, description="Number of demo examples.")


_demo_lock = threading.Lock()


@router.post("/demo", summary="Build the offline demo: model, dataset, accounts, fine-tune, generations, scores, "
             "pair set (NDJSON: its log as it goes, then the logins)",
             responses={200: {"content": {"application/x-ndjson": {}},
                              "description": 'Lines {"log": text}, then {"logins": [[user, role, password], ...]} or '
                                             '{"error": message}.'}})
def build_demo(body: Demo, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.auth import Action, require
    from core.demo.setup import build_demo as build

    require(user, Action.USERS_MANAGE)  # it makes accounts: an engineer's
    if not _demo_lock.acquire(blocking=False):
        raise ApiError(409, "busy", "The demo is being built already; wait for it (`tuneboard runs list` shows its "
                       "jobs).")
    lines: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            result = build(owner.store, owner.settings, examples=body.examples, log=lambda m: lines.put({"log": m}))
            lines.put({"logins": [list(login) for login in result.logins]})
        except TuneboardError as exc:
            lines.put({"error": str(exc)})
        except Exception:  # noqa: BLE001 - logged with its traceback; the client gets the incident's words
            log.exception("the demo failed")
            lines.put({"error": "The demo failed inside tuneboard; the server's log has the details."})
        finally:
            _demo_lock.release()
            lines.put(None)

    # Its own thread: the build goes on if the client goes away (its jobs are the owner's anyway).
    threading.Thread(target=work, name="tuneboard-demo", daemon=True).start()

    def stream():
        while (item := lines.get()) is not None:
            yield json.dumps(item) + "\n"

    return StreamingResponse(stream(), media_type="application/x-ndjson")
