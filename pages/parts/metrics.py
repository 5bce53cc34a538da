"""The views of a set's stored metric summary on the Metrics page: per-metric intervals, the
differences from the base, the trend across scored sets, the extreme examples, exports.

Labeled by model version: only leads and engineers see them. Model output goes through
dashboard.widgets.response (formatted, inert).
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.metrics import results
from core.metrics.registry import METRICS
from dashboard.context import current_user, get_owner
from dashboard.widgets import conversation, response, user_errors


def _named(res: results.SetMetrics, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(version=frame["variant"].map(res.label))


def overview(res: results.SetMetrics, metrics: list[str], shown: list[str]) -> None:
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


def differences(res: results.SetMetrics, metrics: list[str], shown: list[str]) -> None:
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
    st.caption("p_holm: the p-value adjusted over the tested family (Bonferroni; empty where a metric is descriptive "
               "or not declared by the dataset); p_bh: Benjamini-Hochberg. For lower-is-better metrics (ter) a "
               "negative difference is better; length (words) is descriptive: higher or lower, not better or worse.")


def trend(dataset: str, res: results.SetMetrics, metrics: list[str], sets: list[dict]) -> None:
    user, owner = current_user(), get_owner()
    metric = st.selectbox("Metric", metrics or res.metrics, key="trend_metric")
    part = results.trend(owner.store, user, dataset, owner.settings.metrics, metric, sets)
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


def examples(res: results.SetMetrics, metrics: list[str], shown: list[str]) -> None:
    user, owner = current_user(), get_owner()
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
    ranked = [m for m in metrics or res.metrics if m in res.per_example]
    if not ranked:
        st.info("The metrics shown are corpus-level (one score per set): no single example has a score to rank.")
        return
    metric = c1.selectbox("Metric", ranked, key="drill_metric")
    others = [v for v in shown if v != "base"] or shown
    variant = c2.selectbox("Version", others, format_func=res.label, key="drill_variant")
    order = c3.selectbox("Show", list(results.ORDERS), format_func=results.ORDERS.get, key="drill_order")
    limit = c4.number_input("How many", 1, 50, 5, key="drill_n")
    rows = results.examples(owner.store, user, res.set_id, metric, variant, order, int(limit))
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


def exports(res: results.SetMetrics) -> None:
    user, owner = current_user(), get_owner()
    c1, c2 = st.columns(2)
    table = c1.selectbox("Table", list(results.TABLES), key="metrics_export_table",
                         help="summary: means with CIs; deltas: differences from the base with p-values; scores: "
                              "every per-example score.")
    fmt = c2.radio("Format", ["csv", "parquet"], horizontal=True, key="metrics_export_fmt")
    with user_errors():
        data, name, mime = results.export(owner.store, user, res, fmt, table)
        st.download_button(f"Download {name}", data, file_name=name, mime=mime, icon=":material/download:")
        report, rname, rmime = results.export(owner.store, user, res, "html")
        st.download_button("Download the HTML report", report, file_name=rname, mime=rmime,
                           icon=":material/description:")
