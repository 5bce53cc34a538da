"""Single sign-on (OpenID Connect): who the provider's verified claims make someone here.

Pages sign in through Streamlit's `st.login`, which runs the authorization-code flow with
Authlib (the ID token's signature, issuer, audience and nonce are checked there); the edge
(server/sso.py) gives Streamlit its `[auth]` secrets from these settings. The claims then come
here. An account made by single sign-on is tied to the provider's subject (issuer + sub), not
to a name: it is created at its first sign-in, has no password here (a password sign-in to it
fails like a wrong password), and its role follows the role claim at every sign-in. A local
account of the same name is never taken over. Personal API tokens made by such an account carry
the same identity through the same checks. Local accounts stay for small teams.
"""

from __future__ import annotations

import os
import re
from typing import Any

from core import audit
from core.auth import Role, User
from core.config import Settings
from core.errors import AuthError
from core.store import Store

CLIENT_SECRET_ENV = "TUNEBOARD_SSO_CLIENT_SECRET"
NO_PASSWORD = "!sso"  # never an argon2 hash: verifying a password against it always fails
# The highest role a person's claim values reach wins.
_ORDER = (Role.ENGINEER, Role.LEAD, Role.RATER)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")


def enabled(settings: Settings) -> bool:
    return bool(settings.sso.metadata_url.strip())


def client_secret(env: dict[str, str] | None = None) -> str:
    return (os.environ if env is None else env).get(CLIENT_SECRET_ENV, "")


def problems(settings: Settings, env: dict[str, str] | None = None) -> list[str]:
    """What keeps the configured single sign-on from working, in words an engineer can act on."""
    if not enabled(settings):
        return []
    found = []
    if not settings.sso.client_id.strip():
        found.append("sso.client_id is empty: set tuneboard's client id at the provider.")
    if not client_secret(env):
        found.append(f"{CLIENT_SECRET_ENV} is not set: put the client secret in the server's environment.")
    if not any(groups(settings, r) for r in _ORDER):
        found.append("sso.engineer_groups, sso.lead_groups and sso.rater_groups are all empty: nobody could sign "
                     "in; list the values of sso.role_claim that give each role.")
    if "openid" not in settings.sso.scopes.split():
        found.append("sso.scopes must include openid.")
    return found


def groups(settings: Settings, role: Role) -> list[str]:
    raw = getattr(settings.sso, f"{role.value}_groups")
    return [g.strip() for g in raw.split(",") if g.strip()]


def _values(claim: Any) -> list[str]:
    if isinstance(claim, str):
        return [claim]
    if isinstance(claim, (list, tuple)):
        return [str(v) for v in claim if isinstance(v, (str, int))]
    return []


def role_of(settings: Settings, claims: dict) -> Role | None:
    """The highest role any value of the role claim maps to; None when none does."""
    have = set(_values(claims.get(settings.sso.role_claim)))
    for role in _ORDER:
        if have & set(groups(settings, role)):
            return role
    return None


def username_of(settings: Settings, claims: dict) -> str:
    """The account name: the username claim (or the email's local part), in the characters names here use."""
    raw = claims.get(settings.sso.username_claim) or claims.get("email") or ""
    name = str(raw).strip().lower().split("@", 1)[0]
    name = re.sub(r"[^a-z0-9._-]+", "-", name).strip("-._")[:32]
    if not _NAME.match(name):
        raise AuthError(f"{settings.sso.label} gave no usable account name (claim {settings.sso.username_claim!r} "
                        f"or email: {str(raw)[:60]!r}); ask an engineer to set sso.username_claim.")
    return name


def subject_of(claims: dict) -> str:
    iss, sub = claims.get("iss"), claims.get("sub")
    if not iss or not sub:
        raise AuthError("The provider's answer names no subject (iss and sub); sign in again.")
    return f"{iss}|{sub}"


def sign_in(store: Store, settings: Settings, claims: dict) -> User:
    """The account of these verified claims as of now: made at the first sign-in, its role following
    the claims. Refused (AuthError, with what to do) when the claims map to no role (an account made
    earlier is then disabled, its API tokens with it), the account is disabled here, or the name is a
    local account's."""
    label = settings.sso.label
    subject = subject_of(claims)
    role = role_of(settings, claims)
    if role is None:
        # The provider no longer puts this person in a mapped group: an account they had here is disabled
        # (its API tokens stop working at once), in its own transaction, before the refusal.
        with store.transaction() as cur:
            row = cur.execute("SELECT username, disabled FROM users WHERE sso_subject = ?", [subject]).fetchone()
            if row is not None and not row[1]:
                cur.execute("UPDATE users SET disabled = true WHERE username = ?", [row[0]])
                audit.record(cur, row[0], "users.disable", row[0], {"by": "sso", "why": "no mapped group"})
        lists = "; ".join(f"{r.value}: {', '.join(groups(settings, r)) or '(none)'}" for r in _ORDER)
        raise AuthError(f"Your {label} account has no tuneboard role: none of its {settings.sso.role_claim!r} "
                        f"values is mapped ({lists}). Ask an engineer to add you to one of those groups"
                        + (" and to enable your account here." if row is not None else "."))
    with store.transaction() as cur:
        row = cur.execute("SELECT username, role, disabled FROM users WHERE sso_subject = ?", [subject]).fetchone()
        if row is not None:
            username, had, disabled = row
            if disabled:
                raise AuthError("This account is disabled; ask an engineer to enable it.")
            if had != role.value:
                cur.execute("UPDATE users SET role = ? WHERE username = ?", [role.value, username])
                audit.record(cur, username, "users.role", username, {"from": had, "to": role.value, "by": "sso"})
            audit.record(cur, username, "sso.sign_in", username, {"role": role.value})
            return User(username, role)
        username = username_of(settings, claims)
        if cur.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise AuthError(f"An account named {username!r} already exists here and is not tied to {label}. "
                            "Sign in with its password, or ask an engineer to rename or remove it (or to set "
                            "sso.username_claim).")
        cur.execute("INSERT INTO users (username, password_hash, role, created_by, sso_subject) "
                    "VALUES (?, ?, ?, 'sso', ?)", [username, NO_PASSWORD, role.value, subject])
        audit.record(cur, username, "users.add", username, {"role": role.value, "by": "sso"})
        audit.record(cur, username, "sso.sign_in", username, {"role": role.value})
    return User(username, role)


def is_sso_account(store: Store, username: str) -> bool:
    return bool(store.scalar("SELECT sso_subject IS NOT NULL FROM users WHERE username = ?", [username]))
