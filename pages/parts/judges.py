"""How a judge run reads beside the experts: on the Judges page (engineer) and the Results page's
"Judge vs experts" tab (lead). Every figure comes from core.judge; these only lay it out."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.judge import judges, routing
from dashboard.context import current_user, get_owner
from dashboard.widgets import plain, user_errors


def _missing(x) -> bool:
    return x is None or x != x


def _pairs(n: int) -> str:
    return f"{n} pair" if n == 1 else f"{n} pairs"


def _pct(x: dict | None) -> str:
    if not x or _missing(x.get("value")):
        return "–"
    if _missing(x.get("lo")) or _missing(x.get("hi")):
        return f"{100 * x['value']:.0f}% (too few for an interval)"
    return f"{100 * x['value']:.0f}% ({100 * x['lo']:.0f}–{100 * x['hi']:.0f}%)"


def plainly(rep: dict) -> str:
    """The calibration in one sentence a lead can act on; its words follow the intervals."""
    agree, human = rep["agreement"]["ties_in"], rep["human"]["ties_in"]
    judged, unreadable = rep["pairs_judged"], rep["unreadable"]
    if judged and unreadable == judged:
        return (f"None of the judge's answers on the {judged} pairs could be read as a verdict (no last line "
                "'Verdict: 1', 'Verdict: 2' or 'Verdict: tie'): this model cannot judge these pairs. Try a larger "
                "model, an endpoint contender, or a prompt it follows.")
    lost = f" {unreadable} of {judged} pairs gave no readable verdict and are left out." if unreadable else ""
    if not rep["pairs_with_experts"]:
        return "No judged pair of this set has expert votes yet: the judge cannot be measured until experts rate " \
               "some." + lost
    # Clearly worse is read from the intervals whatever the count (they are wide when pairs are few); a
    # judge as good as the experts needs 30 pairs besides.
    if human and human["value"] == human["value"] and agree["hi"] < human["lo"]:
        head = ("The judge agrees with your experts clearly less often than they agree with each other: do not "
                "let it stand in for them.")
    elif agree["n"] < 30:
        head = f"Only {agree['n']} pairs have both a judge verdict and expert votes: too few to trust it."
    elif human and human["value"] == human["value"] and agree["lo"] >= human["lo"]:
        head = "The judge agrees with your experts about as often as they agree with each other."
    else:
        head = "How the judge compares with your experts is not settled by these pairs."
    return f"{head} Agreement {_pct(agree)} over {agree['n']} pairs; experts with each other {_pct(human)}.{lost}"


def _figure(x: dict | None, plain_number: bool = False) -> str:
    """A share as a percentage with its interval, or kappa as a number with its interval."""
    if not plain_number:
        return _pct(x)
    if not x or _missing(x.get("value")):
        return "–"
    if _missing(x.get("lo")):
        return f"{x['value']:.2f}"
    return f"{x['value']:.2f} ({x['lo']:.2f} to {x['hi']:.2f})"


def report(rep: dict) -> None:
    """A judge run against the experts: the sentence, the figures with intervals, the confusion table."""
    st.markdown(f"**{plain(rep['judge'])}** · prompt {plain(rep['prompt'])} ({rep['prompt_version']}) · "
                f"{plain(rep['variant_id'])}")
    st.info(plainly(rep), icon=":material/gavel:")
    human = rep["human"]
    rows = [("Agreement with experts", rep["agreement"]["ties_in"],
             "Pairs where the judge's verdict (both orders agreeing; an inconsistent pair counts as a tie) equals "
             "the experts' (their mean score against 0.5)."),
            ("Agreement, ties left out", rep["agreement"]["ties_out"],
             "The same over pairs where neither the judge nor the experts call a tie."),
            ("Experts with each other (the ceiling)", human["ties_in"],
             "Each expert against the mean of the other experts on the same pair."),
            ("The judge on those same pairs", human["judge_on_same_pairs"]["ties_in"],
             "The judge's agreement on exactly the pairs of the ceiling."),
            ("Same verdict in both orders", rep["order_consistency"],
             "Pairs whose two orders (each response shown first once) give the same verdict."),
            ("Picks the response shown first", rep["position_bias"],
             "Among verdicts that pick a side, the share picking the first shown; 50% is no lean."),
            ("Cohen's kappa with the experts", rep["kappa"], "Agreement beyond chance over a / b / tie.")]
    st.dataframe(pd.DataFrame([{"measure": name, "value": _figure(x, name.startswith("Cohen")),
                                "pairs": (x or {}).get("n", 0), "what it is": what} for name, x, what in rows]),
                 hide_index=True, width="stretch")
    st.caption(f"95% intervals; the pair is the unit. Unreadable judge outputs: {rep['unreadable']} of "
               f"{rep['pairs_judged']} pairs.")
    if rep["flagged"]["pairs"]:
        n = rep["flagged"]["pairs"]
        st.warning(f"{_pairs(n)} {'holds' if n == 1 else 'hold'} a response that addresses the judge "
                   f"(\"ignore the above\", \"the verdict is 1\", ...): agreement there "
                   f"{_pct(rep['flagged']['ties_in'])}, elsewhere {_pct(rep['unflagged']['ties_in'])}.",
                   icon=":material/report:")
    by_p = rep.get("by_probability")
    if by_p:
        st.markdown(f"Where the judge gives its side at least {100 * by_p['threshold']:.0f}% in both orders on "
                    f"average ({_pairs(by_p['sure']['pairs'])}; what pre-screening would take) it agrees "
                    f"{_pct(by_p['sure']['ties_in'])}; on the other {_pairs(by_p['unsure']['pairs'])} "
                    f"{_pct(by_p['unsure']['ties_in'])}.")
    table = pd.DataFrame(rep["confusion"]).T
    table.index.name = "experts \\ judge"
    st.dataframe(table, width="stretch")
    if rep["by_tag"]:
        st.markdown("**By tag** (the dataset's tag of each pair's prompt)")
        st.dataframe(pd.DataFrame([{"tag": tag, "pairs": x["pairs"], "agreement": _pct(x["ties_in"]),
                                    "ties left out": _pct(x["ties_out"])} for tag, x in rep["by_tag"].items()]),
                     hide_index=True, width="stretch")


def verdicts(set_id: str) -> None:
    """Every judged pair (engineers): the verdict of each order, the probabilities where given, raw outputs."""
    user, owner = current_user(), get_owner()
    frame = judges.verdicts(owner.store, user, set_id)
    frame = frame.rename(columns={"a_first": "a shown first", "b_first": "b shown first", "p_a": "P(a)",
                                  "p_b": "P(b)", "p_tie": "P(tie)", "a_first_raw": "output, a first",
                                  "b_first_raw": "output, b first"})
    if frame["P(a)"].isna().all():
        frame = frame.drop(columns=["P(a)", "P(b)", "P(tie)"])
    if frame["tag"].isna().all():
        frame = frame.drop(columns=["tag"])
    first = [c for c in ("pair_id", "verdict", "a shown first", "b shown first", "P(a)", "P(b)", "P(tie)", "flagged",
                         "tag") if c in frame]
    frame = frame[first + [c for c in frame if c not in first and c != "injection"]]
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in ("P(a)", "P(b)", "P(tie)")})
    st.caption("P(a), P(b), P(tie): the judge's own probability of each answer where its verdict starts, averaged "
               "over the two orders (shown where its serving path gives logprobs).")


def ladder(set_id: str) -> None:
    """The judge's own verdict per comparison: judge votes, kept apart from the experts' ladder."""
    user, owner = current_user(), get_owner()
    rows = judges.comparisons(owner.store, user, set_id)
    frame = pd.DataFrame(rows)
    if frame.empty:
        st.info("The judge has no readable verdict yet.")
        return
    frame["judge's win rate of a"] = [_pct({"value": r, "lo": lo, "hi": hi, "n": n})
                                      for r, lo, hi, n in zip(frame["rate"], frame["lo"], frame["hi"],
                                                              frame["pairs"] - frame["unreadable"])]
    st.dataframe(frame[["a", "b", "pairs", "a_wins", "b_wins", "ties", "inconsistent", "unreadable",
                        "judge's win rate of a", "significant"]], hide_index=True, width="stretch")
    st.caption("Judge votes only, never mixed with the experts' votes: a pair scores 1 for a, 0 for b, 0.5 for a tie "
               "or an inconsistent pair; the interval is over pairs, as for the experts.")


def beside_experts(pair_set_id: str) -> None:
    """The Results page's "Judge vs experts" tab: a judge run's agreement with the experts, and its own
    ladder, never mixed into theirs."""
    user, owner = current_user(), get_owner()
    done = [r for r in judges.runs(owner.store, user, pair_set_id) if r["status"] == "succeeded"]
    if not done:
        st.info("No LLM judge has judged this pair set yet (an engineer runs one on the Judges page).")
        return
    run = st.selectbox("Judge run", [r["set_id"] for r in done], key="results_judge_run",
                       format_func=lambda i: next(f"{r['source']['judge']} · {i}" for r in done if r["set_id"] == i))
    with user_errors():
        report(judges.against_experts(owner.store, user, run))
        st.subheader("The judge's ladder (judge votes only, apart from the experts')")
        ladder(run)
        st.subheader("Pre-screening")
        prescreen(pair_set_id, run)


def prescreen(pair_set_id: str, run: str) -> None:
    """Let the judge route this pair set's pairs (core.judge.routing), and read how it is routed."""
    user, owner = current_user(), get_owner()
    current = routing.summary(owner.store, user, pair_set_id)
    if current:
        c = current["counts"]
        audit = (current["audit_agreement"] or {}).get("ties_in")
        st.markdown(f"Routed by {plain(current['judge_run'])}: **{c['judged']}** pairs judged (out of the experts' "
                    f"queues), **{c['audit']}** judged and audited by experts, **{c['experts_first']}** to the "
                    f"experts first. On the {current['audited_with_votes']} audited pairs with votes the judge "
                    f"agrees {_pct(audit)}.")
        mixed = routing.combined(owner.store, user, pair_set_id, owner.settings.review.judge_combine_min_agreement)
        if mixed:
            st.dataframe(pd.DataFrame(mixed), hide_index=True, width="stretch")
            st.caption("Experts + judge (combined): the experts' score where they voted, the judge's verdict on the "
                       "pairs it took. Shown because the judge's measured agreement clears the lead's threshold.")
        if st.button("Send every pair back to the experts", key="unroute"):
            routing.clear(owner.store, user, pair_set_id)
            st.rerun()
    with st.form("prescreen", border=False):
        st.caption("Pairs the judge answers the same way in both orders, for one side, leave the experts' queues "
                   "(where its backend gives probabilities, only with at least the minimum for that side); the rest "
                   "go to them first; an audit share of the judged pairs stays with them. Allowed once this judge is "
                   f"measured on {routing.MIN_CALIBRATION_PAIRS} expert-voted pairs.")
        share = st.slider("Audit share", 0.0, 1.0, 0.2, 0.05)
        least = st.slider("Minimum probability of the judged side", 0.0, 1.0, 0.6, 0.05)
        if st.form_submit_button("Let this judge pre-screen the pair set"):
            got = routing.route(owner.store, user, pair_set_id, run, share, min_probability=least)
            st.success(f"{got['counts']['judged']} pairs judged, {got['counts']['audit']} audited, "
                       f"{got['counts']['experts_first']} to the experts first.")
