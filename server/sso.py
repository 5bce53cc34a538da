"""Single sign-on's Streamlit side. `st.login` reads its provider from Streamlit's secrets (`[auth]`):
this writes them from tuneboard's settings (`[sso]`) and environment into a file of the workspace
that only this account can read, and points Streamlit at that file and nothing else, so a stray
`.streamlit/secrets.toml` in the working folder never decides who signs in. The rules (who an
identity is here, which role its claims give) are core/sso.py's.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from core import sso
from core.config import Settings

SECRETS_FILE = "streamlit-secrets.toml"
COOKIE_SECRET_FILE = "sso-cookie-secret"  # kept across restarts, so a restart signs nobody out
COOKIE_SECRET_ENV = "TUNEBOARD_SSO_COOKIE_SECRET"


def _private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def _cookie_secret(settings: Settings) -> str:
    given = os.environ.get(COOKIE_SECRET_ENV)
    if given:
        return given
    path = settings.workspace_dir / COOKIE_SECRET_FILE
    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_text().strip()
    except OSError:
        secret = secrets.token_urlsafe(32)
        _private(path, secret)
        return secret


def redirect_url(settings: Settings, server_url: str) -> str:
    return settings.sso.redirect_url.strip() or f"{server_url.rstrip('/')}/oauth2callback"


def streamlit_options(settings: Settings, server_url: str) -> dict:
    """Streamlit's config options for this server: its secrets come from the workspace's file only
    (written here when single sign-on is on, removed when it is off)."""
    path = settings.workspace_dir / SECRETS_FILE
    if not sso.enabled(settings):
        path.unlink(missing_ok=True)
        return {"secrets.files": [str(path)]}
    s = settings.sso
    values = {"redirect_uri": redirect_url(settings, server_url), "cookie_secret": _cookie_secret(settings),
              "client_id": s.client_id.strip(), "client_secret": sso.client_secret(),
              "server_metadata_url": s.metadata_url.strip()}
    lines = ["[auth]"] + [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    # The provider's own sign-in page every time (no silent re-use of another account's session).
    lines += ["", "[auth.client_kwargs]", f"scope = {json.dumps(' '.join(s.scopes.split()))}",
              'prompt = "login"']
    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    _private(path, "\n".join(lines) + "\n")
    return {"secrets.files": [str(path)]}
