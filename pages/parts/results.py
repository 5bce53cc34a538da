"""The Results page's statistics tabs: the Bradley-Terry ladder, the pairwise comparisons and agreement."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.review import results, stats


def fmt(x, digits: int = 3) -> str:
    """A figure for a metric tile; a dash where there is none."""
    return "–" if x is None or (isinstance(x, float) and pd.isna(x)) else f"{x:.{digits}f}"


def ladder(res: results.Results) -> None:
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


def comparisons(res: results.Results) -> None:
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


def agreement(res: results.Results) -> None:
    c1, c2 = st.columns(2)
    c1.metric("Fleiss' κ (all raters)", fmt(res.fleiss_kappa))
    c2.metric("Krippendorff's α (nominal)", fmt(res.krippendorff_alpha))
    if res.agreement.empty:
        st.info("Cohen's κ needs two raters who rated the same pairs.")
    else:
        st.dataframe(res.agreement, hide_index=True, width="stretch")
    st.caption("Labels: which side won, tie, or both bad. κ near 0 is chance agreement; above 0.6 is substantial.")
