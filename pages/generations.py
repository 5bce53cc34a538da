"""Generations (engineer, lead): start a generation set, watch it, read the outputs side by side
(labeled by variant: this page is never shown to raters), with sanity flags and parity."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import serving
from core.auth import Action
from core.datasets import list_versions
from core.serving import Decoding
from dashboard.context import current_user, get_owner, require_page
from dashboard.widgets import described_input, skipped_lines, user_errors
from pages.parts.generations import parity_view, sanity_view, side_by_side

PATH_CHOICES = ("auto",) + serving.PATHS


def render() -> None:
    user, owner = current_user(), get_owner()
    st.title("Generations")
    st.caption("Every variant answers the same prompts with the same decoding; outputs are stored with the "
               "backend, tokens, finish reason and latency that produced them.")
    with st.expander("New generation set", expanded=not serving.list_sets(owner.store, user)):
        _new_set_form()
    sets = serving.list_sets(owner.store, user)
    if not sets:
        st.info("No generation sets yet.")
        return
    table = pd.DataFrame(sets)[["set_id", "name", "status", "n_prompts", "n_outputs", "chosen_path", "created_by",
                                "created_at"]]
    st.dataframe(table, hide_index=True, width="stretch")
    chosen = st.selectbox("Set", [s["set_id"] for s in sets],
                          format_func=lambda i: next(f"{s['name']} · {i}" for s in sets if s["set_id"] == i))
    status = next(s["status"] for s in sets if s["set_id"] == chosen)
    if status in ("queued", "running"):
        _live_set_detail(chosen)
    else:
        _set_detail(chosen)


@st.fragment(run_every="2s")
def _live_set_detail(set_id: str) -> None:
    """Refreshes while the set runs; once it ends, the page redraws it once, statically."""
    user = require_page(Action.JOBS_VIEW)
    if serving.get_set(get_owner().store, user, set_id)["status"] not in ("queued", "running"):
        st.rerun()
    _set_detail(set_id)


def _new_set_form() -> None:
    user, owner = current_user(), get_owner()
    versions = list_versions(owner.store, user)
    variants = serving.available_variants(owner.store, user, owner.settings.base_model)
    source = st.radio("Prompts", ["Dataset split", "Upload a prompt list"], horizontal=True)
    with st.form("new_set", border=False):
        upload, version, split, limit, samples = None, None, "test", 0, 1
        if source == "Dataset split":
            if not versions:
                st.warning("No dataset imported yet: import one on the Data page, or upload a prompt list.")
            c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
            version = c1.selectbox("Dataset version", [v["version_id"] for v in versions],
                                   format_func=lambda i: next(f"{v['dataset']} · {i} · {v['n_test']} test"
                                                              for v in versions if v["version_id"] == i))
            split = c2.selectbox("Split", ["test", "validation", "train"])
            limit = c3.number_input("Only the first", min_value=0, value=0, help="0 = the whole split.")
            samples = c4.number_input("Samples per prompt (pass@k)", min_value=1, value=1,
                                      help="Generate each prompt this many times to estimate pass@k on a code task "
                                           "(k up to this number); needs a temperature above 0.")
        else:
            upload = st.file_uploader("Prompt list", type=["txt", "jsonl"],
                                      help='.txt: one prompt per line. .jsonl: {"prompt": ..., "reference": ...} '
                                           'or {"messages": [...]} per line.')
        adapters = [v.variant_id for v in variants if v.kind == "adapter"]
        chosen = st.multiselect("Variants", [v.variant_id for v in variants],
                                default=["base"] + adapters[:1],
                                format_func=lambda i: next(f"{v.name} ({v.kind})" for v in variants
                                                           if v.variant_id == i))
        c1, c2, c3, c4 = st.columns(4)
        temperature = described_input(Decoding, "temperature", 0.0, label="Temperature", where=c1, step=0.1)
        top_p = described_input(Decoding, "top_p", 1.0, where=c2, step=0.05)
        max_tokens = described_input(Decoding, "max_tokens", 128, where=c3)
        seed = described_input(Decoding, "seed", 0, label="Seed", where=c4)
        default_path = owner.settings.serving.path
        path = st.selectbox("Serving path", PATH_CHOICES, index=PATH_CHOICES.index(default_path),
                            format_func=lambda p: p if p == "auto" else f"{p}: {serving.PATH_HELP[p]}",
                            help="auto measures the paths once on this host and model and takes the fastest. "
                                 "Outputs are the same whichever runs (the parity check guards it).")
        name = st.text_input("Name", placeholder="e.g. demo test split, base vs adapter")
        submitted = st.form_submit_button("Generate", type="primary")
    if submitted:
        with user_errors():
            if upload is not None:
                prompts, src = serving.prompts_from_file(upload.getvalue(), upload.name)
            elif version:
                prompts, src = serving.prompts_from_version(owner.store, user, version, split, int(limit) or None,
                                                            int(samples))
            else:
                st.error("Choose a dataset version or upload a prompt list.")
                return
            decoding = Decoding(temperature=float(temperature), top_p=float(top_p),
                                 max_tokens=int(max_tokens), seed=int(seed))
            label = name.strip() or (src.get("name") or f"{src.get('dataset')} {src.get('split')}")
            set_id = serving.generate(owner.store, owner.jobs, owner.settings, user,
                                      serving.GenerationSpec(label, chosen, prompts, src, decoding, path))
            st.success(f"Started {set_id}: {len(prompts)} prompts x {len(chosen)} variants.")


def _set_detail(set_id: str) -> None:
    user = require_page(Action.JOBS_VIEW)
    owner = get_owner()
    record = serving.get_set(owner.store, user, set_id)
    total = record["n_prompts"] * len(record["variants"])
    events = owner.jobs.history(user, set_id, "progress")
    stage = next((e["stage"] for e in reversed(events) if e.get("stage")), "")
    text = f"{record['status']} · {record['n_outputs']}/{total} outputs" + (f" · {stage}" if record["status"] in
                                                                            ("queued", "running") and stage else "")
    st.progress(min(1.0, record["n_outputs"] / max(1, total)), text=text)
    skipped_lines(set_id)
    if record["error"]:
        st.error("The set failed:")
        st.code(record["error"], language=None)
    d = record["decoding"]
    st.markdown(f"**Decoding** temperature {d['temperature']} · top_p {d['top_p']} · max_tokens {d['max_tokens']} "
                f"· seed {d['seed']}  \n**Serving path** `{record['chosen_path'] or record['requested_path']}`"
                + (f" — {record['path_reason']}" if record["path_reason"] else ""))
    if user.may(Action.GENERATE):
        with user_errors():
            if record["status"] in ("queued", "running"):
                if st.button("Cancel", key=f"cancel-{set_id}"):
                    owner.jobs.cancel(user, set_id)
            elif record["status"] in ("cancelled", "failed"):
                if st.button("Resume", key=f"resume-{set_id}", help="Generates only what is missing."):
                    owner.jobs.resume(user, set_id)
    if not record["n_outputs"]:
        return
    names = {v["variant_id"]: v["name"] for v in record["variants"]}
    sanity_view(set_id, names)
    parity_view(set_id, names)
    side_by_side(set_id, names)
