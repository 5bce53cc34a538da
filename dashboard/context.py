"""The one Owner of this server process and the signed-in user of this session."""

from __future__ import annotations

import gc

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core import audit, sso
from core.auth import User
from core.config import load_settings
from core.errors import TuneboardError
from core.owner import Owner, running
from core.sessions import end_session, resume_session, start_session
from core.users import get_user

SESSION_USER = "tb_username"
SESSION_TOKEN = "tb_token"
COOKIE_PENDING = "tb_cookie_pending"
COOKIE = "tuneboard_session"
SSO_REFUSED = "tb_sso_refused"
SSO_ENDED = "tb_sso_ended"  # this browser session logged out: never signed in again from the provider's cookie


def _page_door() -> str | None:
    """A Streamlit script thread is a page run, also where app.py did not run first: a widget's
    callback runs before the script, a fragment's rerun runs only the fragment."""
    return "page" if get_script_run_ctx(suppress_warning=True) is not None else None


audit.default_door(_page_door)


@st.cache_resource(show_spinner="Opening the workspace ...")
def _owner(database_path: str) -> Owner:
    owner = Owner.open(load_settings())
    # What is loaded by now (libraries, the owner) lives as long as the process: out of the
    # collector's way, so a full collection during a page run does not walk it every time.
    gc.freeze()
    if owner.generated_admin_password:
        print(f"tuneboard: created the engineer account admin with password "
              f"{owner.generated_admin_password} (shown once)", flush=True)
    return owner


def get_owner() -> Owner:
    """The process-wide Owner (the server's lifespan opened it before the first request; a page run
    without the server, as in AppTest, opens one once); stops the page with a readable error if
    it cannot open."""
    served = running()
    if served is not None:
        return served
    try:
        settings = load_settings()
        return _owner(str(settings.database_path))
    except TuneboardError as exc:
        st.error(str(exc))
        st.stop()
        raise  # unreachable: st.stop raises


def _cookie_token() -> str | None:
    try:
        token = st.context.cookies.get(COOKIE)
    except Exception:  # no browser request behind this run (AppTest)
        return None
    return token if isinstance(token, str) else None


def current_user() -> User | None:
    """The session's account as the database says now (a disabled account is signed out).

    A new browser session (a reload) is signed in again from the login cookie when its
    server-side session is still live.
    """
    username = st.session_state.get(SESSION_USER)
    if not username:
        token = _cookie_token()
        user = resume_session(get_owner().store, token)
        if user is not None:
            st.session_state[SESSION_USER] = user.username
            st.session_state[SESSION_TOKEN] = token
            return user
        return _single_sign_on()
    token = st.session_state.get(SESSION_TOKEN)
    # The server-side session must still be live: logout elsewhere, a password change or a
    # disabled account ends it, and this browser with it. The account is read as it is now.
    user = resume_session(get_owner().store, token) if token else get_user(get_owner().store, username)
    if user is None or user.username != username:
        for key in (SESSION_USER, SESSION_TOKEN):
            st.session_state.pop(key, None)
        return None
    return user


def sso_signed_in() -> bool:
    """Whether this browser holds the identity provider's sign-in (Streamlit's st.login cookie)."""
    if not sso.enabled(get_owner().settings):
        return False
    try:
        return bool(st.user.is_logged_in)
    except Exception:  # noqa: BLE001 - no browser request behind this run (AppTest), or no [auth] secrets
        return False


def _single_sign_on() -> User | None:
    """A browser back from the identity provider (st.login) is signed in as the account its verified
    claims make (core.sso), with a tuneboard session like a password sign-in; a refusal is kept for
    the login page to show, and not retried on every rerun."""
    if SSO_REFUSED in st.session_state or SSO_ENDED in st.session_state or not sso_signed_in():
        return None
    try:
        user = sso.sign_in(get_owner().store, get_owner().settings, st.user.to_dict())
    except TuneboardError as exc:
        st.session_state[SSO_REFUSED] = str(exc)
        return None
    sign_in(user)
    return user


def require_page(action) -> User:
    """For fragments, which rerun without the page: the user as of now, or stop drawing."""
    user = current_user()
    if user is None or (action is not None and not user.may(action)):
        st.warning("Your session ended or your role changed; reload the page.")
        st.stop()
    return user


def sign_in(user: User) -> None:
    token = start_session(get_owner().store, user, get_owner().settings.auth.session_hours)
    st.session_state[SESSION_USER] = user.username
    st.session_state[SESSION_TOKEN] = token
    st.session_state[COOKIE_PENDING] = ("set", token)


def sign_out() -> bool:
    """End the session here; a single sign-on also ends Streamlit's provider cookie (st.logout: the
    browser goes to the provider's end-session page and back), or the next run would sign this
    browser in again. True when that redirect is under way (a rerun now would cancel it)."""
    end_session(get_owner().store, st.session_state.get(SESSION_TOKEN) or _cookie_token())
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[COOKIE_PENDING] = ("clear", "")
    if sso_signed_in():
        st.session_state[SSO_ENDED] = True
        st.logout()
        return True
    return False


def apply_cookie(slot) -> None:
    """Write or clear the login cookie in the browser (Streamlit has no server-side API for it).

    The token is URL-safe base64 made here, never user input, so it is safe inside the script.
    """
    pending = st.session_state.pop(COOKIE_PENDING, None)
    if not pending:
        return
    action, token = pending
    hours = get_owner().settings.auth.session_hours
    value = f"{COOKIE}={token}; path=/; SameSite=Strict; max-age={hours * 3600 if action == 'set' else 0}"
    slot.html(f"<script>document.cookie = {value!r};</script>", unsafe_allow_javascript=True, width="content")
