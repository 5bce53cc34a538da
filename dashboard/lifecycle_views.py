"""The Models page's lifecycle parts: each task's promoted version with its history, rollback,
and promoting a version (core.lifecycle.promotion holds the rules)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.auth import Action
from core.lifecycle import promotion
from core.regression import runs
from dashboard.context import current_user, owner
from dashboard.widgets import VERDICT_BANNER, user_errors


def promoted_versions() -> None:
    """Per task: the promoted version, why and by whom, its gate; rollback (engineer); the history."""
    user, o = current_user(), owner()
    st.subheader("Promoted versions")
    pointers = promotion.promoted(o.store, user)
    if not pointers:
        st.caption("No version is promoted yet: promote one below (or on the Regression page) once its gate passes.")
        return
    gates = runs.latest_gates(o.store, user)
    for task, p in sorted(pointers.items()):
        gate = gates.get(p["current"])
        verdict = f"gate {gate['verdict']}" if gate else "no gate"
        how = "rolled back to" if p["action"] == "rollback" else "promoted"
        st.markdown(f"**{task}** → `{p['current']}` ({verdict}) · {how} {p['created_at']:%Y-%m-%d %H:%M} by "
                    f"{p['promoted_by']}" + (" over a failing gate" if p["override"] else "") + f": {p['reason']}")
        if p["previous"] and user.may(Action.PROMOTE):
            with st.form(f"rollback_{task}", border=False):
                c1, c2 = st.columns([4, 1])
                reason = c1.text_input(f"Reason to roll {task} back to {p['previous']}", key=f"rollback_reason_{task}")
                go = c2.form_submit_button("Roll back")
            if go:
                with user_errors():
                    promotion.rollback(o.store, user, task, reason)
                    st.success(f"{task} rolled back to {p['previous']}.")
                    st.rerun()
    with st.expander("Promotion history"):
        rows = promotion.history(o.store, user)
        st.dataframe(pd.DataFrame(rows)[["created_at", "task", "action", "variant_id", "gate_verdict", "override",
                                         "reason", "promoted_by"]], hide_index=True, width="stretch")


def version_gates(run_id: str, variants: list[dict]) -> None:
    """Each version of a run: its regression gate against the base, and a promote form (engineer)."""
    user, o = current_user(), owner()
    gates = runs.latest_gates(o.store, user)
    current = {p["current"]: task for task, p in promotion.promoted(o.store, user).items()}
    def order(v: dict) -> tuple:  # the run's own version first, then its checkpoints by step
        step = json.loads(v["detail"] or "{}").get("step")
        return (step is not None, step or 0, v["variant_id"])

    for v in sorted(variants, key=order):
        vid = v["variant_id"]
        gate = gates.get(vid)
        if gate is None:
            st.markdown(f"**Regression gate** of `{vid}`: not run yet (Regression page).")
        else:
            VERDICT_BANNER[gate["verdict"]](
                f"Regression gate of `{vid}`: **{gate['verdict']}** against {gate['baseline']} "
                f"(run {gate['set_id']}, {gate['computed_at']:%Y-%m-%d %H:%M}); details on the Regression page.")
        if vid in current:
            st.caption(f"`{vid}` is the promoted version of {current[vid]}.")
        elif user.may(Action.PROMOTE) and v["kind"] in ("adapter", "merged"):
            passing = bool(gate) and gate["verdict"] == "pass"
            with st.form(f"promote_{vid}", border=False):
                c1, c2 = st.columns([4, 1])
                reason = c1.text_input(f"Reason to promote {vid}" + ("" if passing else " despite its gate"),
                                       key=f"promote_reason_{vid}")
                go = c2.form_submit_button("Promote" if passing else "Promote (override)")
            if go:
                with user_errors():
                    promotion.promote(o.store, user, vid, reason, override=not passing)
                    st.success(f"Promoted {vid}.")
                    st.rerun()
