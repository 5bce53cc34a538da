"""Metrics (lead, engineer): per model version the task metrics with CIs, the difference from the
base with significance, trends across scored sets, the best and worst examples, exports; and
scoring a generation set as a job. Every figure shown is a stored summary (core.metrics.results)."""

from __future__ import annotations

import json

import streamlit as st

from core import serving
from core.auth import Action
from core.metrics import results
from core.metrics.registry import METRICS, higher_is_better
from core.metrics.scoring import start_scoring
from dashboard.context import current_user, get_owner, require_page
from dashboard.widgets import DELTA_COLOR, plain, user_errors
from pages.parts import metrics as views


def render() -> None:
    user, owner = current_user(), get_owner()
    st.title("Metrics")
    st.caption("Task metrics of each model version on a held-out split, with confidence intervals, and its paired "
               "difference from the base model on the same prompts.")
    if user.may(Action.GENERATE):
        with st.expander("Score a generation set", expanded=not results.scored_sets(owner.store, user)):
            _score_form()
        _running_scores()
    sets = results.scored_sets(owner.store, user)
    if not sets:
        st.info("No scored generation sets yet. Generate outputs on the Generations page, then score them here.")
        return
    datasets = sorted({s["dataset"] for s in sets})
    c1, c2 = st.columns([1, 2])
    dataset = c1.selectbox("Dataset", datasets, key="metrics_dataset")
    mine = [s for s in sets if s["dataset"] == dataset]
    chosen = c2.selectbox("Generation set", [s["set_id"] for s in mine], key="metrics_set",
                          format_func=lambda i: next(f"{s['name']} · {i} · {s['created_at']:%Y-%m-%d %H:%M}"
                                                     for s in mine if s["set_id"] == i))
    with user_errors():
        res = results.latest(owner.store, user, chosen, owner.settings.metrics)
        if res is None:
            st.info("This set's scores are still being written.")
            return
        c1, c2 = st.columns(2)
        metrics = c1.multiselect("Metrics", res.metrics, default=res.metrics, key=f"metrics_pick_{chosen}")
        variants = list(dict.fromkeys(res.summary["variant"]))
        shown = c2.multiselect("Versions", variants, default=variants, format_func=res.label,
                               key=f"metrics_variants_{chosen}")
        _headline(res)
        overview, deltas, trend, drill, export = st.tabs(
            ["Metrics", "Difference vs base", "Trend", "Examples", "Export"])
        with overview:
            views.overview(res, metrics, shown)
        with deltas:
            views.differences(res, metrics, shown)
        with trend:
            views.trend(dataset, res, metrics, sets)
        with drill:
            views.examples(res, metrics, shown)
        with export:
            views.exports(res)


def _score_form() -> None:
    user, owner = current_user(), get_owner()
    done = [s for s in serving.list_sets(owner.store, user) if s["status"] == "succeeded" and s["n_outputs"]]
    if not done:
        st.info("No finished generation set yet: start one on the Generations page.")
        return
    with st.form("score", border=False):
        set_id = st.selectbox("Generation set", [s["set_id"] for s in done],
                              format_func=lambda i: next(f"{s['name']} · {i}" for s in done if s["set_id"] == i))
        picked = st.multiselect("Metrics", list(METRICS), format_func=lambda n: n,
                                help="Empty: the metrics the dataset version declares, else chosen from the "
                                     "references (JSON metrics for JSON answers, text overlap otherwise).\n\n" +
                                     "\n".join(f"- **{n}**: {m.help}" for n, m in METRICS.items()))
        go = st.form_submit_button("Score", type="primary")
    if go:
        with user_errors():
            job = start_scoring(owner.store, owner.jobs, user, set_id, picked or None, owner.settings.metrics)
            st.success(f"Scoring started ({job}); results appear below when it finishes.")


@st.fragment(run_every="2s")
def _running_scores() -> None:
    user, owner = require_page(Action.METRICS_VIEW), get_owner()
    live = [j for j in owner.jobs.list(user, "score") if j["status"] in ("queued", "running")]
    for job in live:
        progress = [e for e in owner.jobs.history(user, job["job_id"], "progress")]
        last = progress[-1] if progress else {"done": 0, "total": 1}
        set_id = json.loads(job["config"])["set_id"]
        st.progress(last["done"] / max(1, last["total"]),
                    text=f"Scoring {set_id}: {last['done']} of {last['total']} (variant, metric) series")
    failed = [j for j in owner.jobs.list(user, "score")[:3] if j["status"] == "failed"]
    for job in failed:
        st.error(f"Scoring job {job['job_id']} failed: {job['error']}")
    if st.session_state.get("_scoring_live") and not live:
        st.session_state["_scoring_live"] = False
        st.rerun()  # a job just finished: redraw the page with its results
    st.session_state["_scoring_live"] = bool(live)


def _headline(res: results.SetMetrics) -> None:
    src = res.source
    origin = (f"{src.get('dataset')} · version {src.get('version_id')} · {src.get('split')} split"
              if src.get("kind") == "dataset" else src.get("name") or src.get("kind", ""))
    n = int(res.summary["n"].max()) if len(res.summary) else 0
    st.caption(f"{plain(res.name)} · {plain(origin)} · {n} examples · base model {res.base_model} · summary "
               f"computed {res.computed_at:%Y-%m-%d %H:%M:%S}, at least {res.settings.get('bootstrap_rounds')} "
               f"resampling rounds, {int(round(100 * res.settings.get('confidence', 0.95)))}% intervals")
    primary = res.primary
    cols = st.columns(max(1, min(4, len(res.names))))
    base = res.summary[(res.summary["variant"] == "base") & (res.summary["metric"] == primary)]
    for col, (variant, row) in zip(cols, res.summary[res.summary["metric"] == primary].set_index("variant")
                                   .iterrows()):
        delta = res.deltas[(res.deltas["variant"] == variant) & (res.deltas["metric"] == primary)]
        figure = results.figure(res, variant, primary)
        text, about = None, figure
        if len(delta) and len(base):
            d = delta.iloc[0]
            text = f"{d['delta']:+.3f} vs base ({results.short_verdict(d.to_dict())})"
            about += "; " + results.difference_words(res, d.to_dict())
        col.metric(f"{primary} · {res.label(variant)}", f"{row['mean']:.3f}", text,
                   delta_color=DELTA_COLOR[higher_is_better(primary)], help=about)
        col.caption(figure)
    with st.expander("The verdict in words"):
        for line in results.verdict(res):
            st.text(f"• {line}")
        note = results.comparisons_note(res)
        if note:
            st.caption(note)
        st.caption(results.methods_note(res))
