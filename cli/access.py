"""`tuneboard tokens ...` and `tuneboard audit`: personal API tokens, and the trail of who did what.

The command line acts with engineer rights but is no account of its own, so a token is always
made for a named account, given that account's password (a token is its owner's key: an engineer
who wants one for CI makes a `ci` account and a token of it, and nobody mints keys in another
person's name). Listing and revoking act as the engineer the command line is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from cli.context import can_prompt, environ, local_path, out, settings, store
from core.auth import CLI_USER
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


def _when(value) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


@tokens.command("create")
def tokens_create(name: str = typer.Argument(..., help="What the token is for, e.g. 'ci' or 'notebook'."),
                  user: str = typer.Option(..., "--user", help="The account the token acts as (its role, its "
                                           "name in the audit trail)."),
                  days: Optional[int] = typer.Option(None, help="Days it lives (default auth.token_days; at most "
                                                     "auth.max_token_days)."),
                  password_env: Optional[str] = typer.Option(None, help="Read the account's password from this "
                                                             "environment variable instead of prompting.")) -> None:
    """Create a personal API token of an account (its password is asked for); the token is printed once."""
    from core import tokens as api_tokens
    from core.errors import AuthError
    from core.throttle import SIGN_IN
    from core.users import authenticate

    password = _password(user, password_env)
    SIGN_IN.check(f"user:{user}")
    try:
        account = authenticate(store(), user, password)
    except AuthError:
        SIGN_IN.fail(f"user:{user}")
        raise
    auth = settings().auth
    record, token = api_tokens.create_token(store(), account, name, days or auth.token_days, auth.max_token_days)
    out.print(f"token {record['token_id']} of {account.username} ({account.role.value}), expires "
              f"{_when(record['expires_at'])}. It is shown this once; store it now:", markup=False)
    out.print(token, markup=False)


@tokens.command("list")
def tokens_list(user: Optional[str] = typer.Option(None, "--user", help="Only this account's tokens."),
                everything: bool = typer.Option(False, "--all", help="Also revoked and expired tokens.")) -> None:
    """Tokens (never their secrets): id, account, name, created, expires, last used."""
    from core import tokens as api_tokens

    table = Table("id", "account", "name", "created", "expires", "last used", "state")
    for t in api_tokens.list_tokens(store(), CLI_USER, everyone=True):
        if (user and t["username"] != user) or (not everything and not t["active"]):
            continue
        state = "active" if t["active"] else ("revoked" if t["revoked_at"] else "expired")
        table.add_row(t["token_id"], t["username"], Text(t["name"]), _when(t["created_at"]), _when(t["expires_at"]),
                      _when(t["last_used_at"]), state)
    out.print(table)


@tokens.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="The token's id (`tuneboard tokens list`).")) -> None:
    """Revoke a token at once (audited)."""
    from core import tokens as api_tokens

    api_tokens.revoke_token(store(), CLI_USER, token_id)
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
    from core import audit

    rows = audit.entries(store(), CLI_USER, limit=limit, who=who, action=action, door_name=door,
                         since=audit.parse_since(since))
    if csv_file is not None:
        target = local_path(csv_file)
        target.write_text(audit.to_csv(rows), encoding="utf-8")
        out.print(f"wrote {len(rows)} entries to {target}", markup=False)
        return
    table = Table("when", "who", "action", "target", "door", "detail")
    for r in rows:
        # Text cells: what people typed (names, reasons) is shown as written, never read as markup.
        table.add_row(f"{r['created_at']:%Y-%m-%d %H:%M:%S}", Text(r["actor"]), Text(r["action"]),
                      Text(r["target"] or ""), r["door"] or "-", Text((r["detail"] or "")[:200]))
    out.print(table)
