"""Log in with a local account."""

import streamlit as st

from core.errors import AuthError
from core.users import authenticate
from dashboard.context import owner, sign_in


def render() -> None:
    st.title("tuneboard")
    st.caption("Is the fine-tuned model better than the one it came from? Sign in to find out.")
    with st.form("login"):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        try:
            user = authenticate(owner().store, username.strip(), password)
        except AuthError as exc:
            st.error(str(exc))
            return
        sign_in(user)
        st.rerun()
