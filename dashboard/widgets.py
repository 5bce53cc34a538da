"""Shared widgets. Anything written by a model or a dataset is shown as inert text."""

from __future__ import annotations

from contextlib import contextmanager

import pandas as pd
import streamlit as st

from core.errors import DatasetError, TuneboardError

ROLE_ICONS = {"system": ":material/settings:", "user": ":material/person:", "assistant": ":material/smart_toy:"}


def conversation(messages: list[dict]) -> None:
    """A chat example; content goes through st.text, so HTML or markdown in it never renders."""
    for m in messages:
        with st.chat_message(m["role"], avatar=ROLE_ICONS.get(m["role"])):
            st.caption(m["role"])
            st.text(m["content"])


@contextmanager
def user_errors():
    """Turn a core error into st.error and keep the page serving."""
    try:
        yield
    except DatasetError as exc:
        st.error(exc.summary)
        problems_table(exc.problems)
    except TuneboardError as exc:
        st.error(str(exc))


def problems_table(problems) -> None:
    if not problems:
        st.success("No problems found.")
        return
    frame = pd.DataFrame([{"severity": p.severity, "line": p.line, "field": p.field, "problem": p.message,
                           "code": p.code, "file": p.file} for p in problems])
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={"line": st.column_config.NumberColumn(format="%d")})


def report_summary(report) -> None:
    cols = st.columns(5)
    cols[0].metric("Rows", report.rows)
    cols[1].metric("Valid examples", report.valid)
    cols[2].metric("Errors", len(report.errors))
    cols[3].metric("Warnings", len(report.warnings))
    cols[4].metric("Exact / near duplicates", f"{report.duplicates} / {report.near_duplicates}")
    tok = report.tokens or {}
    if tok.get("available"):
        st.markdown(f"**Tokens** with the `{tok['tokenizer']}` chat template: min {tok['min']}, median "
                    f"{tok['median']}, p95 {tok['p95']}, max {tok['max']}; **{tok['truncated']}** over "
                    f"max_seq_len {tok['max_seq_len']}.")
    elif tok:
        st.caption("Token statistics unavailable: the base model's tokenizer could not be loaded.")
    if report.splits:
        leak = report.leakage or {}
        st.markdown("**Split** " + " · ".join(f"{k}: {v}" for k, v in report.splits.items())
                    + " — **leakage** train↔test exact " + str(leak.get("train_test_exact", 0))
                    + ", near " + str(leak.get("train_test_near", 0))
                    + "; train↔validation exact " + str(leak.get("train_validation_exact", 0))
                    + ", near " + str(leak.get("train_validation_near", 0)))
