"""Review (lead, engineer): make pair sets from generations, assign raters, watch progress,
withdraw pairs whose responses name their model, mark gold pairs."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core import serving
from core.auth import Action
from core.fields import about
from core.review import pairs
from dashboard.context import current_user, get_owner
from dashboard.widgets import described_input, response, user_errors


def render() -> None:
    user, owner = current_user(), get_owner()
    st.title("Review")
    st.caption("Blind A/B pairs for domain experts: sides are shuffled per pair and never shown to raters.")
    sets = pairs.list_pair_sets(owner.store, user)
    with st.expander("New pair set", expanded=not sets):
        _new_pair_set()
    if not sets:
        st.info("No pair sets yet.")
        return
    st.dataframe(pd.DataFrame(sets), hide_index=True, width="stretch")
    chosen = st.selectbox("Pair set", [s["pair_set_id"] for s in sets], key="review_set",
                          format_func=lambda i: next(f"{s['name']} · {i}" for s in sets if s["pair_set_id"] == i))
    ps = pairs.get_pair_set(owner.store, user, chosen)
    progress_tab, assign_tab, pairs_tab = st.tabs(["Progress", "Raters", "Pairs"])
    with progress_tab:
        rows = pairs.progress(owner.store, user, chosen)
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        else:
            st.info("No rater is assigned yet: choose raters on the Raters tab.")
    with assign_tab:
        _assign_form(ps)
    with pairs_tab:
        _pairs_view(ps)


def _new_pair_set() -> None:
    user, owner = current_user(), get_owner()
    gen_sets = [s for s in serving.list_sets(owner.store, user)
                if s["n_outputs"] and json.loads(s["source"] or "{}").get("kind") != "judge"]
    if not gen_sets:
        st.warning("No generation set with outputs yet: generate the test split with base and adapters on the "
                   "Generations page first.")
        return
    gen_id = st.selectbox("Generation set", [s["set_id"] for s in gen_sets], key="ps_gen",
                          format_func=lambda i: next(f"{s['name']} · {i}" for s in gen_sets if s["set_id"] == i))
    variants = [v["variant_id"] for v in next(json.loads(s["variants"]) for s in gen_sets if s["set_id"] == gen_id)]
    raters = pairs.rater_accounts(owner.store, user)
    cfg = owner.settings.review
    # The design first, outside the form: the plan figure below follows each change.
    chosen = st.multiselect("Variants", variants, default=variants[:2] if len(variants) >= 2 else variants)
    c1, c2 = st.columns(2)
    design = c1.radio("Design", pairs.DESIGNS, help=about(pairs.PairSetSpec, "design").help, horizontal=True)
    baseline = c2.selectbox("Baseline", variants, index=variants.index("base") if "base" in variants else 0)
    picked = st.multiselect("Raters", raters, default=raters[:3])
    c1, c2 = st.columns(2)
    k = described_input(pairs.PairSetSpec, "raters_per_pair", min(cfg.raters_per_pair, max(1, len(picked) or 1)),
                        label="Raters per pair", where=c1)
    limit = described_input(pairs.PairSetSpec, "max_prompts", 0, label="Prompts (0 = all)", where=c2)
    spec = pairs.PairSetSpec(name="", generation_set_id=gen_id, variants=chosen, design=design, baseline=baseline,
                             raters=picked, raters_per_pair=int(k), max_prompts=int(limit))
    with user_errors():
        plan = pairs.plan_pair_set(owner.store, user, spec)
        if plan is not None:
            st.info(f"**Plan.** {plan.sentence()} A smaller true difference would often end as 'no clear "
                    "difference'; more prompts help more than more raters per prompt.", icon=":material/target:")
    with st.form("new_pair_set", border=False):
        name = st.text_input("Name (raters see it)", placeholder="Support replies, round 1")
        c1, c2 = st.columns(2)
        gold = described_input(pairs.PairSetSpec, "gold_rate", cfg.gold_rate, label="Gold rate", where=c1, step=0.05,
                               format="%.2f")
        seed = c2.number_input("Seed", 0, 2**31 - 1, 0, help="Seeds the left/right coin flips and the assignment.")
        instructions = st.text_area("Instructions for raters", help=about(pairs.PairSetSpec, "instructions").help,
                                    placeholder="Which reply would you rather send to the customer?")
        submitted = st.form_submit_button("Create pair set", type="primary")
    if submitted:
        spec = pairs.PairSetSpec(name=name, generation_set_id=gen_id, variants=chosen, design=design, baseline=baseline,
                                 raters=picked, raters_per_pair=int(k), gold_rate=float(gold), seed=int(seed),
                                 instructions=instructions, max_prompts=int(limit))
        with user_errors():
            pair_set_id = pairs.create_pair_set(owner.store, user, spec)
            st.success(f"Created {pair_set_id}" + (f" and assigned {len(picked)} raters." if picked else
                                                  "; assign raters on its Raters tab."))


def _assign_form(ps: dict) -> None:
    user, owner = current_user(), get_owner()
    raters = pairs.rater_accounts(owner.store, user)
    current = sorted({r["rater"] for r in pairs.progress(owner.store, user, ps["pair_set_id"])})
    with st.form("assign", border=False):
        picked = st.multiselect("Raters", raters, default=[r for r in current if r in raters])
        k = st.number_input("Raters per pair", 1, 100, int(ps["raters_per_pair"]))
        go = st.form_submit_button("Assign")
    st.caption("Votes already cast are kept; a rater taken off the list loses only unrated pairs, which go to "
               "the least-loaded raters.")
    if go:
        with user_errors():
            added = pairs.assign_raters(owner.store, user, ps["pair_set_id"], picked, int(k))
            st.success("New pairs per rater: " + ", ".join(f"{r} {n}" for r, n in added.items()))


def _pairs_view(ps: dict) -> None:
    user, owner = current_user(), get_owner()
    reveal = user.may(Action.REVIEW_REVEAL)
    if reveal:
        flagged = pairs.flagged_pairs(owner.store, user, ps["pair_set_id"])
        if flagged:
            st.warning(f"{len(flagged)} pair(s) contain words that may tell a rater which model wrote a response. "
                       "Withdraw those that give a side away.")
            st.dataframe(pd.DataFrame([{"pair": f["pair_id"], "words": ", ".join(f["identity_flags"]),
                                        "a": f["a"], "b": f["b"], "withdrawn": f["withdrawn"]} for f in flagged]),
                         hide_index=True, width="stretch")
    rows = pairs.pairs_blind(owner.store, user, ps["pair_set_id"])
    table = pd.DataFrame([{"pair": r["pair_id"], "gold": r["gold_better"] or "", "votes": r["votes"],
                           "flagged": r["flagged"], "withdrawn": r["withdrawn"]} for r in rows])
    st.dataframe(table, hide_index=True, width="stretch", height=240)
    pair_id = st.selectbox("Open pair", [r["pair_id"] for r in rows], key="review_pair")
    row = next(r for r in rows if r["pair_id"] == pair_id)
    left, right = st.columns(2)
    for col, side in ((left, "a"), (right, "b")):
        with col.container(border=True):
            st.markdown(f"**Side {side.upper()}**" + (" · gold answer" if row["gold_better"] == side else ""))
            response(row[f"{side}_text"])
    c1, c2, c3 = st.columns(3)
    generated_gold = bool(row["gold_better"]) and not (row["gold_source"] or "").startswith("marked")
    if generated_gold:
        c1.caption(f"Gold pair made by tuneboard: {row['gold_source']}.")
    else:
        better = c1.radio("Gold: the better side", ["a", "b"], horizontal=True, key="gold_side")
        if c1.button("Mark as gold"):
            with user_errors():
                pairs.mark_gold(owner.store, user, ps["pair_set_id"], pair_id, better)
                st.rerun()
    if row["gold_better"] and not generated_gold and c2.button("Unmark gold"):
        with user_errors():
            pairs.mark_gold(owner.store, user, ps["pair_set_id"], pair_id, None)
            st.rerun()
    if c3.button("Restore pair" if row["withdrawn"] else "Withdraw pair"):
        with user_errors():
            pairs.withdraw_pair(owner.store, user, ps["pair_set_id"], pair_id, not row["withdrawn"])
            st.rerun()
