"""The read-only views of a generation set: sanity flags, serving parity, outputs side by side.

Labeled by variant: only the Generations page (engineers and leads) draws them. Everything a
model wrote goes through st.text, so markup in an output never renders.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import serving
from dashboard.context import current_user, get_owner
from dashboard.widgets import conversation


def sanity_view(set_id: str, names: dict) -> None:
    user, owner = current_user(), get_owner()
    st.subheader("Sanity checks")
    results = serving.sanity(owner.store, user, set_id)
    speed = {r["variant_id"]: r for r in serving.throughput(owner.store, user, set_id)}
    rows = [{"variant": names.get(s.variant_id, s.variant_id), "outputs": s.n,
             "hit max_tokens": f"{s.rate('runaway'):.0%}", "empty": f"{s.rate('empty'):.0%}",
             "repeat the prompt": f"{s.rate('repeats_prompt'):.0%}",
             "mean tokens out": round(speed.get(s.variant_id, {}).get("mean_tokens_out") or 0, 1),
             "flags": len(s.flags)} for s in results]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for s in results:
        for flag in s.flags:
            st.warning(f"{names.get(s.variant_id, s.variant_id)}: {flag}")
    if not any(s.flags for s in results):
        st.success("No variant is flagged: few runaways, no empty outputs, no echoed prompts.")


def parity_view(set_id: str, names: dict) -> None:
    user, owner = current_user(), get_owner()
    st.subheader("Serving parity")
    results = serving.parity_results(owner.store, user, set_id)
    record = serving.get_set(owner.store, user, set_id)
    if not results:
        st.caption(serving.parity_note(record))
        return
    for p in results:
        label = names.get(p["variant_id"], p["variant_id"])
        summary = (f"{label}: {p['exact']}/{p['n']} greedy outputs identical between {p['backend']} and "
                   f"{p['reference']} · mean common prefix {p['mean_common_prefix']:.1f} of "
                   f"{p['detail'].get('mean_length') or 0:.1f} tokens")
        if p["exact"] == p["n"]:
            st.success(summary)
        else:
            st.error(summary + " — outputs differ by backend: do not rate or score until this is explained.")
            first = p["detail"].get("first_divergence") or {}
            if first:
                st.caption(f"First divergence: prompt {first['prompt_idx']}, token {first['position']}. Agreed text:")
                st.text(first["agreed"])
                c1, c2 = st.columns(2)
                c1.caption(f"{p['backend']} continues")
                c1.text(first["served"])
                c2.caption(f"{p['reference']} continues")
                c2.text(first["reference"])


def side_by_side(set_id: str, names: dict) -> None:
    user, owner = current_user(), get_owner()
    st.subheader("Outputs side by side")
    prompts = serving.prompts_of(owner.store, user, set_id)
    rows = serving.outputs(owner.store, user, set_id)
    done = sorted({r["prompt_idx"] for r in rows})
    idx = st.selectbox("Prompt", done, key=f"prompt-{set_id}",
                       format_func=lambda i: f"#{i} · {prompts[i]['messages'][-1]['content'][:80]}")
    prompt = prompts[idx]
    conversation(prompt["messages"])
    if prompt.get("reference"):
        st.caption("Reference answer")
        st.text(prompt["reference"])
    shown = [r for r in rows if r["prompt_idx"] == idx]
    for col, r in zip(st.columns(max(1, len(shown))), shown):
        with col:
            st.markdown(f"**{names.get(r['variant_id'], r['variant_id'])}**")
            st.text(r["output"] or "(empty)")
            st.caption(f"{r['tokens_out']} tokens · {r['finish_reason']} · {r['backend']} · "
                       f"{r['latency_ms']:.0f} ms batch")
