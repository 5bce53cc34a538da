"""Results (lead, engineer): the verdict with its uncertainty, agreement, rater quality,
exclusions, the lead's unblinded drill-down and exports. Every figure shown is a stored result."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.auth import Action
from core.review import pairs, results, stats
from dashboard.context import current_user, get_owner
from dashboard.widgets import conversation, plain, response, user_errors
from pages.parts import judges as judge_parts
from pages.parts import results as parts
from pages.parts.results import fmt


def render() -> None:
    user, owner = current_user(), get_owner()
    st.title("Results")
    sets = pairs.list_pair_sets(owner.store, user)
    if not sets:
        st.info("No pair sets yet: create one on the Review page.")
        return
    chosen = st.selectbox("Pair set", [s["pair_set_id"] for s in sets], key="results_set",
                          format_func=lambda i: next(f"{s['name']} · {i}" for s in sets if s["pair_set_id"] == i))
    with user_errors():
        res = results.latest(owner.store, user, chosen, owner.settings.review)
        if res is None:
            st.info("No votes yet. Results appear here as soon as raters vote.")
            return
        _summary(res)
        ladder_tab, comp_tab, agree_tab, rater_tab, pairs_tab, judge_tab, export_tab = st.tabs(
            ["Ladder", "Comparisons", "Agreement", "Raters", "Pairs", "Judge vs experts", "Export"])
        with ladder_tab:
            parts.ladder(res)
        with comp_tab:
            parts.comparisons(res)
        with agree_tab:
            parts.agreement(res)
        with rater_tab:
            _raters(res)
        with pairs_tab:
            _drill_down(chosen)
        with judge_tab:
            judge_parts.beside_experts(chosen)
        with export_tab:
            _exports(res)


def _summary(res: results.Results) -> None:
    user, owner = current_user(), get_owner()
    pb = res.position_bias
    cols = st.columns(5)
    cols[0].metric("Prompts", "–" if res.n_prompts is None else res.n_prompts,
                   help="The unit of analysis: each prompt counts once, however many raters voted on it.")
    ballots = int(res.comparisons["n"].sum()) if len(res.comparisons) else 0
    cols[1].metric("Votes", ballots, help=f"Votes on the compared pairs; {res.n_votes - ballots} more on gold pairs "
                   "only judge the raters (Raters tab).")
    cols[2].metric("Fleiss' κ", fmt(res.fleiss_kappa))
    cols[3].metric("Response 1 chosen", "–" if not pb.get("n") else f"{100 * pb['share_first']:.0f}%",
                   help="Share of decisive votes for the left response; far from 50% means position bias.")
    lead = res.leader
    flips = lead.get("flips")
    cols[4].metric("Flips to change the leader", "–" if flips is None or flips < 0 else flips,
                   help="The fewest votes whose flip would put another variant on top of the Bradley-Terry ladder.")
    for line in results.verdict(res):
        st.text(f"• {line}")
    st.caption(f"{stats.UNIT_RULE} {stats.TIE_RULE} 'Better' means the interval lies wholly on one side of 50%.")
    st.caption("Plan: " + results.plan_now(owner.store, user, res.pair_set_id, res, owner.settings.review).sentence())
    st.caption(f"Result {res.result_id}, computed {res.computed_at:%Y-%m-%d %H:%M:%S} from {res.n_prompts} prompts and "
               f"{ballots} votes (and {res.n_votes - ballots} on gold pairs)"
               + (f"; excluded raters: {', '.join(res.excluded)}" if res.excluded else "")
               + f"; {res.settings['bootstrap_rounds']} bootstrap rounds of prompts for the ladder, "
               f"{int(100 * res.settings['confidence'])}% intervals.")


def _raters(res: results.Results) -> None:
    user, owner = current_user(), get_owner()
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
                    pairs.set_exclusion(owner.store, user, res.pair_set_id, r, r in excluded, reason)
            st.rerun()


def _drill_down(pair_set_id: str) -> None:
    user, owner = current_user(), get_owner()
    if not user.may(Action.REVIEW_REVEAL):
        st.info("Single pairs with model names are for leads only.")
        return
    rows = pairs.pairs_revealed(owner.store, user, pair_set_id)
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
        st.caption(f"{v['rater']}: {v['outcome']} in {fmt(v['seconds'], 1)} s" +
                   (f" — {plain(v['rationale'])}" if v["rationale"] else ""))


def _exports(res: results.Results) -> None:
    """Downloads of the result on screen (not a newer one computed meanwhile)."""
    user, owner = current_user(), get_owner()
    c1, c2 = st.columns(2)
    tables = list(results.TABLES) + (["votes"] if user.may(Action.REVIEW_REVEAL) else [])
    table = c1.selectbox("Table", tables, key="export_table")
    fmt = c2.radio("Format", ["csv", "parquet"], horizontal=True, key="export_fmt")
    with user_errors():
        data, name, mime = results.export(owner.store, user, res.pair_set_id, owner.settings.review, fmt, table, res)
        st.download_button(f"Download {name}", data, file_name=name, mime=mime, icon=":material/download:")
        report, rname, rmime = results.export(owner.store, user, res.pair_set_id, owner.settings.review, "html", res=res)
        st.download_button("Download the HTML report", report, file_name=rname, mime=rmime,
                           icon=":material/description:")
