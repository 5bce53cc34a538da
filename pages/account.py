"""Your account: change your own password; your personal API tokens."""

import pandas as pd
import streamlit as st

from core import sso, tokens
from core.users import change_own_password
from dashboard.context import current_user, get_owner, sign_in
from dashboard.widgets import plain, user_errors

TOKEN_COLUMNS = {"name": "name", "token_id": "id", "created_at": "created", "expires_at": "expires",
                 "last_used_at": "last used", "active": "active"}


def render() -> None:
    user = current_user()
    st.title("Account")
    st.write(f"**{user.username}** · role {user.role.value}")
    if sso.is_sso_account(get_owner().store, user.username):
        st.caption(f"You sign in with {plain(get_owner().settings.sso.label)}: your password and role are managed there.")
    else:
        change_password(user)
    api_tokens(user)


def change_password(user) -> None:
    with st.form("change_password", clear_on_submit=True):
        current = st.text_input("Current password", type="password")
        new = st.text_input("New password", type="password")
        again = st.text_input("New password again", type="password")
        if st.form_submit_button("Change password"):
            if new != again:
                st.error("The two new passwords differ.")
            else:
                with user_errors():
                    change_own_password(get_owner().store, user, current, new,
                                        get_owner().settings.auth.min_password_length)
                    sign_in(user)  # the change ended every session, this one included: start a new one
                    st.success("Password changed. Other browsers signed in as you were signed out.")


def api_tokens(user) -> None:
    """Create (shown once), list and revoke one's own tokens for /api/v1."""
    owner = get_owner()
    auth = owner.settings.auth
    st.subheader("API tokens")
    st.caption("A token lets a script, a CI pipeline or a notebook act as you through the HTTP API "
               "(`Authorization: Bearer <token>`), with your role. Only its hash is stored.")
    with st.form("new_token", clear_on_submit=True):
        name = st.text_input("Token name", placeholder="what it is for, e.g. ci or notebook")
        days = st.number_input("Days it lives", min_value=1, max_value=auth.max_token_days, value=auth.token_days,
                               step=1)
        if st.form_submit_button("Create token"):
            with user_errors():
                record, token = tokens.create_token(owner.store, user, name, int(days), auth.max_token_days)
                # Shown in this run only: no session state keeps it, so the next rerun no longer has it.
                st.success(f"Created token {plain(record['name'])} ({record['token_id']}), expires "
                           f"{record['expires_at']:%Y-%m-%d}.")
                st.code(token, language=None)
                st.warning("Copy it now: it will not be shown again. Lost it? Revoke it and create another.")
    mine = []
    with user_errors():
        mine = tokens.list_tokens(owner.store, user)
    if not mine:
        st.caption("You have no tokens yet.")
        return
    listing = st.empty()  # drawn after the revoke form, so a revocation shows in this same run
    active = {t["token_id"]: f"{t['name']} ({t['token_id']})" for t in mine if t["active"]}
    if active:
        with st.form("revoke_token"):
            chosen = st.selectbox("Token to revoke", list(active), format_func=active.get)
            if st.form_submit_button("Revoke token"):
                with user_errors():
                    tokens.revoke_token(owner.store, user, chosen)
                    st.success(f"Revoked {chosen}; it stops working at once.")
                    mine = tokens.list_tokens(owner.store, user)
    table = pd.DataFrame(mine)[list(TOKEN_COLUMNS)].rename(columns=TOKEN_COLUMNS)
    listing.dataframe(table, hide_index=True, width="stretch")  # cells are inert text
