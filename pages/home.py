"""Home (lead, engineer): the current best version and its verdicts at a glance — task metrics
against the base with significance, the blind-review results it took part in, and its
regression gate."""

from __future__ import annotations

import json
from datetime import datetime

import streamlit as st

from core.auth import Action
from core.metrics import results
from core.metrics.registry import higher_is_better
from core.regression import gate as gates
from core.regression import runs
from core.review.results import pct
from dashboard.context import current_user, get_owner
from dashboard.widgets import DELTA_COLOR, plain, user_errors


def _background_problem(owner, user) -> None:
    """Engineers see a failing follow-up pass of the owner (ingest, schedules, sweeps, pipelines)."""
    monitor = owner.monitor
    if monitor is None or not monitor.last_error or not user.may(Action.JOBS_RUN):
        return
    since = datetime.fromtimestamp(monitor.last_error_at).strftime("%Y-%m-%d %H:%M:%S")
    st.error(f"The background pass (event ingest, schedules, sweeps, pipelines) failed at {since}: "
             f"{plain(monitor.last_error)}. It is retried every second; the server log has the traceback, and "
             "/api/v1/health reports it until a pass succeeds.", icon=":material/error:")


def render() -> None:
    user, owner = current_user(), get_owner()
    st.title("Home")
    _background_problem(owner, user)
    sets = results.scored_sets(owner.store, user)
    if not sets:
        st.info("Nothing is scored yet. The path to a verdict: import data (Data), fine-tune (Train), generate the "
                "test split with the base and the fine-tune (Generations), score it (Metrics), and have raters "
                "compare blind pairs (Review).")
        return
    datasets = sorted({s["dataset"] for s in sets})
    dataset = st.selectbox("Task (dataset)", datasets, key="home_dataset") if len(datasets) > 1 else datasets[0]
    with user_errors():
        best = results.best_version(owner.store, user, owner.settings.metrics, dataset, sets)
    if best is None:
        st.info(f"No fine-tuned version of {dataset} has been scored against its base yet.")
        return
    res: results.SetMetrics = best["results"]
    st.subheader(f"Best version: {best['name']}")
    src = res.source
    st.caption(f"Leads on {best['primary']} in the newest scored set, {plain(res.name)} ({src.get('dataset', '')} "
               f"{src.get('version_id', '')} {src.get('split', '')} split, {int(res.summary['n'].max())} examples), "
               f"scored {res.computed_at:%Y-%m-%d %H:%M}.")
    _metric_cards(best)
    st.markdown("**Task metrics vs the base**")
    lines = [line for line in results.verdict(res) if line.startswith(res.label(best["variant"]))]
    for line in lines or ["No difference from the base computed (the set has no base outputs)."]:
        st.text(f"• {line}")
    note = results.comparisons_note(res)
    if note:
        st.caption(note)
    st.markdown("**Blind review**")
    if not best["review"]:
        st.text("• No blind-review results that include this version yet (Review page: create a pair set).")
    for r in best["review"]:
        word = ("better" if r["win_rate"] > 0.5 else "worse") if r["significant"] else "no clear difference"
        st.text(f"• {r['name']} vs {r['other']}: {word} — win rate {pct(r['win_rate'])} over {r['prompts']} prompts "
                f"(CI {pct(r['win_lo'])}–{pct(r['win_hi'])}, ties as half; {r['n']} votes), p = {r['p']:.3g}; "
                f"computed {r['computed_at']:%Y-%m-%d %H:%M}.")
    _gate(best["variant"])


def _gate(variant: str) -> None:
    user, owner = current_user(), get_owner()
    st.markdown("**Regression gate**")
    gate = runs.latest_gates(owner.store, user).get(variant)
    if gate is None:
        st.text("• The general-capability suite has not been run on this version yet (Regression page).")
        return
    detail = json.loads(gate["detail"])
    st.text(f"• {gate['verdict']} against {gate['baseline']} (suite run {gate['set_id']}, "
            f"{gate['computed_at']:%Y-%m-%d %H:%M}): all items {100 * detail['overall']['base_acc']:.0f}% -> "
            f"{100 * detail['overall']['tuned_acc']:.0f}%.")
    for reason in detail["reasons"]:
        if not reason.startswith("all items (pooled)"):  # the pooled verdict comes next, whatever it is
            st.text(f"  {reason}")
    for line in gates.headline(detail):
        st.text(f"  {line}")


def _metric_cards(best: dict) -> None:
    res: results.SetMetrics = best["results"]
    variant = best["variant"]
    shown = res.metrics[:4]
    for col, metric in zip(st.columns(max(1, len(shown))), shown):
        mine = res.summary[(res.summary["variant"] == variant) & (res.summary["metric"] == metric)]
        if mine.empty:
            continue
        row = mine.iloc[0]
        delta = res.deltas[(res.deltas["variant"] == variant) & (res.deltas["metric"] == metric)]
        text = None
        if len(delta):
            d = delta.iloc[0]
            text = f"{d['delta']:+.3f} vs base · " + ("significant" if d["significant"] else "not significant")
        col.metric(metric, f"{row['mean']:.3f}", text, delta_color=DELTA_COLOR[higher_is_better(metric)],
                   help=f"{int(round(100 * res.settings.get('confidence', 0.95)))}% CI {row['lo']:.3f} to "
                        f"{row['hi']:.3f}; adjusted p of the difference (Bonferroni over the declared metrics) "
                        + (f"{delta.iloc[0]['p_holm']:.3g}" if len(delta) and delta.iloc[0]['p_holm'] == delta.iloc[0]['p_holm']
                           else "–") + ".")
