"""Models (engineer; lead read-only): each task's promoted version with its history and rollback;
runs and adapters with lineage, best checkpoint, gates, parity of merged exports; engineers
promote, merge/export and reproduce runs. A run's record (zip) and the deployment folder are
written by jobs: the page starts them and shows their progress, never waits on them."""

import json

import pandas as pd
import streamlit as st

from core.auth import Action
from core.lifecycle.bundle import bundle_file, bundle_status, start_bundle
from core.lifecycle.progress import readable_bytes
from core.training import get_run, list_runs, list_variants, reproduce, start_merge
from dashboard.context import current_user, get_owner, require_page
from dashboard.widgets import job_progress, loss_chart, run_progress, user_errors
from pages.parts import lifecycle


def render() -> None:
    st.title("Models")
    versions_tab, retrain_tab, contenders_tab, runs_tab = st.tabs(["Versions", "Retraining", "Contenders",
                                                                   "Training runs"])
    with versions_tab:
        lifecycle.promoted_versions()
        lifecycle.candidates()
        lifecycle.deployment()
    with retrain_tab:
        lifecycle.retraining()
    with contenders_tab:
        lifecycle.contenders_view()
    with runs_tab:
        _runs()


def _runs() -> None:
    user, owner = current_user(), get_owner()
    runs = list_runs(owner.store, user)
    if not runs:
        st.info("No training runs yet." + (" Start one on the Train page." if user.may(Action.JOBS_RUN) else ""))
        return
    table = pd.DataFrame(runs)[["job_id", "status", "method", "dataset_version", "best_eval_loss", "final_step",
                                "created_by", "started_at", "finished_at"]]
    st.dataframe(table, hide_index=True, width="stretch")
    chosen = st.selectbox("Run", [r["job_id"] for r in runs])
    run = get_run(owner.store, user, chosen)
    job = owner.jobs.get(chosen)
    st.subheader(chosen)
    run_progress(job, owner.jobs.history(user, chosen))
    loss_chart(owner.jobs.history(user, chosen))
    lineage = run["lineage"]
    c1, c2, c3 = st.columns(3)
    c1.markdown(f"**Dataset** `{lineage['dataset']['name']}` · `{lineage['dataset']['version_id']}`  \n"
                f"content `{lineage['dataset']['content_hash'][:16]}`")
    base = lineage["base_model"]
    c2.markdown(f"**Base model** `{base['id']}`  \nfiles `{(base.get('files_sha256') or 'hub id')[:16]}`")
    code = lineage["code"]
    c3.markdown(f"**Code** tuneboard {code['tuneboard']} · `{code['commit'][:10]}`"
                + (" (uncommitted changes)" if code["dirty"] else "") + f"  \nseed {lineage['seed']}")
    st.markdown(f"**Best checkpoint** `{run['best_checkpoint'] or '-'}` · **adapter** `{run['adapter_dir'] or '-'}`")
    lifecycle.version_gates(chosen, [v for v in list_variants(owner.store, user) if v["job_id"] == chosen])
    with st.expander("Full config and lineage (packages, host, times)"):
        st.json({"config": run["config"], "lineage": lineage,
                 "started_at": str(run["started_at"]), "finished_at": str(run["finished_at"])})

    _exports(chosen)


@st.fragment(run_every="3s")
def _exports(chosen: str) -> None:
    """Merged exports with their parity, and the engineer's actions (refreshed every few seconds)."""
    user = require_page(Action.JOBS_VIEW)
    owner = get_owner()
    status = owner.jobs.get(chosen)["status"]
    variants = [v for v in list_variants(owner.store, user) if v["job_id"] == chosen]
    for v in variants:
        detail = json.loads(v["detail"] or "{}")
        if v["kind"] == "merged":
            good = detail.get("ok")
            (st.success if good else st.error)(
                f"Merged export `{v['path']}`: parity {'passed' if good else 'FAILED: do not use this export'} "
                f"({detail.get('identical_greedy')}/{detail.get('prompts')} identical greedy outputs, "
                f"max logit diff {detail.get('max_logit_diff', 0):.2e}, {detail.get('dtype')}).")
    if user.may(Action.JOBS_RUN):
        b1, b2, _ = st.columns([1, 1, 3])
        with user_errors():
            if b1.button("Merge and export", disabled=status != "succeeded",
                         help="Merge the adapter into a full-precision copy of the base and check parity."):
                job_id = start_merge(owner.store, owner.jobs, user, chosen, owner.settings.exports_dir)
                st.toast(f"Merging ({job_id}); the result appears here when it finishes.")
            if b2.button("Reproduce", help="A new run with exactly this config, data version and seed."):
                job_id = reproduce(owner.store, owner.jobs, user, chosen, owner.settings.tracking)
                st.toast(f"Started {job_id}.")
    if status in ("succeeded", "failed", "cancelled"):
        with user_errors():
            if st.button("Prepare the run record (zip)", key=f"bundle_{chosen}",
                         help="Config, data version (manifest and rows), packages, metrics, gates, review results "
                              "and promotions in one file; `tuneboard reproduce FILE` re-runs it."):
                st.session_state[f"bundle_job_{chosen}"] = start_bundle(owner.store, owner.jobs, user, owner.settings, chosen)
            _run_record(user, chosen)
    merges = [j for j in owner.jobs.list(user, "merge") if json.loads(j["config"]).get("run_id") == chosen]
    if merges and merges[0]["status"] in ("queued", "running"):
        st.info(f"Merge {merges[0]['job_id']} is running ...")
    elif merges and merges[0]["status"] == "failed":
        st.error(f"Merge {merges[0]['job_id']} failed: {merges[0]['error']}")


def _run_record(user, chosen: str) -> None:
    """The run record this session asked for: its job's progress while the worker writes the zip, then a
    download button that reads the zip from the job's run folder only when it is clicked."""
    job_id = st.session_state.get(f"bundle_job_{chosen}")
    if not job_id:
        return
    owner = get_owner()
    state = bundle_status(owner.store, owner.jobs, user, job_id)
    if not state["done"]:
        job_progress("Preparing the run record", job_id, state["progress"], in_bytes=True)
    elif state["status"] == "succeeded":
        path = bundle_file(owner.store, owner.jobs, user, job_id)
        st.download_button(f"Download {path.name} ({readable_bytes(state['result']['bytes'])})", path.read_bytes,
                           file_name=path.name, mime="application/zip", key=f"bundle_download_{chosen}")
    else:
        st.error(f"The run record was not written ({job_id}, {state['status']}): {state['error'] or 'no reason'}")
