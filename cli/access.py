"""`tuneboard tokens ...` and `tuneboard audit`: personal API tokens, and the trail of who did what,
through the API.

The command line acts with engineer rights but is no account of its own, so a token is always
made for a named account, given that account's password (a token is its owner's key: an engineer
who wants one for CI makes a `ci` account and a token of it, and nobody mints keys in another
person's name): the command signs in as that account (POST /login), which is what makes its token.
Listing and revoking act as the engineer the command line is.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Optional
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from cli.context import api, can_prompt, environ, local_path, out
from core.audit import DOORS, parse_since
from core.errors import InvalidInput

tokens = typer.Typer(help="Personal API tokens: create one for an account, list, revoke.", no_args_is_help=True)
commands = typer.Typer()


def _password(username: str, password_env: Optional[str]) -> str:
    if password_env:
        password = environ(password_env)
        if not password:
            raise InvalidInput(f"--password-env {password_env}: that environment variable is empty or unset.")
        return password
    if can_prompt():
        return typer.prompt(f"Password of {username}", hide_input=True)
    raise InvalidInput("password: give --password-env VAR (the name of a variable holding the account's password); "
                       "there is no terminal to ask on.")


def _when(value: str | None, seconds: bool = False) -> str:
    """A time the API gives (ISO 8601, the server's local time) as the tables show it."""
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


@tokens.command("create")
def tokens_create(name: str = typer.Argument(..., help="What the token is for, e.g. 'ci' or 'notebook'."),
                  user: str = typer.Option(..., "--user", help="The account the token acts as (its role, its "
                                           "name in the audit trail)."),
                  days: Optional[int] = typer.Option(None, help="Days it lives (default auth.token_days; at most "
                                                     "auth.max_token_days)."),
                  password_env: Optional[str] = typer.Option(None, help="Read the account's password from this "
                                                             "environment variable instead of prompting.")) -> None:
    """Create a personal API token of an account (its password is asked for); the token is printed once."""
    password = _password(user, password_env)
    made = api().post("/login", json={"username": user, "password": password, "name": name, "days": days})
    out.print(f"token {made['token_id']} of {made['username']} ({made['role']}), expires "
              f"{_when(made['expires_at'])}. It is shown this once; store it now:", markup=False)
    out.print(made["token"], markup=False)


@tokens.command("list")
def tokens_list(user: Optional[str] = typer.Option(None, "--user", help="Only this account's tokens."),
                everything: bool = typer.Option(False, "--all", help="Also revoked and expired tokens.")) -> None:
    """Tokens (never their secrets): id, account, name, created, expires, last used."""
    table = Table("id", "account", "name", "created", "expires", "last used", "state")
    for t in api().get("/tokens", everyone=True):
        if (user and t["username"] != user) or (not everything and not t["active"]):
            continue
        state = "active" if t["active"] else ("revoked" if t["revoked_at"] else "expired")
        table.add_row(t["token_id"], t["username"], Text(t["name"]), _when(t["created_at"]), _when(t["expires_at"]),
                      _when(t["last_used_at"]), state)
    out.print(table)


@tokens.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="The token's id (`tuneboard tokens list`).")) -> None:
    """Revoke a token at once (audited)."""
    api().delete(f"/tokens/{quote(token_id, safe='')}")
    out.print(f"revoked {token_id}", markup=False)


@commands.command("audit")
def audit_trail(who: Optional[str] = typer.Option(None, help="Only this account's actions."),
                action: Optional[str] = typer.Option(None, help="Only actions starting with this, e.g. 'users.' or "
                                                     "'train'."),
                door: Optional[str] = typer.Option(None, help="Only through this door: page, api, cli or server."),
                since: Optional[str] = typer.Option(None, help="From this date or time (2026-05-01, "
                                                    "2026-05-01T09:30) or age (30m, 12h, 7d)."),
                limit: int = typer.Option(200, min=1, max=100_000, help="At most this many, newest first."),
                csv_file: Optional[Path] = typer.Option(None, "--csv", help="Write the entries to this CSV file "
                                                        "instead of printing them.")) -> None:
    """The audit trail: who did what, when, and through which door (newest first)."""
    if door and door not in DOORS:  # the API's schema refuses it too, in its own words; these are core's
        raise InvalidInput(f"door: {door!r} is not one of {', '.join(DOORS)}.")
    query = {"who": who, "action": action, "door": door, "limit": limit}
    start = parse_since(since)  # as people write it (an age, a date): sent as a time
    if start is not None:
        query["since"] = start.isoformat()
    if csv_file is not None:
        text = api().get("/audit", format="csv", **query)
        target = local_path(csv_file)
        target.write_text(text, encoding="utf-8")
        entries = max(0, len(list(csv.reader(io.StringIO(text)))) - 1)  # a detail may hold line breaks
        out.print(f"wrote {entries} entries to {target}", markup=False)
        return
    table = Table("when", "who", "action", "target", "door", "detail")
    for r in api().get("/audit", **query):
        # Text cells: what people typed (names, reasons) is shown as written, never read as markup.
        table.add_row(_when(r["created_at"], seconds=True), Text(r["actor"]), Text(r["action"]),
                      Text(r["target"] or ""), r["door"] or "-", Text((r["detail"] or "")[:200]))
    out.print(table)
