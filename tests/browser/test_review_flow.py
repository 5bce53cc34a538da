"""Blind A/B review in a real browser: a rater rates with the keyboard only and the browser
never receives anything that names a side; hostile model output stays inert; a double click
counts once; "U" takes the last vote back; the lead's Results page draws its ladder.

The workspace is made before the server starts (the server owns the DuckDB file): a seeded
generation set (no model runs), one of its outputs replaced by hostile markdown, three rater
accounts and a pair set created as the lead. The votes are read back from DuckDB after the
server stops (the last test).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pytest

from benchmarks.rater_load import stop_server
from tests.browser.conftest import log_in, wait_idle
from tests.conftest import ADMIN_PASSWORD, PASSWORD

pytestmark = pytest.mark.browser

PAIR_SET_NAME = "Support replies, round 1"
RATERS = ["rita", "ruth", "remy"]  # rita comes from the browser conftest's accounts
VARIANTS = ["base", "adapter:tuned"]
HOSTILE = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> **bold**'
SHOTS = Path("/tmp/review-shots")
KEY_CHOICE = {"1": "1", "2": "2", "T": "tie", "B": "both_bad"}
RATIONALE_TYPED = "U 1 2 T B S: response one is clearer"
SETTLE_S = 0.7  # desk.min_vote_seconds is 0.5: a vote sooner after the pair appeared is dropped as a double click

# Filled by seed_workspace (ids and sizes) and by the tests (the votes each rater should have).
STATE: dict = {"votes": {}}


def seed_workspace(owner, root) -> None:
    from core.auth import Role, User
    from core.demo.review import rater_accounts, seed_generation_set
    from core.review.pairs import PairSetSpec, create_pair_set

    store = owner.store
    gen = seed_generation_set(store, n_prompts=8, variants=tuple(VARIANTS), seed=5)
    # Before the pair set: pairs copy the texts when they are made.
    store.execute("UPDATE generations SET output = ? WHERE set_id = ? AND prompt_idx = 0 AND variant_id = 'base'",
                  [HOSTILE, gen])
    rater_accounts(store, RATERS[1:], PASSWORD)
    pair_set = create_pair_set(store, User("leo", Role.LEAD), PairSetSpec(
        name=PAIR_SET_NAME, generation_set_id=gen, variants=VARIANTS, raters=RATERS, raters_per_pair=3,
        gold_rate=0.1, seed=11))
    counts = store.row("SELECT count(*) AS pairs, count(gold_better) AS gold, "
                       "count(*) FILTER (WHERE a_text = ? OR b_text = ?) AS hostile FROM pairs WHERE pair_set_id = ?",
                       [HOSTILE, HOSTILE, pair_set])
    assert counts["gold"] >= 1 and counts["hostile"] == 1, counts  # the leaks and the attack below are real
    STATE.update(generation_set_id=gen, pair_set_id=pair_set, **counts)


def secrets() -> list[str]:
    """What a rater's browser must never receive. "base" is too common a word to look for."""
    return ["adapter:tuned", "adapter", "tuned", "gold:reference", "gold:corrupted", "gold", "demo-base",
            STATE["generation_set_id"], "fixture", "left_is_a", "a_text", "b_text", "gold_better",
            "identity_flags", STATE["pair_set_id"]]


class Recorder:
    """Everything a page receives: websocket frames, the app's own non-static HTTP bodies, and per
    step its URL, HTML, every element attribute, cookies and web storage."""

    def __init__(self, page, origin: str):
        self.page, self.origin = page, origin
        self.frames: list[bytes] = []
        self.responses: list = []
        self.static: list[str] = []
        self.shown: set[str] = set()  # texts the rater saw: they must be found in the frames (a control)
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.on("response", self._response)

    def _frame(self, payload) -> None:
        self.frames.append(payload if isinstance(payload, bytes) else payload.encode())

    def _response(self, response) -> None:
        url = urlparse(response.url)
        if f"{url.scheme}://{url.netloc}" != self.origin:
            return
        # Streamlit's bundled JS, CSS and fonts under /static/ are files of the installed package, the
        # same bytes for every session and every app; nothing of the app's data can be in them, and
        # their minified code holds words such as "gold" or "adapter" that would be false positives.
        # They are checked to be exactly such files (see `static_files_are_the_packaged_ones`), not searched.
        if url.path.startswith("/static/"):
            self.static.append(url.path)
        else:
            self.responses.append(response)  # bodies are read later: no blocking calls in an event handler

    def snapshot(self, label: str) -> None:
        """Search what the page holds right now (called after every step)."""
        page = self.page
        held = {
            "url": page.url,
            "html": page.content(),
            "attributes": "\n".join(page.evaluate(
                "() => Array.from(document.querySelectorAll('*')).flatMap("
                "e => Array.from(e.attributes).map(a => a.name + '=' + a.value))")),
            "storage": page.evaluate("() => JSON.stringify([document.cookie, {...localStorage}, {...sessionStorage}])"),
            "cookies": repr(page.context.cookies()),
        }
        for where, text in held.items():
            assert_clean(f"{label}: {where}", text.encode())

    def finish(self) -> None:
        """Search every websocket frame and non-static HTTP body received so far."""
        assert self.frames, "no websocket frame was recorded"
        for i, frame in enumerate(self.frames):
            assert_clean(f"websocket frame {i}", frame)
        # Control: what the rater read arrived in these frames as plain bytes, so the search above can
        # see a leak (the frames are neither empty nor compressed).
        assert self.shown
        for text in self.shown:
            assert any(text.encode() in frame for frame in self.frames), f"{text!r} is in no recorded frame"
        bodies = 0
        for response in self.responses:
            try:
                body = response.body()
            except Exception:  # a redirect or a body the browser did not keep: nothing to search
                continue
            bodies += 1
            assert_clean(f"HTTP {response.url}", body)
            assert urlparse(response.url).path != "/x", "the hostile <img src=x> was fetched"
        assert bodies, "no HTTP body of the app was recorded"
        static_files_are_the_packaged_ones(self.static)


def static_files_are_the_packaged_ones(paths: list[str]) -> None:
    import streamlit

    root = Path(streamlit.__file__).parent / "static"
    for path in set(paths):
        assert (root / path.lstrip("/")).is_file(), f"{path} is served under /static/ but is no packaged file"


# Fixed text every visitor gets before signing in (pages/login.py); it names no side of any pair, but
# "fine-tuned" holds "tuned". Cut out exactly this sentence, nothing else, before searching.
PUBLIC_TEXT = (b"Is the fine-tuned model better than the one it came from?",)


def assert_clean(where: str, blob: bytes) -> None:
    for text in PUBLIC_TEXT:
        blob = blob.replace(text, b"")
    low = blob.lower()
    for secret in secrets():
        at = low.find(secret.lower().encode())
        assert at < 0, (f"the rater's browser received {secret!r} in {where}: "
                        f"...{blob[max(0, at - 120):at + 120]!r}...")


def expect_progress(page, done: int, total: int, skipped: int = 0) -> None:
    from playwright.sync_api import expect

    text = f"{done} of {total} rated" + (f" · {skipped} skipped" if skipped else "")
    expect(page.get_by_test_id("stProgress")).to_contain_text(re.compile(re.escape(text) + r"\s*$"))
    wait_idle(page)


def responses(page) -> list:
    """The two response columns (the rater's response containers)."""
    return [page.get_by_test_id("stColumn").filter(has=page.get_by_text(f"Response {n}", exact=True)).last
            for n in (1, 2)]


def shown_pair(page, rec: Recorder | None = None) -> tuple[str, str, str]:
    """(conversation, response 1, response 2) as the rater reads them."""
    chat = page.get_by_test_id("stChatMessage").get_by_test_id("stText").all_inner_texts()
    one, two = (c.inner_text() for c in responses(page))
    if rec is not None:
        rec.shown.update(chat)  # st.text: the frame holds exactly this text
    return "\n".join(chat), one, two


def assert_inert(page) -> bool:
    """Nothing of the hostile output ran or loaded; True when this pair shows it (as text)."""
    from playwright.sync_api import expect

    assert page.evaluate("typeof window.__pwned") == "undefined", "hostile markup ran in the rater's page"
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("() => Array.from(document.scripts).some(s => s.text.includes('__pwned'))") is False
    hostile = False
    for column in responses(page):
        expect(column.locator("img")).to_have_count(0)
        expect(column.locator("script")).to_have_count(0)
        if "onerror" in column.inner_text():
            hostile = True
            expect(column).to_contain_text('<img src=x onerror="window.__pwned=1">')  # shown, as text
            expect(column).to_contain_text("<script>window.__pwned=2</script>")
            expect(column.locator("strong", has_text="bold")).to_have_count(1)  # markdown still formats
    return hostile


def press(page, key: str) -> None:
    """A key on the page itself, not in the "Why?" box (Streamlit ignores shortcuts typed into inputs)."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    assert page.evaluate("() => document.activeElement === document.body")
    page.keyboard.press(key)


def shoot(page, tmp_path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SHOTS / name)


def open_rate_page(page, url: str, rater: str) -> None:
    from playwright.sync_api import expect

    log_in(page, url, rater, PASSWORD)
    expect(page.get_by_role("heading", name="Rate", exact=True)).to_be_visible()
    sidebar = page.get_by_test_id("stSidebarNav")
    # a rater's pages only (each link starts with its Material icon's name, drawn from a ligature font)
    expect(sidebar.get_by_role("link")).to_have_text([re.compile(r"Rate$"), re.compile(r"Account$")])
    # the task is shown by its name only (the pair set id is a secret)
    expect(page.get_by_role("combobox", name="Task")).to_have_value(
        re.compile("^" + re.escape(PAIR_SET_NAME) + r" · \d+/\d+ rated$"))


def test_rater_rates_blind_with_the_keyboard_and_hostile_output_stays_inert(server, page, tmp_path):
    from playwright.sync_api import expect

    rec = Recorder(page, server.url)
    open_rate_page(page, server.url, "rita")
    total = STATE["pairs"]
    expect_progress(page, 0, total)
    rec.snapshot("after log in")

    keys = ["1", "2", "T", "B", "S"] + ["1", "2", "T", "B"] * total  # one skip: the pair comes back last
    done = skipped = 0
    cast: Counter = Counter()
    hostile_seen = 0
    for step, key in enumerate(keys):
        if done == total:
            break
        time.sleep(SETTLE_S)
        shown_pair(page, rec)
        if assert_inert(page):
            hostile_seen += 1
            if hostile_seen == 1:
                shoot(page, tmp_path, "rate.png")
        if skipped and done + skipped == total:  # only the skipped pair is left: it is offered again
            expect(page.get_by_text("You skipped this pair earlier.")).to_be_visible()
        press(page, key)
        if key == "S":
            skipped += 1
            flash = "Skipped: that pair comes back after the others."
        else:
            done += 1
            skipped -= 1 if done + skipped > total else 0  # the skipped pair, offered again, was voted
            cast[KEY_CHOICE[key]] += 1
            flash = "Saved: " + {"1": "response 1 is better", "2": "response 2 is better", "T": "about the same",
                                 "B": "both are bad"}[key]
        if done < total:
            expect_progress(page, done, total, skipped)
        else:
            expect(page.get_by_text(f"All {total} pairs of this task are rated. Thank you!")).to_be_visible()
            wait_idle(page)
        expect(page.get_by_test_id("stAlert").filter(has_text=flash)).to_have_count(1)
        rec.snapshot(f"after key {step} ({key})")

    expect(page.get_by_text(f"All {total} pairs of this task are rated. Thank you!")).to_be_visible()
    wait_idle(page)
    assert hostile_seen >= 1, "the pair with the hostile output was never shown"
    assert sum(cast.values()) == total and set(cast) == set(KEY_CHOICE.values()), cast
    assert page.evaluate("typeof window.__pwned") == "undefined"
    expect(page.get_by_test_id("stException")).to_have_count(0)
    rec.snapshot("all rated")
    rec.finish()
    STATE["votes"]["rita"] = cast


def test_double_click_counts_once_and_u_takes_the_last_vote_back(server, page):
    from playwright.sync_api import expect

    rec = Recorder(page, server.url)
    open_rate_page(page, server.url, "ruth")
    total = STATE["pairs"]
    expect_progress(page, 0, total)
    # "Response 1 is better", found by its widget key (its label is short); the role query skips the hidden
    # copy Streamlit keeps in the same element to measure the label
    button = page.locator(".st-key-vote_1").get_by_role("button")

    # A double click, as fast as the mouse can (no pause between the two clicks).
    time.sleep(SETTLE_S)
    button.dblclick()
    expect_progress(page, 1, total)
    time.sleep(1.0)  # a second vote, had it counted, would show by now
    wait_idle(page)
    expect_progress(page, 1, total)
    rec.snapshot("after a double click")

    # A human double click: two clicks 120 ms apart.
    time.sleep(SETTLE_S)
    button.click()
    page.wait_for_timeout(120)  # the gap of a human double click is the action itself
    button.click()
    expect_progress(page, 2, total)
    time.sleep(1.0)  # a second vote, had it counted, would show by now
    wait_idle(page)
    expect_progress(page, 2, total)
    rec.snapshot("after a slow double click")

    # Undo with the keyboard: the pair just voted on comes back, the count goes back by one.
    time.sleep(SETTLE_S)
    before = shown_pair(page, rec)
    press(page, "2")
    expect_progress(page, 3, total)
    assert shown_pair(page) != before, "the next pair looks like the one just voted on"
    time.sleep(SETTLE_S)
    press(page, "U")
    expect_progress(page, 2, total)
    expect(page.get_by_test_id("stAlert")).to_contain_text("Your last vote was taken back; that pair is shown again.")
    assert shown_pair(page) == before
    rec.snapshot("after undo")

    # Shortcut letters typed into "Why?" are text, not votes; the reason goes with the next vote.
    why = page.get_by_role("textbox", name="Why? (optional)")
    why.focus()
    page.keyboard.type(RATIONALE_TYPED, delay=30)
    expect(why).to_have_value(RATIONALE_TYPED)
    time.sleep(1.0)  # a shortcut fired from inside the box would have voted by now
    expect_progress(page, 2, total)  # no "1", "2", "T", "B", "S" or "U" fired from inside the box
    assert shown_pair(page) == before

    # And the pair can be voted on again.
    # Leaving the box sends its text: a rerun that draws nothing new to wait for. Pressing the shortcut
    # while it ran left two progress bars on the page for a moment (seen once), so give that rerun time
    # to start, then wait for its end.
    page.evaluate("() => document.activeElement.blur()")
    page.wait_for_timeout(300)
    wait_idle(page)
    press(page, "T")
    expect_progress(page, 3, total)
    expect(why).to_have_value("")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    rec.snapshot("after voting again")
    rec.finish()
    STATE["votes"]["ruth"] = Counter({"1": 2, "tie": 1})


def test_lead_sees_the_ladder_and_agreement_on_results(server, page, tmp_path):
    from playwright.sync_api import expect

    assert set(STATE["votes"]) == {"rita", "ruth"}, "the rating tests ran first"
    log_in(page, server.url, "leo", PASSWORD)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Results").click()
    expect(page.get_by_role("heading", name="Results", exact=True)).to_be_visible()
    wait_idle(page, timeout=90_000)  # the first visit computes the result (1,000 bootstrap rounds)
    expect(page.get_by_role("combobox", name="Pair set")).to_have_value(re.compile("^" + re.escape(PAIR_SET_NAME)))
    chart = page.get_by_test_id("stVegaLiteChart").first
    expect(chart.locator("canvas, svg").first).to_be_visible(timeout=30_000)
    box = chart.locator("canvas, svg").first.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 20, box

    def metric(label: str):
        """The visible metric of that label (the Agreement tab repeats Fleiss' κ, hidden until opened)."""
        return page.get_by_test_id("stMetric").filter(visible=True).filter(
            has=page.get_by_test_id("stMetricLabel").filter(has_text=re.compile(label)))

    expect(metric("^Fleiss' κ$")).to_have_count(1)
    # rita and ruth rated 3 pairs in common: a number, not the "–" of a missing statistic
    expect(metric("^Fleiss' κ$").get_by_test_id("stMetricValue")).to_have_text(re.compile(r"^-?\d\.\d{3}$"))
    votes = sum(sum(c.values()) for c in STATE["votes"].values())
    # Votes on compared pairs in the metric; those on gold pairs beside them in the caption: all counted.
    counted = page.get_by_text(re.compile(r"from \d+ prompts and \d+ votes \(and \d+ on gold pairs\)"))
    expect(counted).to_be_visible()
    compared, gold = (int(x) for x in re.search(r"and (\d+) votes \(and (\d+) on gold", counted.inner_text()).groups())
    assert compared + gold == votes, (compared, gold, votes)
    expect(metric("^Votes$").get_by_test_id("stMetricValue")).to_have_text(str(compared))
    expect(page.get_by_test_id("stException")).to_have_count(0)
    wait_idle(page)
    shoot(page, tmp_path, "results.png")


def test_votes_landed_in_duckdb(server):
    from core.config import load_settings
    from core.owner import Owner

    assert set(STATE["votes"]) == {"rita", "ruth"}, "the rating tests ran first"
    stop_server(server.process)  # the server owns the database; stop it to read the rows
    env = {"TUNEBOARD_WORKSPACE": str(server.workspace), "TUNEBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with contextlib.chdir(server.workspace.parent):  # as the server read them: no stray tuneboard.toml
        settings = load_settings(env=env)
    owner = Owner.open(settings, monitor=False, env=env)
    try:
        rows = owner.store.rows("SELECT rater, choice, count(*) AS n FROM votes WHERE pair_set_id = ? "
                                "GROUP BY ALL", [STATE["pair_set_id"]])
        got = {r: Counter({row["choice"]: row["n"] for row in rows if row["rater"] == r}) for r in RATERS}
        assert got == {**{r: Counter() for r in RATERS}, **STATE["votes"]}, got
        # One vote per rater and pair, whatever was clicked twice.
        assert owner.store.scalar("SELECT count(*) FROM (SELECT pair_id, rater FROM votes WHERE pair_set_id = ? "
                                  "GROUP BY ALL HAVING count(*) > 1)", [STATE["pair_set_id"]]) == 0
        why = owner.store.rows("SELECT rationale FROM votes WHERE pair_set_id = ? AND rationale IS NOT NULL",
                               [STATE["pair_set_id"]])
        assert [w["rationale"] for w in why] == [RATIONALE_TYPED]
        undo = owner.store.rows("SELECT actor FROM audit_log WHERE action = 'vote.undo' AND target = ?",
                                [STATE["pair_set_id"]])
        assert [u["actor"] for u in undo] == ["ruth"]
    finally:
        owner.close()
