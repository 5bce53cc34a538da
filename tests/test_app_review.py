"""AppTest tier for review: the rater's page is blind (nothing identifying in any element it
sends, keys included), voting and undo work from the page, a lead creates a pair set from the
form, and the Results page draws the stored statistics."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.demo.review import rater_accounts, seed_generation_set, simulated_choice
from core.review import pairs
from core.review.desk import RatingDesk
from core.review.pairs import PairSetSpec
from pages import rate
from tests.apptest import assert_clean, button, goto, titles
from tests.conftest import PASSWORD
from tests.test_app import app, fast_password_hashing  # noqa: F401  (the same fixtures as the other pages)

pytestmark = pytest.mark.slow
VARIANTS = ["base", "adapter:tuned"]


@pytest.fixture(autouse=True)
def instant_votes(monkeypatch):
    """AppTest clicks within milliseconds of a render; the double-click guard would drop them."""
    monkeypatch.setenv("TUNEBOARD_REVIEW_MIN_VOTE_SECONDS", "0")


@pytest.fixture
def pair_set(owner, accounts):
    rater_accounts(owner.store, ["ben", "cat"], PASSWORD)
    gen = seed_generation_set(owner.store, n_prompts=8, variants=tuple(VARIANTS), seed=2)
    ps = pairs.create_pair_set(owner.store, accounts["lead"], PairSetSpec(
        name="Support replies, round 1", generation_set_id=gen, variants=VARIANTS, raters=["rita", "ben", "cat"],
        raters_per_pair=3, gold_rate=0.2, seed=4, instructions="Which reply would you send?"))
    return {"id": ps, "gen": gen}


def _everything_sent(at) -> str:
    """Every element of the last run as its protobuf text: what the browser would receive."""
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())
    return "\n".join(out)


def test_the_rating_page_sends_nothing_that_identifies_a_side(app, owner, pair_set):
    at = goto(app("rita"), "Rate")
    assert_clean(at)
    assert titles(at) == ["Rate"]
    sent = _everything_sent(at)
    assert "Response 1" in sent and "Which reply would you send?" in sent  # the scan sees the page
    secrets = ["adapter:tuned", "tuned", "gold:", pair_set["gen"], pair_set["id"], "left_is_a", "a_text", "b_text"]
    for _ in range(4):
        for secret in secrets:
            assert secret not in sent, secret
        [first] = [b for b in at.button if b.label == "1 is better"]
        first.click().run()
        assert_clean(at)
        sent = _everything_sent(at)
    assert owner.store.scalar("SELECT count(*) FROM votes WHERE rater = 'rita'") == 4


def test_rater_votes_undoes_and_sees_progress(app, owner, pair_set):
    at = goto(app("rita"), "Rate")
    total = owner.store.scalar("SELECT count(*) FROM assignments WHERE rater = 'rita'")
    assert at.get("progress")[0].proto.text == f"0 of {total} rated"
    at.text_input[0].input("shorter and correct")
    button(at, "Same").click().run()
    assert_clean(at)
    assert at.get("progress")[0].proto.text == f"1 of {total} rated"
    assert owner.store.row("SELECT choice, rationale FROM votes WHERE rater = 'rita'") == \
        {"choice": "tie", "rationale": "shorter and correct"}
    assert at.text_input[0].value == ""  # the rationale box is cleared for the next pair
    button(at, "Undo").click().run()
    assert at.get("progress")[0].proto.text == f"0 of {total} rated"
    assert owner.store.scalar("SELECT count(*) FROM votes") == 0


def test_a_click_at_once_after_the_pair_appeared_is_not_counted(app, owner, pair_set, monkeypatch):
    monkeypatch.setenv("TUNEBOARD_REVIEW_MIN_VOTE_SECONDS", "30")
    at = goto(app("rita"), "Rate")
    button(at, "2 is better").click().run()
    assert_clean(at)
    assert any("taken for a double click" in i.value for i in at.info)
    assert owner.store.scalar("SELECT count(*) FROM votes") == 0


def test_a_click_left_behind_by_an_interrupted_run_is_dropped(app, owner, pair_set):
    """A button's callback only notes the click; the rating area carries it out in the same run. A
    click a cut-short run left in the session (a navigation right after it) is not cast later."""
    at = goto(app("rita"), "Rate")
    first = owner.store.scalar("SELECT pair_id FROM assignments WHERE pair_set_id = ? AND rater = 'rita' "
                               "ORDER BY position LIMIT 1", [pair_set["id"]])  # the pair on screen
    at.session_state[rate.CLICK] = ("vote", (pair_set["id"], first, "1"), time.monotonic() - rate.CLICK_SECONDS - 1)
    at.run()
    assert_clean(at)
    assert owner.store.scalar("SELECT count(*) FROM votes") == 0 and not at.success
    at.session_state[rate.CLICK] = ("vote", (pair_set["id"], first, "1"), time.monotonic())  # as a callback does
    at.run()
    assert [s.value for s in at.success] == ["Saved: response 1 is better."]
    assert owner.store.scalar("SELECT count(*) FROM votes WHERE rater = 'rita' AND pair_id = ?", [first]) == 1


def test_lead_creates_a_pair_set_from_the_form(app, owner, accounts):
    rater_accounts(owner.store, ["ben", "cat"], PASSWORD)
    seed_generation_set(owner.store, n_prompts=5, variants=tuple(VARIANTS), seed=3)
    at = goto(app("leo"), "Review")
    assert_clean(at)
    [name] = [t for t in at.text_input if t.label == "Name (raters see it)"]
    name.input("Round one")
    button(at, "Create pair set").click().run()
    assert_clean(at)
    assert any("Created pairs-" in s.value for s in at.success)
    ps = owner.store.row("SELECT * FROM pair_sets")
    assert ps["name"] == "Round one" and ps["raters_per_pair"] == 3
    assert owner.store.scalar("SELECT count(DISTINCT rater) FROM assignments") == 3


def test_results_page_shows_the_stored_statistics_and_only_leads_unblind(app, owner, pair_set):
    owner.settings.review.bootstrap_rounds = 100
    desk = RatingDesk(owner.store, 0.0)
    truth = {r["pair_id"]: r for r in owner.store.rows(
        "SELECT p.*, gp.reference FROM pairs p JOIN generation_prompts gp ON gp.set_id = ? "
        "AND gp.prompt_idx = p.prompt_idx WHERE p.pair_set_id = ?", [pair_set["gen"], pair_set["id"]])}
    rng = np.random.default_rng(0)
    from core.auth import Role, User

    for name in ("rita", "ben", "cat"):
        while (view := desk.next_pair(User(name, Role.RATER), pair_set["id"])) is not None:
            desk.vote(User(name, Role.RATER), pair_set["id"], view.ticket, simulated_choice(truth[view.ticket], 0.9, rng))
    at = goto(app("leo"), "Results")
    assert_clean(at)
    labels = [m.label for m in at.metric]
    assert {"Prompts", "Votes", "Fleiss' κ", "Krippendorff's α (nominal)", "Response 1 chosen"} <= set(labels)
    [line] = [t.value for t in at.text if "adapter:tuned vs base" in t.value]
    prompts = owner.store.scalar("SELECT count(DISTINCT prompt_idx) FROM pairs WHERE pair_set_id = ? "
                                 "AND gold_better IS NULL", [pair_set["id"]])
    assert f"{prompts} prompts" in line and "votes" in line and "raters each" in line  # the unit, said
    assert ("is better" in line) != ("no clear difference" in line)
    assert any(c.value.startswith("Plan: With") for c in at.caption)
    assert owner.store.scalar("SELECT count(*) FROM review_results WHERE pair_set_id = ?", [pair_set["id"]]) == 1
    assert any("shown as Response" in m.value for m in at.markdown)  # the lead's drill-down names sides
    eng = goto(app("eve"), "Results")
    assert_clean(eng)
    assert "Single pairs with model names are for leads only." in [i.value for i in eng.info]
    assert not any("shown as Response" in m.value for m in eng.markdown)
