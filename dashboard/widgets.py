"""Shared widgets. Anything written by a model or a dataset is shown as inert text."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from core.errors import DatasetError, TuneboardError
from core.fields import about
from core.lifecycle.progress import readable_bytes

# st.metric's delta colour by a metric's direction (core.metrics.registry.higher_is_better).
DELTA_COLOR = {True: "normal", False: "inverse", None: "off"}
# How a gate verdict is shown.
VERDICT_BANNER = {"pass": st.success, "fail": st.error, "inconclusive": st.warning}
ROLE_ICONS = {"system": ":material/settings:", "user": ":material/person:", "assistant": ":material/smart_toy:"}


def described_input(cls, name: str, value, *, label: str | None = None, where=st, key: str | None = None,
                    step=None, format: str | None = None):
    """The input of field `name` of a core dataclass (core/fields.py): its help, and its range or choices as
    the widget's bounds, so a form never allows what core refuses (or refuses what core allows)."""
    spec = about(cls, name)
    label = label or name
    if spec.choices:
        return where.selectbox(label, spec.choices, index=spec.choices.index(value), help=spec.help, key=key)
    if isinstance(value, bool):
        return where.checkbox(label, value=value, help=spec.help, key=key)
    if isinstance(value, int):
        return int(where.number_input(label, min_value=None if spec.min is None else int(spec.min),
                                      max_value=None if spec.max is None else int(spec.max), value=value,
                                      step=step or 1, help=spec.help, key=key))
    return float(where.number_input(label, min_value=None if spec.min is None else float(spec.min),
                                    max_value=None if spec.max is None else float(spec.max), value=float(value),
                                    step=step or 0.01, format=format or "%.3f", help=spec.help, key=key))


def job_progress(what: str, job_id: str, progress: dict | None, in_bytes: bool = False) -> None:
    """A running job's last progress event (core.jobs Jobs.progress_of) as a bar: what, the job, the stage,
    how much of how much (bytes or items)."""
    last = progress or {"stage": "starting", "done": 0, "total": 0}
    amount = readable_bytes if in_bytes else str
    st.progress(min(1.0, last["done"] / last["total"]) if last["total"] else 0.0,
                text=f"{what} ({job_id}): {last['stage']}, {amount(last['done'])} of {amount(last['total'])}")


def conversation(messages: list[dict]) -> None:
    """A chat example; content goes through st.text, so HTML or markdown in it never renders."""
    for m in messages:
        with st.chat_message(m["role"], avatar=ROLE_ICONS.get(m["role"])):
            st.caption(m["role"])
            st.text(m["content"])


def plain(text: object) -> str:
    """Free text written by a person (a reason, a rationale, instructions, a name) made literal for
    st.markdown, st.caption and the like: each character markdown, HTML or LaTeX could act on is
    backslash-escaped (CommonMark allows it for any ASCII punctuation), so tags, links, images,
    math and lists show as the characters typed and nothing loads ('?', ',', quotes stay as typed).
    Bare http(s) URLs stay clickable: Streamlit's GFM finds them in the text after parsing."""
    return _MARKDOWN_ACTIVE.sub(r"\\\g<0>", str(text))


_MARKDOWN_ACTIVE = re.compile(r"[\\`*_{}\[\]()<>#+\-.!|$~:&=]")


def response(text: str) -> None:
    """A model output, formatted but inert (core.review.render): no HTML runs, nothing loads or links."""
    from core.review.render import inert_html

    if text.strip():
        st.html(inert_html(text))
    else:
        st.caption("(empty response)")


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


def loss_chart(events: list[dict]) -> None:
    """Training and validation loss against the step (Altair)."""
    import altair as alt

    rows = [{"step": e["step"], "loss": e["loss"], "series": "train"} for e in events if e["type"] == "train"]
    rows += [{"step": e["step"], "loss": e["eval_loss"], "series": "validation"} for e in events if e["type"] == "eval"]
    if not rows:
        st.caption("No loss reported yet.")
        return
    frame = pd.DataFrame(rows)
    chart = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("loss:Q", title="loss", scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None, scale=alt.Scale(domain=["train", "validation"], range=["#4c78a8", "#e45756"])),
        tooltip=["series", "step", alt.Tooltip("loss:Q", format=".4f")])
    st.altair_chart(chart, width="stretch")


def skipped_lines(job_id: str) -> None:
    """A warning when the owner skipped unreadable lines of this job's event file."""
    from dashboard.context import get_owner

    note = get_owner().jobs.skipped_note(job_id)
    if note:
        st.warning(note, icon=":material/report:")


def run_progress(job: dict, events: list[dict]) -> None:
    """Status line, progress bar, ETA, tokens/s and warnings of a training run."""
    train = [e for e in events if e["type"] == "train"]
    status = job["status"]
    if train:
        last = train[-1]
        done = last["step"] / max(1, last["max_steps"])
        eta = f" · ETA {last['eta_s']:.0f} s" if status == "running" else ""
        st.progress(min(1.0, done), text=f"{status} · step {last['step']}/{last['max_steps']} · epoch "
                    f"{last['epoch']:.2f} · {last['tokens_per_s']:,.0f} tokens/s{eta}")
    else:
        st.progress(0.0, text=f"{status} · starting (loading the model) ...")
    evals = [e for e in events if e["type"] == "eval"]
    if evals:
        best = min(evals, key=lambda e: e["eval_loss"])
        st.caption(f"Best validation loss {best['eval_loss']:.4f} at step {best['step']}.")
    for w in [e for e in events if e["type"] == "warning"][-2:]:
        st.warning(w["message"])
    skipped_lines(job["job_id"])
    if job["error"]:
        st.error("The run failed:")
        st.code(job["error"], language=None)
