"""Train (engineer): choose data, base model and preset, see the estimate, launch, watch, stop."""

import streamlit as st

from core.auth import Action
from core.datasets import list_versions
from core.fields import about
from core.training import list_runs, start_training
from core.training.config import PRESETS, TrainConfig
from core.training.estimate import estimate
from dashboard.context import current_user, get_owner, require_page
from dashboard.widgets import described_input, loss_chart, run_progress, user_errors

FORM_FIELDS = ("method", "learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "max_seq_len",
               "lora_rank", "lora_alpha", "lora_dropout", "target_modules", "warmup_ratio", "lr_scheduler",
               "eval_every", "keep_checkpoints", "eval_max_examples", "early_stopping_patience", "seed",
               "packing")


def render() -> None:
    user, owner = current_user(), get_owner()
    st.title("Train")
    versions = list_versions(owner.store, user)
    if not versions:
        st.info("Import a dataset on the Data page first.")
        return
    launch, watch = st.tabs(["New run", "Runs"])
    with launch:
        _new_run(user, owner, versions)
    with watch:
        _runs(user, owner)


def _new_run(user, owner, versions) -> None:
    labels = {v["version_id"]: f"{v['dataset']} · {v['version_id']} · {v['n_train']} train" for v in versions}
    c1, c2 = st.columns(2)
    version = c1.selectbox("Dataset version", list(labels), format_func=labels.get)
    base = c2.text_input("Base model", value=owner.settings.base_model, help="Hugging Face id or local folder.")
    preset = st.selectbox("Preset", list(PRESETS), help="Fills the fields below; edit any of them.")
    st.caption(PRESETS[preset].guidance)
    defaults = TrainConfig(base_model="-", dataset_version="-", **PRESETS[preset].values)
    values = {}
    cols = st.columns(3)
    for i, name in enumerate(FORM_FIELDS):
        lr = name == "learning_rate"
        values[name] = described_input(TrainConfig, name, getattr(defaults, name), where=cols[i % 3],
                                       key=f"train_{preset}_{name}", step=1e-5 if lr else None,
                                       format="%.1e" if lr else None)
    extra = st.text_input("modules_to_save (comma-separated)", help=about(TrainConfig, "modules_to_save").help,
                          key=f"train_{preset}_modules_to_save")
    values["modules_to_save"] = [m.strip() for m in extra.split(",") if m.strip()]
    config = None
    with user_errors():
        config = TrainConfig(base_model=base.strip(), dataset_version=version, **values)
    if config is None:
        return
    for note in config.advice():
        st.warning(f"Outside the guide: {note}.")
    st.info("Estimate: " + estimate(owner.store, config, owner.settings.training.hourly_price,
                                    owner.settings.training.currency).summary() + ".")
    if st.button("Launch", type="primary", icon=":material/rocket_launch:"):
        with user_errors():
            job_id = start_training(owner.store, owner.jobs, user, config, trackers=owner.settings.tracking)
            st.session_state["train_focus"] = job_id
            st.success(f"Started {job_id}. Follow it in the Runs tab.")


def _runs(user, owner) -> None:
    runs = list_runs(owner.store, user)
    if not runs:
        st.caption("No runs yet.")
        return
    ids = [r["job_id"] for r in runs]
    focus = st.session_state.get("train_focus")
    chosen = st.selectbox("Run", ids, index=ids.index(focus) if focus in ids else 0,
                          format_func=lambda i: f"{i} · {next(r['status'] for r in runs if r['job_id'] == i)}")
    _live(chosen)


@st.fragment(run_every="2s")
def _live(job_id: str) -> None:
    user = require_page(Action.JOBS_RUN)
    owner = get_owner()
    job = owner.jobs.get(job_id)
    events = owner.jobs.history(user, job_id)
    run_progress(job, events)
    loss_chart(events)
    c1, c2, _ = st.columns([1, 1, 4])
    with user_errors():
        if job["status"] in ("queued", "running"):
            if c1.button("Cancel", icon=":material/stop:", help="Stops after the current step; a checkpoint is saved."):
                owner.jobs.cancel(user, job_id)
                st.toast("Cancelling: the run stops after the current step.")
        elif job["status"] in ("cancelled", "failed"):
            if c2.button("Resume", icon=":material/play_arrow:", help="Continues from the last checkpoint."):
                owner.jobs.resume(user, job_id)
                st.toast("Resumed from the last checkpoint.")
