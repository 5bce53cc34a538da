"""The lifecycle parts of the Models page (each task's promoted version with its history, rollback
and promotion; retrain candidates beside it with the decision; schedules and pipelines) and the
Regression page's promotion form. The rules live in core.lifecycle."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.auth import Action
from core.datasets import list_versions
from core.lifecycle import contenders, deploy, pipelines, promotion, schedules
from core.lifecycle.pipelines import PipelineOptions
from core.lifecycle.progress import readable_bytes
from core.regression import gate as gate_rules
from core.regression import runs
from dashboard.context import current_user, get_owner, require_page
from dashboard.widgets import VERDICT_BANNER, job_progress, plain, user_errors


def promoted_versions() -> None:
    """Per task: the promoted version, why and by whom, its gate; rollback (engineer); the history."""
    user, owner = current_user(), get_owner()
    st.subheader("Promoted versions")
    pointers = promotion.promoted(owner.store, user)
    if not pointers:
        st.caption("No version is promoted yet: promote one in the Training runs tab (or on the Regression page) "
                   "once its gate passes.")
        return
    gates = runs.latest_gates(owner.store, user)
    for task, p in sorted(pointers.items()):
        gate = gates.get(p["current"])
        verdict = f"gate {gate['verdict']}" if gate else "no gate"
        how = "rolled back to" if p["action"] == "rollback" else "promoted"
        st.markdown(f"**{task}** → `{p['current']}` ({verdict}) · {how} {p['created_at']:%Y-%m-%d %H:%M} by "
                    f"{p['promoted_by']}" + (" over a failing gate" if p["override"] else "")
                    + f": {plain(p['reason'])}")
        if p["previous"] and user.may(Action.PROMOTE):
            with st.form(f"rollback_{task}", border=False):
                c1, c2 = st.columns([4, 1])
                reason = c1.text_input(f"Reason to roll {task} back to {p['previous']}", key=f"rollback_reason_{task}")
                go = c2.form_submit_button("Roll back")
            if go:
                with user_errors():
                    promotion.rollback(owner.store, user, task, reason)
                    st.success(f"{task} rolled back to {p['previous']}.")
                    st.rerun()
    with st.expander("Promotion history"):
        rows = promotion.history(owner.store, user)
        st.dataframe(pd.DataFrame(rows)[["created_at", "task", "action", "variant_id", "gate_verdict", "override",
                                         "reason", "promoted_by"]], hide_index=True, width="stretch")


def version_gates(run_id: str, variants: list[dict]) -> None:
    """Each version of a run: its regression gate against the base, and a promote form (engineer)."""
    user, owner = current_user(), get_owner()
    gates = runs.latest_gates(owner.store, user)
    current = {p["current"]: task for task, p in promotion.promoted(owner.store, user).items()}
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
            for line in gate_rules.headline(json.loads(gate["detail"])):
                st.caption(line)
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
                    promotion.promote(owner.store, user, vid, reason, override=not passing)
                    st.success(f"Promoted {vid}.")
                    st.rerun()


def gate_promotion(variant: str, gate: dict) -> None:
    """The Regression page's promotion of the version it shows: a passing gate, or an override with
    a reason; then the version's promotion history."""
    user, owner = current_user(), get_owner()
    if user.may(Action.PROMOTE):
        tasks = list(dict.fromkeys(v["dataset"] for v in list_versions(owner.store, user)))
        own = promotion.task_of(owner.store, variant)
        if own is None and not tasks:
            st.info("To promote this version, import the dataset (task) it serves on the Data page first: "
                    "each task has one promoted version.")
            return
        with st.form("promote", border=False):
            passing = gate["verdict"] == "pass"
            task = st.selectbox("Task it serves", tasks, index=tasks.index(own) if own in tasks else 0,
                                disabled=own is not None, key="promote_task",
                                help="Each task (dataset) has one promoted version; exports and deployment use it.")
            reason = st.text_area("Reason" + (" (kept on record)" if passing else " for overriding the gate "
                                                                             "(required, kept on record)"),
                                  key="promote_reason")
            go = st.form_submit_button("Promote" if passing else "Promote despite the gate",
                                       type="primary" if passing else "secondary")
        if go:
            with user_errors():
                promotion.promote(owner.store, user, variant, reason, override=not passing, gate_id=gate["gate_id"],
                                  task=own or task)
                st.success(f"Promoted {variant}.")
    history = [p for p in promotion.history(owner.store, user) if p["variant_id"] == variant]
    if history:
        st.caption("Promotions: " + "; ".join(
            f"{p['created_at']:%Y-%m-%d %H:%M} {p['action']} for {p['task']} by {p['promoted_by']} "
            f"(gate {p['gate_verdict'] or 'none'}" + (", override" if p["override"] else "")
            + f"): {plain(p['reason'])}"
            for p in history))


def candidates() -> None:
    """Each retrain's candidate beside the promoted version: task metric, gate, blind pairs; the decision."""
    user, owner = current_user(), get_owner()
    waiting = [p for p in pipelines.pipelines(owner.store, user) if p["status"] in ("ready", "running", "failed")]
    st.subheader("Candidates")
    if not waiting:
        st.caption("No retrain is waiting for a decision. Schedule one (or run one now) in the Retraining tab.")
        return
    for p in waiting[:5]:
        with st.container(border=True):
            _candidate(p)


def _candidate(p: dict) -> None:
    user, owner = current_user(), get_owner()
    title = f"**{p['task']}**: candidate `{p['candidate'] or p['train_job']}` (data version `{p['dataset_version']}`)"
    st.markdown(title + f" · {p['pipeline_id']} · {p['status']}")
    if p["status"] != "ready":
        (st.error if p["status"] == "failed" else st.info)(p["why"] + ".")
        return
    shown = pipelines.summary(owner.store, user, owner.settings, p)
    if shown["metric"]:
        rows = pd.DataFrame(shown["scores"])
        role = {p["candidate"]: "candidate", p["promoted"]: "promoted", "base": "base"}
        rows["role"] = [role.get(v, "contender") for v in rows["variant"]]
        st.dataframe(rows[["role", "label", "mean", "lo", "hi", "n"]], hide_index=True, width="stretch",
                     column_config={"mean": st.column_config.NumberColumn(shown["metric"], format="%.3f"),
                                    "lo": st.column_config.NumberColumn("low", format="%.3f"),
                                    "hi": st.column_config.NumberColumn("high", format="%.3f")})
    gate = shown["gate"]
    if gate:
        VERDICT_BANNER[gate["verdict"]](
            f"Regression gate of the candidate: **{gate['verdict']}** (all items: base {100 * gate['base_acc']:.1f}% "
            f"→ candidate {100 * gate['tuned_acc']:.1f}%); details on the Regression page.")
    st.caption(f"Blind pair set {p['pair_set']}: {shown['pairs']} pairs, {shown['votes']} votes so far "
               "(Results page).")
    if user.may(Action.PROMOTE):
        passing = bool(gate) and gate["verdict"] == "pass"
        key = p["pipeline_id"]
        with st.form(f"decide_{key}", border=False):
            reason = st.text_input("Reason for the decision (kept on record)", key=f"decide_reason_{key}")
            override = False if passing else st.checkbox("Promote despite the gate", key=f"decide_override_{key}")
            c1, c2, _ = st.columns([1, 1, 3])
            promote = c1.form_submit_button("Promote candidate", type="primary")
            dismiss = c2.form_submit_button("Dismiss")
        if promote or dismiss:
            with user_errors():
                pipelines.decide(owner.store, user, p["pipeline_id"], "promoted" if promote else "dismissed", reason,
                                 override=override)
                st.success(f"Candidate {'promoted' if promote else 'dismissed'}.")
                st.rerun()


def retraining() -> None:
    """Schedules (engineer: create, run now, pause, delete), their firings, and every pipeline."""
    user, owner = current_user(), get_owner()
    st.caption("A schedule retrains a task unattended: the promoted version's config on the newest data version, "
               "then the test split, the regression suite, scores, the gate and a blind pair set; the candidate "
               "waits beside the promoted version (Versions tab). Schedules fire while the dashboard runs, never "
               "twice at once.")
    if user.may(Action.JOBS_RUN):
        with st.expander("New schedule", expanded=not schedules.schedules(owner.store, user)):
            _schedule_form()
    rows = schedules.schedules(owner.store, user)
    for s in rows:
        c1, c2, c3, c4 = st.columns([5, 1, 1, 1])
        state = f"next {s['next_run_at']:%Y-%m-%d %H:%M} UTC" if s["enabled"] and s["next_run_at"] else (
            "waits for new data" if s["enabled"] else "paused")
        c1.markdown(f"**{plain(s['name'])}** · {s['task']} · {s['describe']} · {state} · by {s['created_by']}")
        if user.may(Action.JOBS_RUN):
            with user_errors():
                if c2.button("Run now", key=f"run_{s['schedule_id']}"):
                    pid = schedules.run_now(owner.store, owner.jobs, owner.settings, user, s["schedule_id"])
                    st.toast(f"Started {pid}.")
                if c3.button("Pause" if s["enabled"] else "Resume", key=f"toggle_{s['schedule_id']}"):
                    schedules.set_enabled(owner.store, user, s["schedule_id"], not s["enabled"])
                    st.rerun()
                if c4.button("Delete", key=f"delete_{s['schedule_id']}"):
                    schedules.delete_schedule(owner.store, user, s["schedule_id"])
                    st.rerun()
    fired = schedules.events(owner.store, user)
    if fired:
        st.markdown("**Firings**")
        st.dataframe(pd.DataFrame(fired)[["fired_at", "schedule_id", "outcome", "pipeline_id", "note"]],
                     hide_index=True, width="stretch")
    runs_ = pipelines.pipelines(owner.store, user)
    if runs_:
        st.markdown("**Pipelines**")
        st.dataframe(pd.DataFrame(runs_)[["created_at", "pipeline_id", "task", "status", "why", "candidate",
                                          "dataset_version", "schedule_id"]], hide_index=True, width="stretch")


def _schedule_form() -> None:
    user, owner = current_user(), get_owner()
    tasks = list(dict.fromkeys(v["dataset"] for v in list_versions(owner.store, user)))
    if not tasks:
        st.info("Import a dataset first (Data page).")
        return
    with st.form("schedule", border=False):
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", value="weekly retrain", key="schedule_name")
        task = c2.selectbox("Task (dataset)", tasks, key="schedule_task")
        trigger = st.radio("When", list(schedules.TRIGGERS), horizontal=True, key="schedule_trigger",
                           format_func=lambda t: schedules.TRIGGERS[t])
        spec = st.text_input("Every how many hours (interval), or the cron expression (cron)", value="168",
                             key="schedule_spec", help="168 = weekly; cron '0 3 * * 1' = Mondays 03:00 UTC. "
                                                       "Ignored for new data.")
        st.caption("Every retrain answers the test split and the suite with several versions: on a small CPU, "
                   "24 test prompts and 10 suite items per category keep it to minutes (the gate then reads "
                   "inconclusive); 0 measures everything.")
        c3, c4, c5 = st.columns(3)
        prompts = c3.number_input("Test prompts (0: all)", min_value=0, value=0, key="schedule_prompts")
        items = c4.number_input("Suite items per category (0: all)", min_value=0, value=0, key="schedule_items")
        raters = c5.number_input("Raters per pair", min_value=1, value=3, key="schedule_raters")
        go = st.form_submit_button("Create schedule", type="primary")
    if go:
        with user_errors():
            options = PipelineOptions(test_prompts=int(prompts), suite_items=int(items), raters_per_pair=int(raters))
            sid = schedules.create_schedule(owner.store, user, name, task, trigger, spec, options)
            st.success(f"Created {sid}.")


def deployment() -> None:
    """What production runs for the promoted versions: the vLLM command(s); engineers write the folder."""
    user, owner = current_user(), get_owner()
    if not promotion.promoted(owner.store, user):
        return
    st.subheader("Deployment")
    mode = st.radio("Serve", deploy.MODES, horizontal=True, key="deploy_mode",
                    format_func=lambda m: {"adapters": "the base + adapters (multi-LoRA, one engine)",
                                           "merged": "merged full models"}[m])
    with user_errors():
        plan = deploy.plan(owner.store, user, owner.settings, mode=mode)
        for problem in plan.problems:
            st.warning(problem)
        for c in plan.commands:
            st.code(c["shell"], language="bash", wrap_lines=True)
        if plan.notes:
            st.caption(" ".join(plan.notes))
        if user.may(Action.JOBS_RUN) and plan.ok:
            _deploy_writer(mode)


@st.fragment(run_every="2s")
def _deploy_writer(mode: str) -> None:
    """The engineer's button, then the deployment job it started: progress in bytes while the worker copies
    and hashes the weights, then what was written (refreshed every few seconds; the page never waits)."""
    user, owner = require_page(Action.JOBS_RUN), get_owner()
    target = owner.settings.exports_dir / "deployment"
    with user_errors():
        if st.button(f"Write the deployment to {target}", key="deploy_write"):
            st.session_state["deploy_job"] = deploy.start_deploy(owner.store, owner.jobs, user, owner.settings, target, mode=mode)
        job_id = st.session_state.get("deploy_job")
        if not job_id:
            return
        state = deploy.deploy_status(owner.store, owner.jobs, user, job_id)
        if not state["done"]:
            job_progress(f"Writing the deployment to {state['out_dir']}", job_id, state["progress"], in_bytes=True)
        elif state["status"] == "succeeded":
            result = state["result"]
            st.success(f"Wrote {len(result['files'])} files ({readable_bytes(result['bytes'])}) to "
                       f"{result['out_dir']}; start it with {result['script']}.")
            with st.expander("Files written"):
                st.code("\n".join(result["files"]), language=None)
        else:
            st.error(f"The deployment was not written ({job_id}, {state['status']}): {state['error'] or 'no reason'}. "
                     f"{state['out_dir']} is as it was.")


def contenders_view() -> None:
    """Registered contenders with their prompts; engineers add a newer base or a prompted base."""
    user, owner = current_user(), get_owner()
    st.caption("Would a newer base model, or the base with good prompting, beat the fine-tune? Contenders answer "
               "the same test split and suite in every retrain and meet the candidate in its blind pairs (the "
               "Bradley-Terry ladder on the Results page places them). Endpoints are added with `tuneboard "
               "contenders add`.")
    if user.may(Action.JOBS_RUN):
        with st.expander("Add a contender"):
            _contender_form()
    rows = contenders.contenders(owner.store, user)
    if not rows:
        st.info("No contender yet.")
        return
    table = pd.DataFrame([{"contender": r["variant_id"], "kind": r["kind"],
                           "model": r["path"] if r["kind"] != "external" else r["detail"].get("model"),
                           "system prompt": r["detail"].get("system_prompt", ""),
                           "examples": len(r["detail"].get("few_shot", [])),
                           "tasks": ", ".join(r["detail"].get("tasks") or []) or "all"} for r in rows])
    st.dataframe(table, hide_index=True, width="stretch")  # prompts shown as plain text cells


def _contender_form() -> None:
    user, owner = current_user(), get_owner()
    tasks = list(dict.fromkeys(v["dataset"] for v in list_versions(owner.store, user)))
    with st.form("contender", border=False):
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", key="contender_name", placeholder="smollm2-360m or prompted-base")
        model = c2.text_input("Model (hub id or folder; empty: the base with a prompt)", key="contender_model")
        system = st.text_area("System prompt", key="contender_system")
        shots = st.file_uploader("Few-shot examples (JSONL: one {\"user\": ..., \"assistant\": ...} per line)",
                                 type=["jsonl"], key="contender_shots")
        chosen = st.multiselect("Tasks it competes on (empty: all)", tasks, key="contender_tasks")
        go = st.form_submit_button("Add contender", type="primary")
    if go:
        with user_errors():
            examples = contenders.read_few_shot(shots.getvalue(), shots.name) if shots else []
            vid = contenders.register(owner.store, user, name, owner.settings.base_model, model, system, examples, chosen)
            st.success(f"Added {vid}.")
