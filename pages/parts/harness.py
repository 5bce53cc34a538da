"""The Regression page's lm-eval tab: lm-evaluation-harness tasks on one version, as a job, and their
stored results (built-in tasks need the hub for their data; a task folder of your own runs offline)."""

from __future__ import annotations

import streamlit as st

from core import serving
from core.auth import Action
from core.regression import harness
from dashboard.context import current_user, get_owner
from dashboard.widgets import user_errors


def harness_view() -> None:
    """Optional: lm-evaluation-harness tasks on one version (needs lm-eval; built-in tasks need the hub)."""
    user, owner = current_user(), get_owner()
    why = harness.missing()
    if why:
        st.info(why)
    elif user.may(Action.GENERATE):
        versions = serving.available_variants(owner.store, user, owner.settings.base_model)
        with st.form("harness", border=False):
            variant = st.selectbox("Version", [v.variant_id for v in versions if v.kind != "external"])
            tasks = st.text_input("lm-eval tasks (comma-separated)", placeholder="arc_easy, hellaswag")
            limit = st.number_input("Examples per task (0: all)", min_value=0, value=0, step=50)
            folder = st.text_input("Task folder on the server (optional)", placeholder="/data/lm-eval-tasks",
                                   help="Task YAML files of your own and their data; they run offline.")
            go = st.form_submit_button("Run lm-eval")
        if go:
            with user_errors():
                job_id = harness.start_harness(owner.store, owner.jobs, owner.settings, user, variant,
                                               tasks.split(","), int(limit) or None, task_folder=folder.strip() or None)
                st.success(f"Started {job_id}; results appear here when each task finishes.")
    for job in [j for j in owner.jobs.list(user, "harness")[:5] if j["status"] == "failed"]:
        st.error(f"lm-eval job {job['job_id']} failed: {job['error']}")
    stored = harness.results(owner.store, user)
    if not stored.empty:
        st.dataframe(stored, hide_index=True, width="stretch")
