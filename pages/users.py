"""Users (engineer): accounts, roles, enable/disable, password resets; the audit trail; webhooks."""

from datetime import datetime, time

import pandas as pd
import streamlit as st

from core import audit
from core.auth import ROLES
from core.users import create_user, generate_password, list_users, reset_password, set_disabled, set_role
from dashboard.context import current_user, get_owner
from dashboard.widgets import user_errors
from pages.parts.webhooks import webhooks_view


def render() -> None:
    st.title("Users")
    accounts_tab, audit_tab, hooks_tab = st.tabs(["Accounts", "Audit trail", "Webhooks"])
    with accounts_tab:
        _accounts()
    with audit_tab:
        audit_trail(current_user())
    with hooks_tab:
        webhooks_view()


def _accounts() -> None:
    user, owner = current_user(), get_owner()
    min_len = owner.settings.auth.min_password_length
    accounts = []
    with user_errors():
        accounts = list_users(owner.store, user)
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
                create_user(owner.store, user, username.strip(), chosen, role, min_len)
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
                    set_role(owner.store, user, target, new_role)
                if state != "(unchanged)":
                    set_disabled(owner.store, user, target, state == "disable")
                if reset:
                    fresh = generate_password()
                    reset_password(owner.store, user, target, fresh, min_len)
                    st.success(f"New password for {target}: `{fresh}` (shown once).")
                st.success(f"Updated {target}.")


def audit_trail(user) -> None:
    """Who did what, when, and through which door; filtered, shown as inert cells, exported as CSV."""
    owner = get_owner()
    who_col, action_col, door_col, since_col, limit_col = st.columns([2, 2, 1, 2, 1])
    who = who_col.selectbox("Who", ["(anyone)", *audit.actors(owner.store, user)])
    action = action_col.text_input("Action starts with", placeholder="e.g. users. or train")
    door = door_col.selectbox("Door", ["(any)", *audit.DOORS])
    since = since_col.date_input("Since", value=None)
    limit = limit_col.number_input("At most", min_value=10, max_value=100_000, value=500, step=100)
    rows = []
    with user_errors():
        rows = audit.entries(owner.store, user, limit=int(limit), who=None if who == "(anyone)" else who,
                             action=action.strip() or None, door_name=None if door == "(any)" else door,
                             since=datetime.combine(since, time.min) if since else None)
    if not rows:
        st.caption("No entries match.")
        return
    st.dataframe(pd.DataFrame(rows, columns=audit.COLUMNS), hide_index=True, width="stretch")  # inert cells
    st.download_button("Download CSV", audit.to_csv(rows), file_name="tuneboard-audit.csv", mime="text/csv",
                       icon=":material/download:")
