"""Judges (engineer): define an LLM judge from a variant and a pairwise prompt, run it over a pair
set (both orders, as a job), read how it agrees with the experts, and compare prompts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import serving
from core.judge import judges, prompts
from core.review import pairs
from dashboard.context import current_user, get_owner
from dashboard.widgets import job_progress, user_errors
from pages.parts import judges as parts

OWN = "(my own prompt)"


def render() -> None:
    user, owner = current_user(), get_owner()
    st.title("Judges")
    st.caption("An LLM judge pre-screens blind pairs only as far as it is measured against your own experts: every "
               "pair is judged in both orders, and its agreement with the experts is shown beside theirs.")
    defined = judges.list_judges(owner.store, user)
    with st.expander("New judge", expanded=not defined):
        _new_judge()
    if not defined:
        st.info("No judge yet.")
        return
    st.dataframe(pd.DataFrame(defined)[["name", "variant_id", "prompt_name", "prompt_version", "created_by"]],
                 hide_index=True, width="stretch")
    sets = pairs.list_pair_sets(owner.store, user)
    if not sets:
        st.info("No pair set to judge yet: create one on the Review page.")
        return
    pair_set = st.selectbox("Pair set", [s["pair_set_id"] for s in sets], key="judge_set",
                            format_func=lambda i: next(f"{s['name']} · {i}" for s in sets if s["pair_set_id"] == i))
    with st.form("run_judge", border=False):
        c1, c2 = st.columns(2)
        judge = c1.selectbox("Judge", [j["judge_id"] for j in defined],
                             format_func=lambda i: next(j["name"] for j in defined if j["judge_id"] == i))
        path = c2.selectbox("Serving path", ["auto", *serving.PATHS], help=serving.PATH_HELP)
        if st.form_submit_button("Judge every pair in both orders", type="primary"):
            with user_errors():
                set_id = judges.run_judge(owner.store, owner.jobs, owner.settings, user, judge, pair_set, path)
                st.success(f"Started {set_id}.")
    runs_tab, align_tab = st.tabs(["Runs", "Compare prompts"])
    with runs_tab:
        _runs(pair_set)
    with align_tab:
        with user_errors():
            _alignment(pair_set)


def _new_judge() -> None:
    user, owner = current_user(), get_owner()
    variants = [v.variant_id for v in serving.available_variants(owner.store, user, owner.settings.base_model)
                if v.kind != "prompted"]
    choice = st.selectbox("Prompt", [*prompts.BUILT_IN, OWN], key="judge_prompt")
    if choice in prompts.BUILT_IN:
        st.caption(prompts.BUILT_IN[choice].system)
    with st.form("new_judge", border=False):
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", placeholder="base, balanced prompt")
        variant = c2.selectbox("Answered by", variants, help="The model variant that judges (an endpoint contender "
                               "works too).")
        own_name, system, template = choice, "", ""
        if choice == OWN:
            own_name = st.text_input("Prompt name", placeholder="my-prompt")
            system = st.text_area("System message", placeholder="You compare two responses ...")
            template = st.text_area("Template", value=prompts.BUILT_IN["balanced"].template, height=220,
                                    help="Place {instructions}, {conversation}, {first} and {second}; ask for a last "
                                         "line 'Verdict: 1', 'Verdict: 2' or 'Verdict: tie'.")
        if st.form_submit_button("Define judge"):
            with user_errors():
                judge_id = judges.define_judge(owner.store, user, name, variant, own_name, system, template)
                st.success(f"Defined {judge_id}.")
                st.rerun()


def _runs(pair_set: str) -> None:
    user, owner = current_user(), get_owner()
    found = judges.runs(owner.store, user, pair_set)
    if not found:
        st.info("No judge has run over this pair set yet.")
        return
    run = st.selectbox("Run", [r["set_id"] for r in found], key="judge_run",
                       format_func=lambda i: next(f"{r['source']['judge']} · {r['status']} · {i}" for r in found
                                                  if r["set_id"] == i))
    record = next(r for r in found if r["set_id"] == run)
    if record["status"] in ("queued", "running"):
        events = owner.jobs.history(user, run, "progress")
        stage = next((e["stage"] for e in reversed(events) if e.get("stage")), "both orders of every pair")
        job_progress("Judging", run, {"stage": stage, "done": record["n_outputs"], "total": record["n_prompts"]})
        st.button("Refresh", key="judge_refresh")
        return
    if record["status"] != "succeeded":
        st.error(f"{run} {record['status']}: {record['error'] or ''} (resume it on the Generations page)")
        return
    with user_errors():
        parts.report(judges.against_experts(owner.store, user, run))
        st.subheader("The judge's ladder (judge votes only, apart from the experts')")
        parts.ladder(run)
        with st.expander("Every verdict"):
            parts.verdicts(run)


def _alignment(pair_set: str) -> None:
    user, owner = current_user(), get_owner()
    got = judges.alignment(owner.store, user, pair_set)
    if not got["runs"]:
        st.info("Run two or more judges (for example the same model with different prompts) over this pair set "
                "to compare them.")
        return
    if got["chosen"] is None:
        st.info(f"{got['voted_pairs']} pairs of this set have expert votes; {got['needed']} more are needed before "
                "prompts are compared (half of the voted pairs choose, the other half report).")
        return
    rows = [{"judge": name, "agreement, choosing half": parts._pct(p["calibration"]),
             "agreement, reported half": parts._pct(p["report"]["ties_in"]),
             "chosen": name == got["chosen"]} for name, p in got["prompts"].items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(f"Chosen on {got['calibration_pairs']} voted pairs; the reported figures rest on the other "
               f"{got['report_pairs']} only, so the choice did not see them.")
