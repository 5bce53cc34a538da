"""Results (lead, engineer): the verdict with its uncertainty, agreement, rater quality,
exclusions, the lead's unblinded drill-down and exports. Every figure shown is a stored result."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import streamlit as st

from core.auth import Action
from core.review import pairs, results, stats
from dashboard.context import current_user, owner
from dashboard.widgets import conversation, plain, response, user_errors


def _fmt(x, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and pd.isna(x)) else f"{x:.{digits}f}"


def render() -> None:
    user, o = current_user(), owner()
    st.title("Results")
    sets = pairs.list_pair_sets(o.store, user)
    if not sets:
        st.info("No pair sets yet: create one on the Review page.")
        return
    chosen = st.selectbox("Pair set", [s["pair_set_id"] for s in sets], key="results_set",
                          format_func=lambda i: next(f"{s['name']} · {i}" for s in sets if s["pair_set_id"] == i))
    with user_errors():
        res = results.latest(o.store, user, chosen, o.settings.review)
        if res is None:
            st.info("No votes yet. Results appear here as soon as raters vote.")
            return
        _summary(res)
        ladder_tab, comp_tab, agree_tab, rater_tab, pairs_tab, export_tab = st.tabs(
            ["Ladder", "Comparisons", "Agreement", "Raters", "Pairs", "Export"])
        with ladder_tab:
            _ladder(res)
        with comp_tab:
            _comparisons(res)
        with agree_tab:
            _agreement(res)
        with rater_tab:
            _raters(res)
        with pairs_tab:
            _drill_down(chosen)
        with export_tab:
            _exports(res)


def _summary(res: results.Results) -> None:
    user, o = current_user(), owner()
    pb = res.position_bias
    cols = st.columns(5)
    cols[0].metric("Prompts", "–" if res.n_prompts is None else res.n_prompts,
                   help="The unit of analysis: each prompt counts once, however many raters voted on it.")
    ballots = int(res.comparisons["n"].sum()) if len(res.comparisons) else 0
    cols[1].metric("Votes", ballots, help=f"Votes on the compared pairs; {res.n_votes - ballots} more on gold pairs "
                   "only judge the raters (Raters tab).")
    cols[2].metric("Fleiss' κ", _fmt(res.fleiss_kappa))
    cols[3].metric("Response 1 chosen", "–" if not pb.get("n") else f"{100 * pb['share_first']:.0f}%",
                   help="Share of decisive votes for the left response; far from 50% means position bias.")
    lead = res.leader
    flips = lead.get("flips")
    cols[4].metric("Flips to change the leader", "–" if flips is None or flips < 0 else flips,
                   help="The fewest votes whose flip would put another variant on top of the Bradley-Terry ladder.")
    for line in results.verdict(res):
        st.text(f"• {line}")
    st.caption(f"{stats.UNIT_RULE} {stats.TIE_RULE} 'Better' means the interval lies wholly on one side of 50%.")
    st.caption("Plan: " + results.plan_now(o.store, user, res.pair_set_id, res, o.settings.review).sentence())
    st.caption(f"Result {res.result_id}, computed {res.computed_at:%Y-%m-%d %H:%M:%S} from {res.n_prompts} prompts and "
               f"{ballots} votes (and {res.n_votes - ballots} on gold pairs)" + (f"; excluded raters: {', '.join(res.excluded)}" if res.excluded else "")
               + f"; {res.settings['bootstrap_rounds']} bootstrap rounds of prompts for the ladder, "
               f"{int(100 * res.settings['confidence'])}% intervals.")


def _ladder(res: results.Results) -> None:
    ladder = res.ladder
    if ladder.empty:
        st.info("The ladder needs votes between at least two variants.")
        return
    order = list(ladder["variant"])
    base = alt.Chart(ladder).encode(y=alt.Y("variant:N", sort=order, title=None))
    chart = base.mark_rule(strokeWidth=3).encode(x=alt.X("lo:Q", title="Bradley-Terry rating (Elo scale)",
                                                        scale=alt.Scale(zero=False)), x2="hi:Q") + \
        base.mark_point(filled=True, size=90).encode(x="rating:Q", tooltip=["variant", "rating", "lo", "hi", "rank",
                                                                            "rank_lo", "rank_hi", "n"])
    st.altair_chart(chart, width="stretch")
    st.dataframe(ladder, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.1f") for c in ("rating", "lo", "hi")})
    st.caption(f"n: votes involving the variant. {stats.TIE_RULE} Intervals and rank ranges come from resampling "
               "prompts, each with all its votes.")


def _comparisons(res: results.Results) -> None:
    comp = res.comparisons
    if comp.empty:
        st.info("No comparison has votes yet.")
        return
    comp = comp.assign(units=[results.units(c) for c in comp.to_dict("records")])
    chart = alt.Chart(comp.assign(label=comp["a"] + " vs " + comp["b"])).encode(y=alt.Y("label:N", title=None))
    st.altair_chart(
        chart.mark_rule(strokeWidth=3).encode(x=alt.X("lo:Q", title="win rate of the first over prompts (ties as half)",
                                                      scale=alt.Scale(domain=[0, 1])), x2="hi:Q")
        + chart.mark_point(filled=True, size=90).encode(x="rate:Q", tooltip=list(comp.columns))
        + alt.Chart(pd.DataFrame({"x": [0.5]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q"), width="stretch")
    st.dataframe(comp, hide_index=True, width="stretch")
    st.caption("rate: the first variant's win rate over prompts; lo–hi its interval; significant: the interval "
               "excludes 50%. rate_without_low/high: the rate with one rater left out (rater_low/high); "
               "raters_moving_verdict: raters without whom the verdict would change. flips_winner: fewest votes "
               "whose flip would change the winner; flips_significance: fewest that would change whether it is "
               "significant. more_prompts: prompts to add for 80% power at the rate seen so far. "
               + stats.TIE_RULE)


def _agreement(res: results.Results) -> None:
    c1, c2 = st.columns(2)
    c1.metric("Fleiss' κ (all raters)", _fmt(res.fleiss_kappa))
    c2.metric("Krippendorff's α (nominal)", _fmt(res.krippendorff_alpha))
    if res.agreement.empty:
        st.info("Cohen's κ needs two raters who rated the same pairs.")
    else:
        st.dataframe(res.agreement, hide_index=True, width="stretch")
    st.caption("Labels: which side won, tie, or both bad. κ near 0 is chance agreement; above 0.6 is substantial.")


def _raters(res: results.Results) -> None:
    user, o = current_user(), owner()
    st.dataframe(res.raters, hide_index=True, width="stretch")
    st.caption(stats.GOLD_RULE)
    if not user.may(Action.REVIEW_MANAGE):
        return
    raters = list(res.raters["rater"])
    with st.form("exclusions", border=False):
        excluded = st.multiselect("Exclude raters from every statistic", raters,
                                  default=[r for r in res.excluded if r in raters])
        reason = st.text_input("Reason (kept in the audit log)")
        go = st.form_submit_button("Apply and recompute")
    if go:
        with user_errors():
            for r in raters:
                if (r in excluded) != (r in res.excluded):
                    pairs.set_exclusion(o.store, user, res.pair_set_id, r, r in excluded, reason)
            st.rerun()


def _drill_down(pair_set_id: str) -> None:
    user, o = current_user(), owner()
    if not user.may(Action.REVIEW_REVEAL):
        st.info("Single pairs with model names are for leads only.")
        return
    rows = pairs.pairs_revealed(o.store, user, pair_set_id)
    table = pd.DataFrame([{"pair": r["pair_id"], "a": r["a"], "b": r["b"], "response 1": r["response_1"],
                           "gold": r["gold_better"] or "", "withdrawn": r["withdrawn"],
                           "votes": ", ".join(f"{v['rater']}:{v['outcome']}" for v in (r["votes"] or []))}
                          for r in rows])
    st.dataframe(table, hide_index=True, width="stretch", height=260)
    pair_id = st.selectbox("Open pair", [r["pair_id"] for r in rows], key="results_pair")
    row = next(r for r in rows if r["pair_id"] == pair_id)
    conversation(json.loads(row["messages"]))
    left, right = st.columns(2)
    for col, side in ((left, "a"), (right, "b")):
        with col.container(border=True):
            shown = "Response 1" if row["response_1"] == row[side] else "Response 2"
            st.markdown(f"**{row[side]}** · shown as {shown}")
            response(row[f"{side}_text"])
    for v in row["votes"] or []:
        st.caption(f"{v['rater']}: {v['outcome']} in {_fmt(v['seconds'], 1)} s" +
                   (f" — {plain(v['rationale'])}" if v["rationale"] else ""))


def _exports(res: results.Results) -> None:
    """Downloads of the result on screen (not a newer one computed meanwhile)."""
    user, o = current_user(), owner()
    c1, c2 = st.columns(2)
    tables = list(results.TABLES) + (["votes"] if user.may(Action.REVIEW_REVEAL) else [])
    table = c1.selectbox("Table", tables, key="export_table")
    fmt = c2.radio("Format", ["csv", "parquet"], horizontal=True, key="export_fmt")
    with user_errors():
        data, name, mime = results.export(o.store, user, res.pair_set_id, o.settings.review, fmt, table, res)
        st.download_button(f"Download {name}", data, file_name=name, mime=mime, icon=":material/download:")
        report, rname, rmime = results.export(o.store, user, res.pair_set_id, o.settings.review, "html", res=res)
        st.download_button("Download the HTML report", report, file_name=rname, mime=rmime,
                           icon=":material/description:")
