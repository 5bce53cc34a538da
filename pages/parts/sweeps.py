"""The Regression page's checkpoint sweep: start one (engineer), follow it, and read task score vs
general score per checkpoint as a chart and a table (core.regression.sweep does the work)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.auth import Action
from core.regression import suite, sweep
from core.training import list_runs
from dashboard.context import current_user, get_owner
from dashboard.widgets import user_errors

GATE_COLORS = alt.Scale(domain=["base", "pass", "inconclusive", "fail"],
                        range=["#6b7280", "#15803d", "#b45309", "#b91c1c"])


def render() -> None:
    user, owner = current_user(), get_owner()
    st.caption("Longer training usually buys task skill with general skill. A sweep answers the suite and the "
               "run's test split with the base and each checkpoint the run kept (`keep_checkpoints`), so you can "
               "pick an earlier checkpoint that keeps general skills; a checkpoint is promoted like any version.")
    if user.may(Action.GENERATE):
        with st.expander("Start a sweep", expanded=not sweep.sweeps(owner.store, user)):
            _start_form()
    _live()
    done = sweep.sweeps(owner.store, user)
    if not done:
        st.info("No checkpoint sweep yet.")
        return
    sweep_id = st.selectbox("Sweep", [s["sweep_id"] for s in done], key="sweep_pick",
                            format_func=lambda i: next(f"{s['run_id']} · steps "
                                                       f"{', '.join(v.rsplit('@', 1)[-1] for v in s['variants'])} · "
                                                       f"{s['status']} · {s['created_at']:%Y-%m-%d %H:%M}"
                                                       for s in done if s["sweep_id"] == i))
    chosen = next(s for s in done if s["sweep_id"] == sweep_id)
    if chosen["status"] != "ready":
        (st.error if chosen["status"] == "failed" else st.info)(
            f"Sweep {sweep_id} is {chosen['status']}: {chosen['why']}.")
        if chosen["status"] == "failed" and chosen["task_status"] == "succeeded" and user.may(Action.GENERATE):
            if st.button("Score the test split again", key="sweep_rescore"):
                with user_errors():
                    job_id = sweep.retry_scoring(owner.store, owner.jobs, owner.settings, user, sweep_id)
                    st.success(f"Scoring started ({job_id}).")
        return
    with user_errors():
        frame = sweep.table(owner.store, user, owner.settings, sweep_id)
        _chart(frame)
        line = sweep.advice(frame)
        if line:
            st.markdown(f"**{line}**")
        _table(frame)


def _start_form() -> None:
    user, owner = current_user(), get_owner()
    finished = [r for r in list_runs(owner.store, user) if r["status"] not in ("queued", "running")]
    kept = {r["job_id"]: sweep.checkpoints(owner.store, user, r["job_id"]) for r in finished}
    runs = [r["job_id"] for r in finished if kept[r["job_id"]]]
    if not runs:
        st.info("No stopped training run has kept checkpoints (they are saved every `eval_every` steps; "
                "`keep_checkpoints` says how many stay).")
        return
    run_id = st.selectbox("Training run", runs, key="sweep_run",
                          format_func=lambda i: f"{i} · {len(kept[i])} checkpoints")
    with st.form("sweep_start", border=False):
        steps = st.multiselect("Checkpoints (steps)", [c["step"] for c in kept[run_id]],
                               default=[c["step"] for c in kept[run_id]],
                               format_func=lambda s: f"step {s}" + (" (best validation loss)" if any(
                                   c["best"] and c["step"] == s for c in kept[run_id]) else ""))
        c1, c2 = st.columns(2)
        items = c1.number_input("Suite items per category (0: all)", min_value=0, value=0, step=5,
                                help=f"The whole suite is {len(suite.items())} items; fewer is quicker, but gates "
                                     "on too few items read inconclusive.")
        prompts = c2.number_input("Test-split prompts (0: all)", min_value=0, value=0, step=10)
        go = st.form_submit_button("Start the sweep", type="primary")
    if go:
        with user_errors():
            if not steps:
                st.error("Checkpoints: choose at least one step.")
                return
            sweep_id = sweep.start_sweep(owner.store, owner.jobs, owner.settings, user, run_id, list(steps), int(items) or None,
                                         int(prompts) or None)
            st.success(f"Started {sweep_id}: {len(steps)} checkpoints and the base answer the suite and the test "
                       "split; the test split is scored when it finishes.")


@st.fragment(run_every="3s")
def _live() -> None:
    user, owner = current_user(), get_owner()
    active = [s for s in sweep.sweeps(owner.store, user) if s["status"] in ("running", "scoring")]
    for s in active:
        st.info(f"Sweep {s['sweep_id']} of {s['run_id']}: {s['why']} (follow the jobs on the Generations page).")
    if st.session_state.get("_sweeps_live") and not active:
        st.session_state["_sweeps_live"] = False
        st.rerun()  # a sweep just finished: redraw with its results
    st.session_state["_sweeps_live"] = bool(active)


def _chart(frame: pd.DataFrame) -> None:
    data = frame.assign(label=[("base" if v == "base" else f"step {s}") for v, s in zip(frame["variant_id"],
                                                                                          frame["step"])],
                        gate_shown=[g or "base" for g in frame["gate"]]).dropna(subset=["task", "general"])
    metric = frame["metric"].iloc[0]
    x = alt.X("general:Q", title="general: suite accuracy", scale=alt.Scale(zero=False))
    y = alt.Y("task:Q", title=f"task: {metric}", scale=alt.Scale(zero=False))
    base = alt.Chart(data)
    path = base.transform_filter("datum.variant_id != 'base'").mark_line(color="#9ca3af").encode(
        x=x, y=y, order="step:Q")
    points = base.mark_point(filled=True, size=110).encode(
        x=x, y=y, color=alt.Color("gate_shown:N", title="gate", scale=GATE_COLORS),
        tooltip=["label", "variant_id", alt.Tooltip("task:Q", format=".3f"), alt.Tooltip("general:Q", format=".3f"),
                 "gate"])
    xerr = base.mark_rule(opacity=0.5).encode(x="general_lo:Q", x2="general_hi:Q", y=y)
    yerr = base.mark_rule(opacity=0.5).encode(y="task_lo:Q", y2="task_hi:Q", x=x)
    labels = base.mark_text(dx=10, dy=-10, align="left").encode(x=x, y=y, text="label:N")
    st.altair_chart((path + xerr + yerr + points + labels).properties(
        title="Task score vs general score per checkpoint (bars: confidence intervals)"), width="stretch")


def _table(frame: pd.DataFrame) -> None:
    shown = frame[["variant_id", "step", "best", "task", "task_lo", "task_hi", "general", "general_lo", "general_hi",
                   "items", "gate"]]
    metric = frame["metric"].iloc[0]
    st.dataframe(shown, hide_index=True, width="stretch",
                 column_config={"variant_id": "version", "best": st.column_config.CheckboxColumn("best val. loss"),
                                "task": st.column_config.NumberColumn(metric, format="%.3f"),
                                "task_lo": st.column_config.NumberColumn("low", format="%.3f"),
                                "task_hi": st.column_config.NumberColumn("high", format="%.3f"),
                                "general": st.column_config.NumberColumn("suite accuracy", format="%.3f"),
                                "general_lo": st.column_config.NumberColumn("low", format="%.3f"),
                                "general_hi": st.column_config.NumberColumn("high", format="%.3f")})
