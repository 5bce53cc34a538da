"""Personal API tokens: a user's key for scripts, CI pipelines and notebooks.

A token is `tb_<id>_<secret>`: the id names it in lists and in the audit trail, the secret is
shown once at creation and only its SHA-256 is stored (a token is 256 random bits, so a fast hash
is enough; passwords, which people choose, get argon2). A token carries its user's role as the
account is *now* (a role change or a disabled account takes effect at once) and passes the same
core checks as the pages. It expires (`api.token_days`, at most `api.max_token_days`) and can be
revoked by its owner or an engineer.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from core import audit
from core.auth import CLI_USER, Action, User, require
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.store import Store
from core.users import get_user

PREFIX = "tb_"
_SHAPE = re.compile(r"^tb_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
# How often a token's last use is written: every request would be a write per API call.
_TOUCH_EVERY = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _signed_in(actor: User | None) -> None:
    if actor is None:
        raise PermissionDenied("Log in first: tokens belong to an account.")


def create_token(store: Store, actor: User, name: str, days: int, max_days: int) -> tuple[dict, str]:
    """A new token of `actor` (their own: nobody makes tokens for someone else). Returns its record
    and the token itself, which is never shown again."""
    _signed_in(actor)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("name: give the token a name of 1 to 100 characters (what it is for, e.g. 'ci').")
    if not isinstance(days, int) or not 1 <= days <= max_days:
        raise InvalidInput(f"days: a token lives 1 to {max_days} days (api.max_token_days).")
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    expires = datetime.now() + timedelta(days=days)
    with store.transaction() as cur:
        cur.execute("INSERT INTO api_tokens (token_id, username, name, token_hash, expires_at) VALUES (?, ?, ?, ?, ?)",
                    [token_id, actor.username, name, _hash(secret), expires])
        audit.record(cur, actor, "token.create", token_id, {"name": name, "days": days})
    record = {"token_id": token_id, "username": actor.username, "name": name, "expires_at": expires}
    return record, f"{PREFIX}{token_id}_{secret}"


def list_tokens(store: Store, actor: User, everyone: bool = False) -> list[dict]:
    """Own tokens; an engineer may list everyone's. Never the hashes."""
    if everyone:
        require(actor, Action.USERS_MANAGE)
    _signed_in(actor)
    sql = ("SELECT token_id, username, name, created_at, expires_at, revoked_at, last_used_at, "
           "revoked_at IS NULL AND expires_at > now() AS active FROM api_tokens")
    if everyone:
        return store.rows(sql + " ORDER BY created_at DESC")
    return store.rows(sql + " WHERE username = ? ORDER BY created_at DESC", [actor.username])


def revoke_token(store: Store, actor: User, token_id: str) -> None:
    _signed_in(actor)
    row = store.row("SELECT username, revoked_at FROM api_tokens WHERE token_id = ?", [token_id])
    if row is None or (row["username"] != actor.username and not actor.may(Action.USERS_MANAGE)):
        raise NotFound(f"No token {token_id!r} of yours (`tuneboard tokens list` shows them).")
    if row["revoked_at"] is not None:
        return
    with store.transaction() as cur:
        cur.execute("UPDATE api_tokens SET revoked_at = now() WHERE token_id = ?", [token_id])
        audit.record(cur, actor, "token.revoke", token_id, {"owner": row["username"]})


def token_user(store: Store, token: str | None) -> User | None:
    """The account behind a live token, as it is now; None for anything else (unknown, malformed,
    expired, revoked, or an account since disabled). The command line's token is the command line's user."""
    if is_cli_token(token):
        return CLI_USER
    match = _SHAPE.match(token or "")
    if not match:
        return None
    token_id, secret = match.groups()
    row = store.row("SELECT username, token_hash, last_used_at FROM api_tokens WHERE token_id = ? "
                    "AND revoked_at IS NULL AND expires_at > now()", [token_id])
    if row is None or not hmac.compare_digest(row["token_hash"], _hash(secret)):
        return None
    user = get_user(store, row["username"])
    if user is not None and (row["last_used_at"] is None or datetime.now() - row["last_used_at"] > _TOUCH_EVERY):
        store.execute("UPDATE api_tokens SET last_used_at = now() WHERE token_id = ?", [token_id])
    return user


def token_id_of(token: str | None) -> str | None:
    """The id part of a well-formed token (for logs and throttling; never the secret)."""
    match = _SHAPE.match(token or "")
    return match.group(1) if match else None


# ---- the command line's token -------------------------------------------------------------------
# The `tuneboard` command acts as the command line's engineer (CLI_USER): whoever can read the
# workspace's files could open its database anyway. A running server makes a fresh random token at
# every start, writes it to the workspace (mode 600) for local commands, and keeps only its SHA-256;
# a command running the API in its own process makes one for itself.
CLI_TOKEN_FILE = "cli-token"
_cli_token_hashes: set[bytes] = set()  # the server's, and any a command made for its in-process API


def issue_cli_token(workspace: Path | None = None) -> str:
    """A fresh command-line token for this process's life (written for local clients when a folder is given)."""
    token = "cli_" + secrets.token_urlsafe(32)
    if workspace is not None:
        path = workspace / CLI_TOKEN_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        tmp.replace(path)
    _cli_token_hashes.add(hashlib.sha256(token.encode()).digest())
    return token


def read_cli_token(workspace: Path) -> str | None:
    try:
        return (workspace / CLI_TOKEN_FILE).read_text().strip()
    except OSError:
        return None


def is_cli_token(token: str | None) -> bool:
    """Whether `token` is this process's command-line token (compared in constant time)."""
    if not token:
        return False
    digest = hashlib.sha256(token.encode()).digest()
    return any(hmac.compare_digest(digest, known) for known in _cli_token_hashes)
