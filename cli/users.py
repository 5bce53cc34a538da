"""`tuneboard users ...`: accounts and their roles."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from cli.context import can_prompt, environ, out, settings, store
from core.auth import CLI_USER, ROLES
from core.errors import InvalidInput

app = typer.Typer(help="Manage accounts (engineer).", no_args_is_help=True)


@app.command("add")
def users_add(username: str, role: str = typer.Option(..., help=f"One of {', '.join(ROLES)}."),
              password_env: Optional[str] = typer.Option(None, help="Read the password from this environment "
                                                         "variable instead of prompting.")) -> None:
    """Create an account. The password is prompted for, read from --password-env, or generated."""
    from core.users import create_user, generate_password

    generated = False
    if password_env:
        password = environ(password_env)
        if not password:
            raise InvalidInput(f"--password-env {password_env}: that environment variable is empty or unset.")
    elif can_prompt():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password, generated = generate_password(), True
    create_user(store(), CLI_USER, username, password, role, settings().auth.min_password_length)
    out.print(f"Created {username} ({role})" + (f" with password {password} (shown once)" if generated else ""),
              markup=False)


@app.command("list")
def users_list() -> None:
    """List accounts."""
    from core.users import list_users

    table = Table("username", "role", "disabled", "created", "by")
    for u in list_users(store(), CLI_USER):
        table.add_row(u["username"], u["role"], "yes" if u["disabled"] else "", str(u["created_at"])[:19],
                      u["created_by"] or "")
    out.print(table)


@app.command("set-role")
def users_set_role(username: str, role: str) -> None:
    """Change an account's role."""
    from core.users import set_role

    set_role(store(), CLI_USER, username, role)
    out.print(f"{username} is now {role}", markup=False)
