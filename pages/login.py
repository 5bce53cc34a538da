"""Log in: with a local account, or with the identity provider where single sign-on is set up."""

import streamlit as st

from core import sso
from core.errors import AuthError
from core.users import authenticate
from dashboard.context import SSO_REFUSED, get_owner, sign_in, sso_signed_in
from dashboard.widgets import plain


def render() -> None:
    st.title("tuneboard")
    st.caption("Is the fine-tuned model better than the one it came from? Sign in to find out.")
    settings = get_owner().settings
    if sso.enabled(settings):
        single_sign_on(settings.sso.label)
    with st.form("login"):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        try:
            user = authenticate(get_owner().store, username.strip(), password)
        except AuthError as exc:
            st.error(str(exc))
            return
        sign_in(user)
        st.rerun()


def single_sign_on(label: str) -> None:
    refused = st.session_state.get(SSO_REFUSED)
    if refused and sso_signed_in():
        st.error(plain(refused))
        if st.button(f"Sign out of {label} to use another account", key="sso_logout"):
            st.session_state.pop(SSO_REFUSED, None)
            st.logout()
        return
    if st.button(f"Sign in with {label}", type="primary", key="sso_login", icon=":material/key:"):
        st.session_state.pop(SSO_REFUSED, None)
        st.login()
    st.caption("Or with a local account:")
