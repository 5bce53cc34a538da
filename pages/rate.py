"""Rate (rater): one blind pair at a time, keyboard first.

Blindness: this page gets a `PairView` and nothing else. Widget keys are constants, the
pair's ticket lives only in server-side session state and callback arguments, and nothing
goes into the URL. Responses are shown as inert markdown.
"""

from __future__ import annotations

import streamlit as st

from core.errors import TuneboardError
from core.review.desk import CHOICES
from dashboard.context import current_user, owner
from dashboard.widgets import conversation, plain, response

FLASH = "rate_flash"
TASK = "rate_task"
RATIONALE = "rate_rationale"
# (choice, label, shortcut, icon); Streamlit shows the shortcut on each button.
BUTTONS = (("1", "1 is better", "1", ":material/looks_one:"),
           ("2", "2 is better", "2", ":material/looks_two:"),
           ("tie", "Same", "T", ":material/drag_handle:"),
           ("both_bad", "Both bad", "B", ":material/thumb_down:"))


def _vote(pair_set_id: str, ticket: int, choice: str) -> None:
    user = current_user()
    try:
        receipt = owner().desk.vote(user, pair_set_id, ticket, choice, st.session_state.get(RATIONALE, ""))
    except TuneboardError as exc:
        st.session_state[FLASH] = ("warning", str(exc))
        return
    st.session_state[RATIONALE] = ""
    if receipt.status == "recorded":
        st.session_state[FLASH] = ("success", f"Saved: {CHOICES[choice].lower()}.")
    else:
        st.session_state[FLASH] = ("info", receipt.message)


def _skip(pair_set_id: str, ticket: int) -> None:
    try:
        owner().desk.skip(current_user(), pair_set_id, ticket)
        st.session_state[FLASH] = ("info", "Skipped: that pair comes back after the others.")
    except TuneboardError as exc:
        st.session_state[FLASH] = ("warning", str(exc))
    st.session_state[RATIONALE] = ""


def _undo(pair_set_id: str) -> None:
    try:
        undone = owner().desk.undo(current_user(), pair_set_id)
    except TuneboardError as exc:
        st.session_state[FLASH] = ("warning", str(exc))
        return
    st.session_state[FLASH] = ("info", "Your last vote was taken back; that pair is shown again." if undone
                               else "There is no vote to take back.")


def render() -> None:
    user, o = current_user(), owner()
    st.title("Rate")
    tasks = o.desk.tasks(user)
    if not tasks:
        st.info("No pairs are assigned to you yet. Your lead assigns them; this page shows them as soon as they do.")
        return
    index = st.selectbox("Task", range(len(tasks)), key=TASK, label_visibility="collapsed" if len(tasks) == 1 else "visible",
                         format_func=lambda i: f"{tasks[i]['name']} · {tasks[i]['done']}/{tasks[i]['total']} rated")
    task = tasks[index or 0]
    pair_set_id = task["pair_set_id"]
    kind, message = st.session_state.pop(FLASH, (None, None))
    if kind:
        getattr(st, kind)(message)
    try:
        pair = o.desk.next_pair(user, pair_set_id)
    except TuneboardError as exc:
        st.error(str(exc))
        return
    if pair is None:
        st.success(f"All {task['total']} pairs of this task are rated. Thank you!")
        st.button("Undo last vote", icon=":material/undo:", key="undo", shortcut="U", on_click=_undo,
                  args=(pair_set_id,))
        return

    st.progress(pair.done / pair.total if pair.total else 0.0,
                text=f"{pair.done} of {pair.total} rated" + (f" · {pair.skipped} skipped" if pair.skipped else ""))
    if pair.returning:
        st.caption("You skipped this pair earlier.")
    if task["instructions"]:
        st.caption(plain(task["instructions"]))
    conversation(pair.messages)
    left, right = st.columns(2)
    for column, title, text in ((left, "Response 1", pair.response_1), (right, "Response 2", pair.response_2)):
        with column.container(border=True):
            st.markdown(f"**{title}**")
            response(text)
    st.text_input("Why? (optional)", key=RATIONALE, max_chars=2000,
                  placeholder="A few words on what decided it")
    cols = st.columns(len(BUTTONS) + 2)
    for col, (choice, label, key, icon) in zip(cols, BUTTONS):
        col.button(label, key=f"vote_{choice}", help=CHOICES[choice], shortcut=key, icon=icon, width="stretch",
                   type="primary" if choice in ("1", "2") else "secondary",
                   on_click=_vote, args=(pair_set_id, pair.ticket, choice))
    cols[-2].button("Skip", key="skip", shortcut="S", icon=":material/skip_next:", width="stretch",
                    on_click=_skip, args=(pair_set_id, pair.ticket))
    cols[-1].button("Undo", key="undo", shortcut="U", icon=":material/undo:", width="stretch",
                    on_click=_undo, args=(pair_set_id,), disabled=pair.done == 0)
