"""Users (engineer): accounts, roles, enable/disable, password resets."""

import pandas as pd
import streamlit as st

from core.auth import ROLES
from core.users import create_user, generate_password, list_users, reset_password, set_disabled, set_role
from dashboard.context import current_user, owner
from dashboard.widgets import user_errors


def render() -> None:
    user, o = current_user(), owner()
    min_len = o.settings.auth.min_password_length
    st.title("Users")
    accounts = []
    with user_errors():
        accounts = list_users(o.store, user)
    if not accounts:
        return
    st.dataframe(pd.DataFrame(accounts), hide_index=True, width="stretch")

    left, right = st.columns(2)
    with left, st.form("add_user", clear_on_submit=True):
        st.subheader("Add an account")
        username = st.text_input("Username")
        role = st.selectbox("Role", ROLES)
        password = st.text_input("Password (empty: generate one)", type="password")
        if st.form_submit_button("Add", type="primary"):
            chosen = password or generate_password()
            with user_errors():
                create_user(o.store, user, username.strip(), chosen, role, min_len)
                st.success(f"Created {username} ({role})." + ("" if password else f" Password: `{chosen}` "
                                                              "(shown once; pass it on securely)."))
    with right, st.form("change_user"):
        st.subheader("Change an account")
        names = [a["username"] for a in accounts]
        target = st.selectbox("Account", names)
        new_role = st.selectbox("New role", ["(unchanged)", *ROLES])
        state = st.radio("Access", ["(unchanged)", "enable", "disable"], horizontal=True)
        reset = st.checkbox("Reset the password (a new one is generated)")
        if st.form_submit_button("Apply"):
            with user_errors():
                if new_role != "(unchanged)":
                    set_role(o.store, user, target, new_role)
                if state != "(unchanged)":
                    set_disabled(o.store, user, target, state == "disable")
                if reset:
                    fresh = generate_password()
                    reset_password(o.store, user, target, fresh, min_len)
                    st.success(f"New password for {target}: `{fresh}` (shown once).")
                st.success(f"Updated {target}.")
