"""Rate (rater): one blind pair at a time, keyboard first.

Blindness: this page gets a `PairView` and nothing else. Widget keys are constants, the
pair's ticket lives only in server-side session state and callback arguments, and nothing
goes into the URL. Responses are shown as inert markdown.

The rating area is a fragment: a vote, skip or undo reruns only it, not the app's entrypoint
(navigation, sidebar, login cookie). It checks the session and role itself, as every fragment
must, once per run: a button's callback only notes the click, and the fragment carries it out
with the user it has just checked, then draws the next pair.
"""

from __future__ import annotations

import time

import streamlit as st

from core.auth import Action, User
from core.errors import TuneboardError
from core.review.desk import CHOICES, RatingDesk
from dashboard.context import get_owner, require_page
from dashboard.widgets import conversation, plain, response

FLASH = "rate_flash"
TASK = "rate_task"
RATIONALE = "rate_rationale"
CLICK = "rate_click"
# A click is carried out in the run its callback ran in; one left behind by an interrupted run (a
# navigation right after it) is dropped rather than carried out when the rater comes back later.
CLICK_SECONDS = 10.0
# (choice, label, shortcut, icon); Streamlit shows the shortcut on each button.
BUTTONS = (("1", "1 is better", "1", ":material/looks_one:"),
           ("2", "2 is better", "2", ":material/looks_two:"),
           ("tie", "Same", "T", ":material/drag_handle:"),
           ("both_bad", "Both bad", "B", ":material/thumb_down:"))


def _click(action: str, *args) -> None:
    """Every button's on_click: the click of this run, carried out by the rating area right after."""
    st.session_state[CLICK] = (action, args, time.monotonic())


def _carry_out(desk: RatingDesk, user: User, action: str, args: tuple) -> None:
    try:
        if action == "vote":
            pair_set_id, ticket, choice = args
            receipt = desk.vote(user, pair_set_id, ticket, choice, st.session_state.get(RATIONALE, ""))
            st.session_state[RATIONALE] = ""
            st.session_state[FLASH] = (("success", f"Saved: {CHOICES[choice].lower()}.") if receipt.status == "recorded"
                                       else ("info", receipt.message))
        elif action == "skip":
            desk.skip(user, *args)
            st.session_state[RATIONALE] = ""
            st.session_state[FLASH] = ("info", "Skipped: that pair comes back after the others.")
        elif action == "undo":
            st.session_state[FLASH] = ("info", "Your last vote was taken back; that pair is shown again."
                                       if desk.undo(user, *args) else "There is no vote to take back.")
    except TuneboardError as exc:
        st.session_state[FLASH] = ("warning", str(exc))


def render() -> None:
    st.title("Rate")
    _rating_area()


@st.fragment
def _rating_area() -> None:
    click = st.session_state.pop(CLICK, None)  # taken first: a click never outlives a session that ended
    user, owner = require_page(Action.REVIEW_RATE), get_owner()
    if click is not None and time.monotonic() - click[2] < CLICK_SECONDS:
        _carry_out(owner.desk, user, *click[:2])
    tasks = owner.desk.tasks(user)
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
        pair = owner.desk.next_pair(user, pair_set_id)
    except TuneboardError as exc:
        st.error(str(exc))
        return
    if pair is None:
        st.success(f"All {task['total']} pairs of this task are rated. Thank you!")
        st.button("Undo last vote", icon=":material/undo:", key="undo", shortcut="U", on_click=_click,
                  args=("undo", pair_set_id))
        return

    st.progress(pair.done / pair.total if pair.total else 0.0,
                text=f"{pair.done} of {pair.total} rated" + (f" · {pair.skipped} skipped" if pair.skipped else ""))
    if pair.returning:
        st.caption("You skipped this pair earlier.")
    if task["instructions"]:
        st.caption(plain(task["instructions"]))
    conversation(pair.messages)
    # Every element is one more message per vote: bordered columns and one horizontal row of
    # buttons draw the same layout with 8 fewer blocks than nested containers and 6 columns.
    for column, title, text in zip(st.columns(2, border=True), ("Response 1", "Response 2"),
                                   (pair.response_1, pair.response_2)):
        with column:
            st.markdown(f"**{title}**")
            response(text)
    st.text_input("Why? (optional)", key=RATIONALE, max_chars=2000,
                  placeholder="A few words on what decided it")
    with st.container(horizontal=True):
        for choice, label, key, icon in BUTTONS:
            st.button(label, key=f"vote_{choice}", help=CHOICES[choice], shortcut=key, icon=icon, width="stretch",
                      type="primary" if choice in ("1", "2") else "secondary",
                      on_click=_click, args=("vote", pair_set_id, pair.ticket, choice))
        st.button("Skip", key="skip", shortcut="S", icon=":material/skip_next:", width="stretch",
                  on_click=_click, args=("skip", pair_set_id, pair.ticket))
        st.button("Undo", key="undo", shortcut="U", icon=":material/undo:", width="stretch",
                  on_click=_click, args=("undo", pair_set_id), disabled=pair.done == 0)
