"""Playground (engineer, lead): one prompt, chosen variants, outputs streamed side by side from
the workspace's vLLM model server (a job: the dashboard never hosts an engine)."""

from __future__ import annotations

import streamlit as st

from core.auth import Action
from core.serving import Decoding
from core.serving.playground import (last_server_failure, model_server, playground_variants, start_model_server, stop_model_server,
                                     stream)
from dashboard.context import current_user, get_owner, require_page
from dashboard.widgets import described_input, user_errors


def render() -> None:
    st.title("Playground")
    st.caption("Try one prompt on the base and its adapters. Outputs are shown as plain text.")
    _server_status()
    user, owner = current_user(), get_owner()
    server = model_server(owner.store, owner.jobs, user)
    st.session_state["playground_ready"] = bool(server and server["ready"])
    if not st.session_state["playground_ready"]:
        return
    variants = playground_variants(owner.store, user, owner.settings)
    with st.form("playground"):
        system = st.text_area("System prompt (optional)", height=80)
        prompt = st.text_area("Prompt", height=120, placeholder="Ask something ...")
        chosen = st.multiselect("Variants", [v.variant_id for v in variants],
                                default=[v.variant_id for v in variants if v.kind != "external"][:2],
                                format_func=lambda i: next(v.name for v in variants if v.variant_id == i))
        c1, c2 = st.columns(2)
        temperature = described_input(Decoding, "temperature", 0.0, label="Temperature", where=c1, step=0.1)
        max_tokens = described_input(Decoding, "max_tokens", 256, where=c2)
        go = st.form_submit_button("Run", type="primary")
    if not go:
        return
    if not prompt.strip() or not chosen:
        st.error("Write a prompt and choose at least one variant.")
        return
    messages = ([{"role": "system", "content": system}] if system.strip() else []) + [
        {"role": "user", "content": prompt}]
    decoding = Decoding(temperature=float(temperature), max_tokens=int(max_tokens))
    by_id = {v.variant_id: v for v in variants}
    for col, variant_id in zip(st.columns(len(chosen)), chosen):
        with col:
            st.markdown(f"**{by_id[variant_id].name}**")
            slot, text = st.empty(), ""
            with user_errors():
                for delta in stream(server, by_id[variant_id], messages, decoding):
                    text += delta
                    slot.text(text)  # st.text: model output never renders as markdown or HTML
                if not text:
                    slot.text("(empty)")


@st.fragment(run_every="3s")
def _server_status() -> None:
    user = require_page(Action.GENERATE)
    owner = get_owner()
    server = model_server(owner.store, owner.jobs, user)
    if bool(server and server["ready"]) != st.session_state.get("playground_ready", False):
        st.rerun()  # the server came up or went away: redraw the whole page (the prompt form)
    with user_errors():
        if server is None:
            failure = last_server_failure(owner.store, user)
            if failure:
                st.error("The last model server failed:")
                st.code(failure, language=None)
            st.info("No model server is running. It serves the base and every adapter through vLLM's OpenAI API "
                    "(about a minute to start on a small CPU).")
            if st.button("Start model server", type="primary"):
                start_model_server(owner.store, owner.jobs, owner.settings, user)
                st.rerun()
        elif not server["ready"]:
            st.info(f"Model server {server['job_id']}: {server['stage']} ...")
        else:
            ready = server["ready"]
            c1, c2 = st.columns([4, 1])
            c1.success(f"Model server ready at {ready['url']} · {len(ready['models'])} model(s) at start · "
                       f"started in {ready['start_s']:.0f} s")
            if c2.button("Stop server"):
                stop_model_server(owner.store, owner.jobs, user)
                st.rerun()
