"""Local accounts: argon2-hashed passwords in DuckDB, roles, the first engineer account."""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core import audit
from core.auth import ROLES, Action, Role, User, require
from core.errors import AuthError, InvalidInput, NotFound
from core.store import Store

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_ENV = "TUNEBOARD_ADMIN_PASSWORD"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
# Browser sessions of an account end when its password changes or it is disabled (core.sessions).
REVOKE_SESSIONS = "DELETE FROM login_sessions WHERE username = ?"
_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown name like a known one.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def _check_username(username: str) -> str:
    if not _USERNAME.match(username or ""):
        raise InvalidInput(f"username {username!r}: use 2-32 characters a-z, 0-9, '.', '_' or '-', "
                           "starting with a letter or digit.")
    return username


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r}: must be one of {', '.join(ROLES)}.")
    return Role(role)


def _check_password(password: str, min_length: int) -> str:
    if len(password or "") < min_length:
        raise InvalidInput(f"password: must be at least {min_length} characters.")
    return password


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def count_users(store: Store) -> int:
    return store.scalar("SELECT count(*) FROM users")


def create_user(store: Store, actor: User, username: str, password: str, role: str,
                min_password_length: int = 10) -> User:
    require(actor, Action.USERS_MANAGE)
    _check_username(username)
    new_role = _check_role(role)
    _check_password(password, min_password_length)
    with store.transaction() as cur:
        if cur.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise InvalidInput(f"username {username!r}: already taken; choose another or change its role.")
        cur.execute("INSERT INTO users (username, password_hash, role, created_by) VALUES (?, ?, ?, ?)",
                    [username, _hasher.hash(password), new_role.value, actor.username])
        audit.record(cur, actor, "users.add", username, new_role.value)
    return User(username, new_role)


def ensure_admin(store: Store, env: dict[str, str]) -> str | None:
    """Create the first engineer account when there are no accounts at all.

    Returns the generated password (to be shown once) or None when nothing was generated.
    """
    if count_users(store):
        return None
    given = env.get(ADMIN_PASSWORD_ENV)
    password = given or generate_password()
    with store.transaction() as cur:
        if cur.execute("SELECT count(*) FROM users").fetchone()[0]:
            return None
        cur.execute("INSERT INTO users (username, password_hash, role, created_by) VALUES (?, ?, 'engineer', 'init')",
                    [ADMIN_USERNAME, _hasher.hash(password)])
        audit.record(cur, "init", "users.add", ADMIN_USERNAME, "engineer")
    return None if given else password


def authenticate(store: Store, username: str, password: str) -> User:
    row = store.row("SELECT password_hash, role, disabled FROM users WHERE username = ?", [username or ""])
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password or "")
        ok = row is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        raise AuthError("Wrong username or password.")
    if row["disabled"]:
        raise AuthError("This account is disabled; ask an engineer to enable it.")
    return User(username, Role(row["role"]))


def acting_user(store: Store, username: str) -> User | None:
    """Who work started earlier acts as now (a sweep, a schedule, a pipeline): the account as it is
    today, or the command line's user; None when the account is gone or disabled."""
    from core.auth import CLI_USER

    return CLI_USER if username == CLI_USER.username else get_user(store, username)


def get_user(store: Store, username: str) -> User | None:
    """The account as it is now (role changes and disabling take effect at once)."""
    row = store.row("SELECT role, disabled FROM users WHERE username = ?", [username])
    if row is None or row["disabled"]:
        return None
    return User(username, Role(row["role"]))


def list_users(store: Store, actor: User) -> list[dict]:
    require(actor, Action.USERS_MANAGE)
    return store.rows("SELECT username, role, disabled, created_at, created_by, sso_subject IS NOT NULL AS sso "
                      "FROM users ORDER BY username")


def _not_sso(cur, username: str, what: str) -> None:
    """An account made by single sign-on keeps its password and role at the provider (core/sso.py)."""
    row = cur.execute("SELECT sso_subject FROM users WHERE username = ?", [username]).fetchone()
    if row is not None and row[0] is not None:
        raise InvalidInput(f"{username} signs in with single sign-on: its {what} is managed by the provider "
                           "(the role follows sso.role_claim at every sign-in).")


def set_role(store: Store, actor: User, username: str, role: str) -> User:
    require(actor, Action.USERS_MANAGE)
    new_role = _check_role(role)
    with store.transaction() as cur:
        row = cur.execute("SELECT role FROM users WHERE username = ?", [username]).fetchone()
        if row is None:
            raise NotFound(f"No account named {username!r}; see `tuneboard users list`.")
        _not_sso(cur, username, "role")
        if row[0] == "engineer" and new_role != Role.ENGINEER:
            others = cur.execute("SELECT count(*) FROM users WHERE role = 'engineer' AND NOT disabled "
                                 "AND username <> ?", [username]).fetchone()[0]
            if others == 0:
                raise InvalidInput(f"{username} is the last engineer; make someone else an engineer first.")
        cur.execute("UPDATE users SET role = ? WHERE username = ?", [new_role.value, username])
        audit.record(cur, actor, "users.set_role", username, new_role.value)
    return User(username, new_role)


def set_disabled(store: Store, actor: User, username: str, disabled: bool) -> None:
    require(actor, Action.USERS_MANAGE)
    with store.transaction() as cur:
        row = cur.execute("SELECT role FROM users WHERE username = ?", [username]).fetchone()
        if row is None:
            raise NotFound(f"No account named {username!r}.")
        if disabled and username == actor.username:
            raise InvalidInput("You cannot disable your own account.")
        if disabled and row[0] == "engineer":
            others = cur.execute("SELECT count(*) FROM users WHERE role = 'engineer' AND NOT disabled "
                                 "AND username <> ?", [username]).fetchone()[0]
            if others == 0:
                raise InvalidInput(f"{username} is the last active engineer and cannot be disabled.")
        cur.execute("UPDATE users SET disabled = ? WHERE username = ?", [disabled, username])
        if disabled:
            cur.execute(REVOKE_SESSIONS, [username])
        audit.record(cur, actor, "users.set_disabled", username, str(disabled))


def reset_password(store: Store, actor: User, username: str, password: str,
                   min_password_length: int = 10) -> None:
    require(actor, Action.USERS_MANAGE)
    _check_password(password, min_password_length)
    with store.transaction() as cur:
        if not cur.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise NotFound(f"No account named {username!r}.")
        _not_sso(cur, username, "password")
        cur.execute("UPDATE users SET password_hash = ? WHERE username = ?", [_hasher.hash(password), username])
        cur.execute(REVOKE_SESSIONS, [username])
        audit.record(cur, actor, "users.reset_password", username)


def change_own_password(store: Store, actor: User, current: str, new: str, min_password_length: int = 10) -> None:
    """Any signed-in user may change their own password, given the current one."""
    authenticate(store, actor.username, current)
    _check_password(new, min_password_length)
    if new == current:
        raise InvalidInput("password: the new password must differ from the current one.")
    with store.transaction() as cur:
        cur.execute("UPDATE users SET password_hash = ? WHERE username = ?", [_hasher.hash(new), actor.username])
        cur.execute(REVOKE_SESSIONS, [actor.username])
        audit.record(cur, actor, "users.change_password", actor.username)
