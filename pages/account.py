"""Your account: change your own password."""

import streamlit as st

from core.users import change_own_password
from dashboard.context import current_user, owner, sign_in
from dashboard.widgets import user_errors


def render() -> None:
    user = current_user()
    st.title("Account")
    st.write(f"**{user.username}** · role {user.role.value}")
    with st.form("change_password", clear_on_submit=True):
        current = st.text_input("Current password", type="password")
        new = st.text_input("New password", type="password")
        again = st.text_input("New password again", type="password")
        if st.form_submit_button("Change password"):
            if new != again:
                st.error("The two new passwords differ.")
            else:
                with user_errors():
                    change_own_password(owner().store, user, current, new,
                                        owner().settings.auth.min_password_length)
                    sign_in(user)  # the change ended every session, this one included: start a new one
                    st.success("Password changed. Other browsers signed in as you were signed out.")
