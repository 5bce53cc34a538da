"""Train (engineer): choose data, base model and preset, see the estimate, launch, watch, stop."""

import dataclasses

import streamlit as st

from core.auth import Action
from core.datasets import list_versions
from core.training import list_runs, start_training
from core.training.config import PRESETS, TrainConfig
from core.training.estimate import estimate
from dashboard.context import current_user, owner, require_page
from dashboard.widgets import loss_chart, run_progress, user_errors

FORM_FIELDS = ("method", "learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "max_seq_len",
               "lora_rank", "lora_alpha", "lora_dropout", "target_modules", "warmup_ratio", "lr_scheduler",
               "eval_every", "keep_checkpoints", "eval_max_examples", "early_stopping_patience", "seed",
               "packing")


def _field(name: str, default, meta: dict, key: str):
    help_text = meta["help"]
    if meta["choices"]:
        return st.selectbox(name, meta["choices"], index=meta["choices"].index(default), help=help_text, key=key)
    if isinstance(default, bool):
        return st.checkbox(name, value=default, help=help_text, key=key)
    if isinstance(default, int):
        return int(st.number_input(name, value=default, step=1, help=help_text, key=key))
    fmt = "%.1e" if name == "learning_rate" else "%.3f"
    return float(st.number_input(name, value=float(default), format=fmt, help=help_text, key=key,
                                 step=1e-5 if name == "learning_rate" else 0.01))


def render() -> None:
    user, o = current_user(), owner()
    st.title("Train")
    versions = list_versions(o.store, user)
    if not versions:
        st.info("Import a dataset on the Data page first.")
        return
    launch, watch = st.tabs(["New run", "Runs"])
    with launch:
        _new_run(user, o, versions)
    with watch:
        _runs(user, o)


def _new_run(user, o, versions) -> None:
    labels = {v["version_id"]: f"{v['dataset']} · {v['version_id']} · {v['n_train']} train" for v in versions}
    c1, c2 = st.columns(2)
    version = c1.selectbox("Dataset version", list(labels), format_func=labels.get)
    base = c2.text_input("Base model", value=o.settings.base_model, help="Hugging Face id or local folder.")
    preset = st.selectbox("Preset", list(PRESETS), help="Fills the fields below; edit any of them.")
    st.caption(PRESETS[preset].guidance)
    defaults = TrainConfig(base_model="-", dataset_version="-", **PRESETS[preset].values)
    meta = {f.name: f.metadata for f in dataclasses.fields(TrainConfig)}
    values = {}
    cols = st.columns(3)
    for i, name in enumerate(FORM_FIELDS):
        with cols[i % 3]:
            values[name] = _field(name, getattr(defaults, name), meta[name], key=f"train_{preset}_{name}")
    extra = st.text_input("modules_to_save (comma-separated)", help=meta["modules_to_save"]["help"],
                          key=f"train_{preset}_modules_to_save")
    values["modules_to_save"] = [m.strip() for m in extra.split(",") if m.strip()]
    config = None
    with user_errors():
        config = TrainConfig(base_model=base.strip(), dataset_version=version, **values)
    if config is None:
        return
    for note in config.advice():
        st.warning(f"Outside the guide: {note}.")
    st.info("Estimate: " + estimate(o.store, config, o.settings.training.hourly_price,
                                    o.settings.training.currency).summary() + ".")
    if st.button("Launch", type="primary", icon=":material/rocket_launch:"):
        with user_errors():
            job_id = start_training(o.store, o.jobs, user, config)
            st.session_state["train_focus"] = job_id
            st.success(f"Started {job_id}. Follow it in the Runs tab.")


def _runs(user, o) -> None:
    runs = list_runs(o.store, user)
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
    o = owner()
    job = o.jobs.get(job_id)
    events = o.jobs.history(user, job_id)
    run_progress(job, events)
    loss_chart(events)
    c1, c2, _ = st.columns([1, 1, 4])
    with user_errors():
        if job["status"] in ("queued", "running"):
            if c1.button("Cancel", icon=":material/stop:", help="Stops after the current step; a checkpoint is saved."):
                o.jobs.cancel(user, job_id)
                st.toast("Cancelling: the run stops after the current step.")
        elif job["status"] in ("cancelled", "failed"):
            if c2.button("Resume", icon=":material/play_arrow:", help="Continues from the last checkpoint."):
                o.jobs.resume(user, job_id)
                st.toast("Resumed from the last checkpoint.")
