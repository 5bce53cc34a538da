"""Webhooks for engineers: register a URL for events (the signing secret is shown once), the
hooks with a test ping and delete, and the delivery log with each delivery's status. The rules
(who may, what is valid, when a delivery is retried) live in core.webhooks."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import webhooks
from core.auth import Action
from dashboard.context import current_user, get_owner
from dashboard.widgets import plain, user_errors

LOG_COLUMNS = {"created_at": "created", "hook": "hook", "event": "event", "status": "status", "attempts": "attempts",
               "last_code": "last code", "last_error": "last error", "next_attempt_at": "next attempt",
               "delivered_at": "delivered", "delivery_id": "delivery"}


def webhooks_view() -> None:
    """Engineers only: the hooks, a form for a new one, and the delivery log."""
    user, owner = current_user(), get_owner()
    if user is None or not user.may(Action.USERS_MANAGE):
        st.info("Webhooks are managed by engineers.")
        return
    policy = webhooks.POLICY
    st.caption("A webhook POSTs a JSON event to your URL when it happens, signed with the hook's secret "
               "(header X-Tuneboard-Signature: sha256=<hex HMAC-SHA256 of the raw body>). A delivery that does "
               f"not get a 2xx within {policy.timeout_s:g} s is retried {policy.retries} times, waiting twice as "
               f"long each time (from {policy.backoff_s:g} s, at most {policy.max_backoff_s / 60:g} minutes), then "
               "given up. Pending deliveries are kept across a restart.")
    with st.expander("New webhook", expanded=False):
        _new_hook_form()
    hooks = []
    with user_errors():
        hooks = webhooks.list_hooks(owner.store, user)
    if not hooks:
        st.caption("No webhook yet.")
    else:
        table = pd.DataFrame([{"name": h["name"], "url": h["url"], "events": ", ".join(h["events"]),
                               "delivered": h["delivered"], "pending": h["pending"], "gave up": h["gave_up"],
                               "by": h["created_by"], "id": h["hook_id"]} for h in hooks])
        st.dataframe(table, hide_index=True, width="stretch")  # cells are inert text
        names = {h["hook_id"]: f"{h['name']} ({h['hook_id']})" for h in hooks}
        with st.form("webhook_actions", border=False):
            chosen = st.selectbox("Webhook", list(names), format_func=names.get, key="webhook_chosen")
            c1, c2 = st.columns(2)
            ping = c1.form_submit_button("Send a test ping")
            delete = c2.form_submit_button("Delete")
        if ping:
            with user_errors():
                delivery = webhooks.send_test(owner.store, user, chosen)
                if owner.hooks is not None:
                    owner.hooks.wake()
                st.success(f"Queued a ping ({delivery}); its outcome shows in the log below.")
        if delete:
            with user_errors():
                webhooks.delete_hook(owner.store, user, chosen)
                st.success(f"Deleted {plain(names[chosen])}; its pending deliveries were cancelled.")
                st.rerun()
    delivery_log()


@st.fragment(run_every="5s")
def delivery_log() -> None:
    """Every hook's deliveries, newest first, refreshed while the page is open."""
    user, owner = current_user(), get_owner()
    st.markdown("**Delivery log**")
    rows = []
    with user_errors():
        rows = webhooks.deliveries(owner.store, user, limit=200)
    if not rows:
        st.caption("Nothing delivered yet.")
        return
    frame = pd.DataFrame(rows)[list(LOG_COLUMNS)].rename(columns=LOG_COLUMNS)
    st.dataframe(frame, hide_index=True, width="stretch")


def _new_hook_form() -> None:
    user, owner = current_user(), get_owner()
    with st.form("new_webhook", clear_on_submit=True):
        c1, c2 = st.columns([1, 2])
        name = c1.text_input("Name", placeholder="what it is for, e.g. ci", key="webhook_name")
        url = c2.text_input("URL", placeholder="https://ci.example.com/hooks/tuneboard", key="webhook_url")
        events = st.multiselect("Events", list(webhooks.EVENTS), default=list(webhooks.EVENTS),
                                format_func=lambda e: f"{e}: {webhooks.EVENTS[e]}", key="webhook_events")
        go = st.form_submit_button("Create webhook", type="primary")
    if go:
        with user_errors():
            hook, secret = webhooks.create_hook(owner.store, user, url, events, name)
            # Shown in this run only: no session state keeps it, so the next rerun no longer has it.
            st.success(f"Created webhook {plain(hook['name'])} ({hook['hook_id']}). Its signing secret:")
            st.code(secret, language=None)
            st.warning("Copy the secret now: it will not be shown again. Lost it? Delete the hook and create another.")
