"""Browser login sessions that survive a page reload.

A session is a random token given to the browser (as a cookie) and stored here only as its
SHA-256 hash, with an expiry. It is revoked at logout, and every session of an account is
revoked when its password changes or it is disabled.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from core.auth import User
from core.store import Store
from core.users import get_user


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(store: Store, user: User, hours: int) -> str:
    token = secrets.token_urlsafe(32)
    expires = datetime.now() + timedelta(hours=hours)
    with store.transaction() as cur:
        cur.execute("DELETE FROM login_sessions WHERE expires_at < now()")
        cur.execute("INSERT INTO login_sessions (token_hash, username, expires_at) VALUES (?, ?, ?)",
                    [_hash(token), user.username, expires])
    return token


def resume_session(store: Store, token: str | None) -> User | None:
    """The account behind a live token, as it is now; None if unknown, expired or disabled."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    row = store.row("SELECT username FROM login_sessions WHERE token_hash = ? AND expires_at > now()",
                    [_hash(token)])
    return get_user(store, row["username"]) if row else None


def end_session(store: Store, token: str | None) -> None:
    if token:
        store.execute("DELETE FROM login_sessions WHERE token_hash = ?", [_hash(token)])


def end_all_sessions(store: Store, username: str) -> None:
    store.execute("DELETE FROM login_sessions WHERE username = ?", [username])
