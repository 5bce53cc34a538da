"""Metrics (lead, engineer): per model version the task metrics with CIs, the difference from the
base with significance, trends across scored sets, the best and worst examples, exports; and
scoring a generation set as a job. Every figure shown is a stored summary (core.metrics.results)."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import streamlit as st

from core import serving
from core.auth import Action
from core.metrics import results
from core.metrics.registry import METRICS, higher_is_better
from core.metrics.scoring import start_scoring
from dashboard.context import current_user, owner, require_page
from dashboard.widgets import DELTA_COLOR, conversation, response, user_errors


def render() -> None:
    user, o = current_user(), owner()
    st.title("Metrics")
    st.caption("Task metrics of each model version on a held-out split, with bootstrap confidence intervals, "
               "and its paired difference from the base model on the same prompts.")
    if user.may(Action.GENERATE):
        with st.expander("Score a generation set", expanded=not results.scored_sets(o.store, user)):
            _score_form()
        _running_scores()
    sets = results.scored_sets(o.store, user)
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
        res = results.latest(o.store, user, chosen, o.settings.metrics)
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
            _overview(res, metrics, shown)
        with deltas:
            _deltas(res, metrics, shown)
        with trend:
            _trend(dataset, res, metrics, sets)
        with drill:
            _examples(res, metrics, shown)
        with export:
            _exports(res)


def _score_form() -> None:
    user, o = current_user(), owner()
    done = [s for s in serving.list_sets(o.store, user) if s["status"] == "succeeded" and s["n_outputs"]]
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
            job = start_scoring(o.store, o.jobs, user, set_id, picked or None, o.settings.metrics)
            st.success(f"Scoring started ({job}); results appear below when it finishes.")


@st.fragment(run_every="2s")
def _running_scores() -> None:
    user, o = require_page(Action.METRICS_VIEW), owner()
    live = [j for j in o.jobs.list(user, "score") if j["status"] in ("queued", "running")]
    for job in live:
        progress = [e for e in o.jobs.history(user, job["job_id"], "progress")]
        last = progress[-1] if progress else {"done": 0, "total": 1}
        set_id = json.loads(job["config"])["set_id"]
        st.progress(last["done"] / max(1, last["total"]),
                    text=f"Scoring {set_id}: {last['done']} of {last['total']} (variant, metric) series")
    failed = [j for j in o.jobs.list(user, "score")[:3] if j["status"] == "failed"]
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
    st.caption(f"{res.name} · {origin} · {n} examples · base model {res.base_model} · summary computed "
               f"{res.computed_at:%Y-%m-%d %H:%M:%S}, {res.settings.get('bootstrap_rounds')} bootstrap rounds, "
               f"{int(round(100 * res.settings.get('confidence', 0.95)))}% intervals")
    primary = res.primary
    cols = st.columns(max(1, min(4, len(res.names))))
    base = res.summary[(res.summary["variant"] == "base") & (res.summary["metric"] == primary)]
    for col, (variant, row) in zip(cols, res.summary[res.summary["metric"] == primary].set_index("variant")
                                   .iterrows()):
        delta = res.deltas[(res.deltas["variant"] == variant) & (res.deltas["metric"] == primary)]
        text = None
        if len(delta) and len(base):
            d = delta.iloc[0]
            text = f"{d['delta']:+.3f} vs base" + (" (significant)" if d["significant"] else " (n.s.)")
        col.metric(f"{primary} · {res.label(variant)}", f"{row['mean']:.3f}", text,
                   delta_color=DELTA_COLOR[higher_is_better(primary)],
                   help=f"{int(round(100 * res.settings.get('confidence', 0.95)))}% CI {row['lo']:.3f} to "
                        f"{row['hi']:.3f} over {int(row['n'])} examples.")
    with st.expander("The verdict in words"):
        for line in results.verdict(res):
            st.text(f"• {line}")
        note = results.comparisons_note(res)
        if note:
            st.caption(note)


def _named(res: results.SetMetrics, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(version=frame["variant"].map(res.label))


def _overview(res: results.SetMetrics, metrics: list[str], shown: list[str]) -> None:
    frame = _named(res, res.summary[res.summary["metric"].isin(metrics) & res.summary["variant"].isin(shown)])
    if frame.empty:
        st.info("Nothing selected.")
        return
    for metric in metrics:
        part = frame[frame["metric"] == metric]
        about = METRICS[metric].help if metric in METRICS else "share of problems solved by one of k samples"
        st.markdown(f"**{metric}** — {about}")
        base = alt.Chart(part).encode(y=alt.Y("version:N", title=None, sort=list(part["version"]),
                                            axis=alt.Axis(labelLimit=320)))
        chart = (base.mark_rule(strokeWidth=3).encode(x=alt.X("lo:Q", title=metric, scale=alt.Scale(zero=False)),
                                                     x2="hi:Q")
                 + base.mark_point(filled=True, size=90).encode(x="mean:Q", tooltip=["version", "mean", "lo", "hi", "n"]))
        st.altair_chart(chart, width="stretch")
    st.dataframe(frame[["version", "metric", "mean", "lo", "hi", "n", "metric_version"]], hide_index=True,
                 width="stretch", column_config={c: st.column_config.NumberColumn(format="%.4f")
                                                 for c in ("mean", "lo", "hi")})


def _deltas(res: results.SetMetrics, metrics: list[str], shown: list[str]) -> None:
    frame = _named(res, res.deltas[res.deltas["metric"].isin(metrics) & res.deltas["variant"].isin(shown)])
    if frame.empty:
        st.info("No difference to show: the set needs the base and at least one other version.")
        return
    frame = frame.assign(label=frame["version"] + " · " + frame["metric"],
                         verdict=frame.apply(lambda r: r["direction"] if r["significant"] else "not significant",
                                             axis=1))
    base = alt.Chart(frame).encode(y=alt.Y("label:N", title=None, axis=alt.Axis(labelLimit=360)))
    colors = alt.Scale(domain=["better", "worse", "higher", "lower", "not significant"],
                       range=["#2e7d32", "#c62828", "#1565c0", "#6a1b9a", "#9e9e9e"])
    chart = (base.mark_rule(strokeWidth=3).encode(x=alt.X("lo:Q", title="difference from the base (paired)"),
                                                 x2="hi:Q", color=alt.Color("verdict:N", scale=colors))
             + base.mark_point(filled=True, size=90).encode(x="delta:Q", color=alt.Color("verdict:N", scale=colors),
                                                            tooltip=["version", "metric", "delta", "lo", "hi", "p",
                                                                     "p_holm", "p_bh", "n"])
             + alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q"))
    st.altair_chart(chart, width="stretch")
    st.dataframe(frame[["version", "metric", "delta", "lo", "hi", "p", "p_holm", "p_bh", "significant",
                        "direction", "n"]], hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in ("delta", "lo", "hi", "p", "p_holm", "p_bh")})
    st.caption("Intervals: paired bootstrap over examples. p: paired sign-flip permutation test; p_holm and p_bh "
               "adjust for every comparison on this page. For lower-is-better metrics (ter) a negative difference "
               "is better; length (words) is descriptive: higher or lower, not better or worse.")


def _trend(dataset: str, res: results.SetMetrics, metrics: list[str], sets: list[dict]) -> None:
    user, o = current_user(), owner()
    metric = st.selectbox("Metric", metrics or res.metrics, key="trend_metric")
    part = results.trend(o.store, user, dataset, o.settings.metrics, metric, sets)
    if part["set_id"].nunique() < 2:
        st.info(f"Only one scored set of {dataset} so far: the trend appears once a later version is scored "
                "on the same split.")
    if part.empty:
        return
    base = alt.Chart(part).encode(x=alt.X("created_at:T", title="generation set"),
                                  color=alt.Color("name:N", title="version"))
    chart = (base.mark_rule(strokeWidth=2).encode(y=alt.Y("lo:Q", title=metric, scale=alt.Scale(zero=False)),
                                                 y2="hi:Q")
             + base.mark_line(point=True).encode(y="mean:Q", tooltip=["set_name", "name", "mean", "lo", "hi", "delta",
                                                                      "significant"]))
    st.altair_chart(chart, width="stretch")
    st.dataframe(part[["set_name", "created_at", "name", "mean", "lo", "hi", "delta", "significant"]],
                 hide_index=True, width="stretch")


def _examples(res: results.SetMetrics, metrics: list[str], shown: list[str]) -> None:
    user, o = current_user(), owner()
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
    metric = c1.selectbox("Metric", metrics or res.metrics, key="drill_metric")
    others = [v for v in shown if v != "base"] or shown
    variant = c2.selectbox("Version", others, format_func=res.label, key="drill_variant")
    order = c3.selectbox("Show", list(results.ORDERS), format_func=results.ORDERS.get, key="drill_order")
    limit = c4.number_input("How many", 1, 50, 5, key="drill_n")
    rows = results.examples(o.store, user, res.set_id, metric, variant, order, int(limit))
    if not rows:
        st.info("No scored examples for this choice.")
        return
    scored = "tests_pass" if metric.startswith("pass@") else metric  # pass@k is per problem; its samples pass or not
    for ex in rows:
        with st.container(border=True):
            st.markdown(f"**Prompt {ex['prompt_idx']}**")
            conversation(ex["messages"])
            if ex["reference"]:
                st.caption("Reference answer")
                st.text(ex["reference"])
            for col, out in zip(st.columns(len(ex["outputs"])), ex["outputs"]):
                with col:
                    score = "–" if out["value"] is None else f"{out['value']:.3f}"
                    st.markdown(f"**{res.label(out['variant_id'])}** · {scored} {score}")
                    response(out["output"])


def _exports(res: results.SetMetrics) -> None:
    user, o = current_user(), owner()
    c1, c2 = st.columns(2)
    table = c1.selectbox("Table", list(results.TABLES), key="metrics_export_table",
                         help="summary: means with CIs; deltas: differences from the base with p-values; scores: "
                              "every per-example score.")
    fmt = c2.radio("Format", ["csv", "parquet"], horizontal=True, key="metrics_export_fmt")
    with user_errors():
        data, name, mime = results.export(o.store, user, res, fmt, table)
        st.download_button(f"Download {name}", data, file_name=name, mime=mime, icon=":material/download:")
        report, rname, rmime = results.export(o.store, user, res, "html")
        st.download_button("Download the HTML report", report, file_name=rname, mime=rmime,
                           icon=":material/description:")
