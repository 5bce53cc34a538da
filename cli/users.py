"""`tuneboard users ...`: accounts and their roles, through the API."""

from __future__ import annotations

from typing import Optional
from urllib.parse import quote

import typer
from rich.table import Table

from cli.context import api, can_prompt, environ, out
from core.auth import ROLES
from core.errors import InvalidInput

app = typer.Typer(help="Manage accounts (engineer).", no_args_is_help=True)


def _role(role: str) -> str:
    # The API's schema refuses other roles too, but in its own words; these are core's (core/users.py).
    if role not in ROLES:
        raise InvalidInput(f"role {role!r}: must be one of {', '.join(ROLES)}.")
    return role


@app.command("add")
def users_add(username: str, role: str = typer.Option(..., help=f"One of {', '.join(ROLES)}."),
              password_env: Optional[str] = typer.Option(None, help="Read the password from this environment "
                                                         "variable instead of prompting.")) -> None:
    """Create an account. The password is prompted for, read from --password-env, or generated."""
    password = None  # none given: the server generates one and returns it this once
    if password_env:
        password = environ(password_env)
        if not password:
            raise InvalidInput(f"--password-env {password_env}: that environment variable is empty or unset.")
    elif can_prompt():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    created = api().post("/users", json={"username": username, "role": _role(role), "password": password})
    generated = created.get("password")
    out.print(f"Created {created['username']} ({created['role']})"
              + (f" with password {generated} (shown once)" if generated else ""), markup=False)


@app.command("list")
def users_list() -> None:
    """List accounts."""
    table = Table("username", "role", "disabled", "created", "by")
    for u in api().get("/users"):
        table.add_row(u["username"], u["role"], "yes" if u["disabled"] else "",
                      str(u["created_at"] or "")[:19].replace("T", " "), u["created_by"] or "")
    out.print(table)


@app.command("set-role")
def users_set_role(username: str, role: str) -> None:
    """Change an account's role."""
    changed = api().put(f"/users/{quote(username, safe='')}/role", json={"role": _role(role)})
    out.print(f"{changed['username']} is now {changed['role']}", markup=False)
