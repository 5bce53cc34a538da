"""The one Owner of this server process and the signed-in user of this session."""

from __future__ import annotations

import streamlit as st

from core.auth import User
from core.config import load_settings
from core.errors import TuneboardError
from core.owner import Owner
from core.users import get_user

SESSION_USER = "tb_username"


@st.cache_resource(show_spinner="Opening the workspace ...")
def _owner(database_path: str) -> Owner:
    owner = Owner.open(load_settings())
    if owner.generated_admin_password:
        print(f"tuneboard: created the engineer account admin with password "
              f"{owner.generated_admin_password} (shown once)", flush=True)
    return owner


def owner() -> Owner:
    """The process-wide Owner; stops the page with a readable error if it cannot open."""
    try:
        settings = load_settings()
        return _owner(str(settings.database_path))
    except TuneboardError as exc:
        st.error(str(exc))
        st.stop()
        raise  # unreachable: st.stop raises


def current_user() -> User | None:
    """The session's account as the database says now (a disabled account is signed out)."""
    username = st.session_state.get(SESSION_USER)
    if not username:
        return None
    user = get_user(owner().store, username)
    if user is None:
        st.session_state.pop(SESSION_USER, None)
    return user


def sign_in(user: User) -> None:
    st.session_state[SESSION_USER] = user.username


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
