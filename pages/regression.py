"""Regression (engineer, lead): the general-capability probe suite, base vs fine-tune per
category with intervals, the gate verdict with its reasons, the items that flipped from right
to wrong, promotion (a passing gate, or an engineer's override with a written reason), and the
checkpoint sweep (task score vs general score per checkpoint, pages/parts/sweeps.py)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core import serving
from core.auth import Action
from core.regression import gate as gates
from core.regression import runs, suite
from dashboard.context import current_user, get_owner
from dashboard.widgets import VERDICT_BANNER, user_errors
from pages.parts import lifecycle, sweeps
from pages.parts.harness import harness_view


def render() -> None:
    st.title("Regression")
    st.caption(f"Fine-tuning can make a model forget what it could do. The {suite.SUITE_NAME} suite "
               f"v{suite.SUITE_VERSION} ({len(suite.items())} items written by this project, scored by rules) "
               "is answered by the base and the fine-tune, greedy; each category is compared item by item.")
    gate_tab, sweep_tab, harness_tab = st.tabs(["Gate", "Checkpoint sweep", "lm-eval harness"])
    with gate_tab:
        _gate_view()
    with sweep_tab:
        sweeps.render()
    with harness_tab:
        harness_view()


def _gate_view() -> None:
    user, owner = current_user(), get_owner()
    if user.may(Action.GENERATE):
        with st.expander("Run the suite", expanded=not runs.runs(owner.store, user)):
            _run_form()
    finished = [r for r in runs.runs(owner.store, user) if r["status"] == "succeeded"]
    for r in runs.runs(owner.store, user):
        if r["status"] in ("queued", "running"):
            st.info(f"{r['name']} ({r['set_id']}) is {r['status']}; follow it on the Generations page.")
    if not finished:
        st.info("No finished suite run yet.")
        return
    c1, c2 = st.columns(2)
    set_id = c1.selectbox("Run", [r["set_id"] for r in finished], key="regression_run",
                          format_func=lambda i: next(f"{r['name']} · {r['created_at']:%Y-%m-%d %H:%M}"
                                                     for r in finished if r["set_id"] == i))
    run = next(r for r in finished if r["set_id"] == set_id)
    tuned = [v["variant_id"] for v in run["variants"] if v["variant_id"] != "base"]
    variant = c2.selectbox("Fine-tuned version", tuned, key="regression_variant")
    with user_errors():
        gate = runs.judge(owner.store, user, set_id, variant, owner.settings.regression)
        _verdict(gate)
        _categories(gate)
        _flips(set_id, variant)
        lifecycle.gate_promotion(variant, gate)


def _run_form() -> None:
    user, owner = current_user(), get_owner()
    choices = [v for v in serving.available_variants(owner.store, user, owner.settings.base_model) if v.kind != "base"]
    if not choices:
        st.info("No fine-tuned version yet: train one on the Train page.")
        return
    with st.form("suite_run", border=False):
        picked = st.multiselect("Fine-tuned versions (each is compared with the base)", [v.variant_id for v in choices],
                                default=[choices[0].variant_id],
                                format_func=lambda i: next(f"{v.name} ({v.kind})" for v in choices if v.variant_id == i))
        go = st.form_submit_button("Run the suite", type="primary")
    if go:
        with user_errors():
            set_id = runs.start_run(owner.store, owner.jobs, owner.settings, user, picked)
            st.success(f"Started {set_id}: {len(suite.items())} items x {len(picked) + 1} versions.")


def _verdict(gate: dict) -> None:
    detail = gate["detail"]
    VERDICT_BANNER[gate["verdict"]](f"Gate: **{gate['verdict']}** for {gate['variant_id']} against {gate['baseline']}.")
    for reason in detail["reasons"]:
        if not reason.startswith("all items (pooled)"):  # the pooled verdict has its own line, whatever it is
            st.text(f"• {reason}")
    for line in gates.headline(detail):
        st.text(line)
    if detail["advice"]:
        st.markdown("**What usually helps:** " + "; ".join(detail["advice"]) + ".")
    overall = detail["overall"]
    st.caption(f"All {overall['n']} items: base {100 * overall['base_acc']:.1f}%, fine-tune "
               f"{100 * overall['tuned_acc']:.1f}%. Each question is one-sided (did it fall by more than its limit?), "
               f"categories corrected together (Holm). Gate computed {gate['computed_at']:%Y-%m-%d %H:%M} by "
               f"{gate['computed_by']}.")


def _categories(gate: dict) -> None:
    cats = pd.DataFrame(gate["detail"]["categories"])
    long = pd.concat([cats.assign(version="base", acc=cats["base_acc"], lo=cats["base_lo"], hi=cats["base_hi"]),
                      cats.assign(version=gate["variant_id"], acc=cats["tuned_acc"], lo=cats["tuned_lo"],
                                  hi=cats["tuned_hi"])])
    base = alt.Chart(long).encode(y=alt.Y("category:N", title=None), yOffset="version:N",
                                  color=alt.Color("version:N", title=None))
    chart = (base.mark_rule(strokeWidth=3).encode(x=alt.X("lo:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
                                                 x2="hi:Q")
             + base.mark_point(filled=True, size=80).encode(x="acc:Q", tooltip=["category", "version", "acc", "lo",
                                                                                "hi", "n"]))
    st.altair_chart(chart, width="stretch")
    shown = ["category", "n", "base_acc", "tuned_acc", "drop_points", "max_drop_points", "right_to_wrong",
             "wrong_to_right", "p_adjusted", "detectable_drop_points", "verdict"]
    table = cats.reindex(columns=shown)  # a gate of an older rule lacks the newer columns
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"base_acc": st.column_config.NumberColumn(format="%.3f"),
                                "tuned_acc": st.column_config.NumberColumn(format="%.3f"),
                                "drop_points": st.column_config.NumberColumn("drop (points)", format="%.1f"),
                                "max_drop_points": st.column_config.NumberColumn("limit", format="%.1f"),
                                "p_adjusted": st.column_config.NumberColumn("p (drop > limit, Holm)", format="%.3g"),
                                "detectable_drop_points": st.column_config.NumberColumn("detectable at 80%",
                                                                                        format="%.1f")})


def _flips(set_id: str, variant: str) -> None:
    user, owner = current_user(), get_owner()
    lost = runs.flips(owner.store, user, set_id, variant)
    st.subheader(f"Right → wrong ({len(lost)})")
    if lost.empty:
        st.caption("No item the base answered right was answered wrong by the fine-tune.")
        return
    category = st.selectbox("Category", ["all"] + sorted(lost["category"].unique()), key="flips_category")
    shown = lost if category == "all" else lost[lost["category"] == category]
    st.dataframe(shown, hide_index=True, width="stretch")  # cells are plain text: model output stays inert
