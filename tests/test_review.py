"""Review core: pair sets, assignment, the rating desk's rules, stored results and exports.

The generation set is a seeded fixture (core.demo.review): what is tested here is the review,
not the generation (tests/test_serving*.py cover that).
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from core.auth import Role, User
from core.demo.review import rater_accounts, seed_generation_set, simulated_choice
from core.errors import InvalidInput, PermissionDenied
from core.review import pairs, results, stats
from core.review.desk import RatingDesk
from core.review.pairs import GOLD_CORRUPTED, GOLD_REFERENCE, PairSetSpec
from core.review.render import inert_html
from tests.apptest import use_fast_password_hashing

RATERS = ["ann", "ben", "cat", "dan", "eli"]
VARIANTS = ("base", "adapter:tuned")


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    use_fast_password_hashing(monkeypatch)


@pytest.fixture
def world(owner, accounts):
    rater_accounts(owner.store, RATERS, "correct-horse-battery")
    gen = seed_generation_set(owner.store, n_prompts=30, variants=VARIANTS, seed=3)
    return {"store": owner.store, "gen": gen, "lead": accounts["lead"], "engineer": accounts["engineer"],
            "owner": owner}


def rater(name: str) -> User:
    return User(name, Role.RATER)


def make_set(world, **kw) -> str:
    spec = dict(name="Support replies, round 1", generation_set_id=world["gen"], variants=list(VARIANTS),
                baseline="base", raters=RATERS[:3], raters_per_pair=3, gold_rate=0.1, seed=5)
    spec.update(kw)
    return pairs.create_pair_set(world["store"], world["lead"], PairSetSpec(**spec))


def desk(world, min_vote_seconds: float = 0.0) -> RatingDesk:
    return RatingDesk(world["store"], min_vote_seconds)


def truth(store, pair_set_id: str) -> dict[int, dict]:
    rows = store.rows("""SELECT p.*, gp.reference FROM pairs p JOIN pair_sets s USING (pair_set_id)
                         JOIN generation_prompts gp ON gp.set_id = s.generation_set_id AND gp.prompt_idx = p.prompt_idx
                         WHERE p.pair_set_id = ?""", [pair_set_id])
    return {r["pair_id"]: r for r in rows}


# ---- pair sets -------------------------------------------------------------------------------
def test_pair_set_has_every_prompt_gold_at_the_rate_and_shuffled_sides(world):
    ps = make_set(world)
    rows = truth(world["store"], ps)
    real = [r for r in rows.values() if r["gold_better"] is None]
    gold = [r for r in rows.values() if r["gold_better"] is not None]
    assert len(real) == 30 and {(r["a"], r["b"]) for r in real} == {("adapter:tuned", "base")}
    assert len(gold) == round(30 * 0.1 / 0.9)
    assert all(g["a"] == GOLD_REFERENCE and g["b"] == GOLD_CORRUPTED and g["a_text"] == g["reference"]
               and g["b_text"] != g["a_text"] for g in gold)
    flips = [r["left_is_a"] for r in rows.values()]
    assert 0 < sum(flips) < len(flips)  # both sides appear on the left
    # The coin flips come from the stored seed: the same seed gives the same flips per prompt.
    again = truth(world["store"], make_set(world, seed=5))
    key = lambda rs: sorted((r["prompt_idx"], r["a"], r["left_is_a"]) for r in rs.values() if r["gold_better"] is None)
    assert key(again) == key(rows)


def test_all_pairs_design_compares_every_two_variants(owner, accounts):
    gen = seed_generation_set(owner.store, n_prompts=6, variants=("base", "adapter:x", "adapter:y"), seed=1)
    ps = pairs.create_pair_set(owner.store, accounts["lead"], PairSetSpec(
        name="Three-way", generation_set_id=gen, variants=["base", "adapter:x", "adapter:y"], design="all-pairs",
        gold_rate=0.0))
    combos = Counter((r["a"], r["b"]) for r in owner.store.rows("SELECT a, b FROM pairs WHERE pair_set_id = ?", [ps]))
    assert combos == {("base", "adapter:x"): 6, ("base", "adapter:y"): 6, ("adapter:x", "adapter:y"): 6}


def test_bad_pair_set_requests_name_each_field_and_write_nothing(world):
    before = world["store"].scalar("SELECT count(*) FROM pairs")
    with pytest.raises(InvalidInput) as err:
        pairs.create_pair_set(world["store"], world["lead"], PairSetSpec(
            name="tuned vs base", generation_set_id=world["gen"], variants=["base", "adapter:nope"],
            raters=["ann", "leo"], raters_per_pair=4, gold_rate=0.9, instructions="Prefer the tuned model"))
    text = str(err.value)
    for expected in ("variants: 'adapter:nope'", "name: raters see it", "tuned", "instructions:",
                     "raters: leo is a lead", "gold_rate:", "raters_per_pair: 4"):
        assert expected in text, (expected, text)
    assert world["store"].scalar("SELECT count(*) FROM pairs") == before


def test_outputs_that_name_a_model_are_flagged_for_the_lead(world):
    store = world["store"]
    store.execute("UPDATE generations SET output = 'As SmolLM2, a small language model, I think: billing' "
                  "WHERE set_id = ? AND prompt_idx = 2 AND variant_id = 'base'", [world["gen"]])
    store.execute("UPDATE generation_sets SET base_model = '/models/SmolLM2-135M-Instruct' WHERE set_id = ?",
                  [world["gen"]])
    ps = make_set(world)
    flagged = pairs.flagged_pairs(store, world["lead"], ps)
    assert [f["identity_flags"] for f in flagged] == [["language model", "smollm2"]]
    with pytest.raises(PermissionDenied):
        pairs.flagged_pairs(store, world["engineer"], ps)  # names models: lead only
    pairs.withdraw_pair(store, world["lead"], ps, flagged[0]["pair_id"])
    assert store.scalar("SELECT count(*) FROM assignments WHERE pair_set_id = ? AND pair_id = ?",
                        [ps, flagged[0]["pair_id"]]) == 0


# ---- assignment ------------------------------------------------------------------------------
def test_each_pair_gets_k_distinct_raters_spread_evenly_and_reassigning_is_stable(world):
    store = world["store"]
    ps = make_set(world, raters=RATERS, raters_per_pair=2)
    n_pairs = store.scalar("SELECT count(*) FROM pairs WHERE pair_set_id = ?", [ps])
    per_pair = store.rows("SELECT pair_id, count(DISTINCT rater) AS n, count(*) AS m FROM assignments "
                          "WHERE pair_set_id = ? GROUP BY pair_id", [ps])
    assert len(per_pair) == n_pairs and all(r["n"] == r["m"] == 2 for r in per_pair)
    loads = [r["n"] for r in store.rows("SELECT count(*) AS n FROM assignments WHERE pair_set_id = ? GROUP BY rater",
                                        [ps])]
    assert len(loads) == 5 and max(loads) - min(loads) <= 1
    assert pairs.assign_raters(store, world["lead"], ps, RATERS, 2) == {r: 0 for r in RATERS}


def test_dropping_a_rater_keeps_their_votes_and_moves_only_unrated_pairs(world):
    store, d = world["store"], desk(world)
    ps = make_set(world, raters=RATERS[:4], raters_per_pair=2)
    voted = []
    for _ in range(3):
        view = d.next_pair(rater("ann"), ps)
        d.vote(rater("ann"), ps, view.ticket, "1")
        voted.append(view.ticket)
    pairs.assign_raters(store, world["lead"], ps, ["ben", "cat", "dan"], 2)
    ann = {r["pair_id"] for r in store.rows("SELECT pair_id FROM assignments WHERE pair_set_id = ? AND rater = 'ann'",
                                            [ps])}
    assert ann == set(voted)
    counts = store.rows("""SELECT pair_id, count(*) FILTER (WHERE rater <> 'ann') AS others, count(*) AS n
                           FROM assignments WHERE pair_set_id = ? GROUP BY pair_id""", [ps])
    assert all(c["n"] == 2 or (c["pair_id"] in voted and c["n"] == 3) for c in counts)
    assert all(c["others"] >= 1 for c in counts)
    assert d.next_pair(rater("ann"), ps) is None  # the desk saw the new assignment version


def test_a_rater_added_later_takes_over_unrated_pairs_evenly(world):
    store, d = world["store"], desk(world)
    ps = make_set(world, raters=RATERS[:3], raters_per_pair=2, gold_rate=0.0)
    view = d.next_pair(rater("ann"), ps)
    d.vote(rater("ann"), ps, view.ticket, "1")
    added = pairs.assign_raters(store, world["lead"], ps, RATERS[:4], 2)
    assert added["dan"] >= 14  # 60 slots over 4 raters: 15 each
    loads = {r["rater"]: r["n"] for r in store.rows("SELECT rater, count(*) AS n FROM assignments "
                                                    "WHERE pair_set_id = ? GROUP BY rater", [ps])}
    assert max(loads.values()) - min(loads.values()) <= 1 and sum(loads.values()) == 60
    assert store.scalar("SELECT count(*) FROM assignments WHERE pair_set_id = ? AND pair_id = ? AND rater = 'ann'",
                        [ps, view.ticket]) == 1  # the vote's assignment stays
    assert pairs.assign_raters(store, world["lead"], ps, RATERS[:4], 2) == {r: 0 for r in RATERS[:4]}


def test_lowering_k_trims_the_most_loaded_and_a_restored_pair_is_assigned_again(world):
    store = world["store"]
    ps = make_set(world, raters=RATERS[:3], raters_per_pair=3, gold_rate=0.0)
    pairs.assign_raters(store, world["lead"], ps, RATERS[:3], 2)
    loads = [r["n"] for r in store.rows("SELECT count(*) AS n FROM assignments WHERE pair_set_id = ? GROUP BY rater",
                                        [ps])]
    assert sum(loads) == 2 * 30 and max(loads) - min(loads) <= 1
    pairs.withdraw_pair(store, world["lead"], ps, 0)
    assert store.scalar("SELECT count(*) FROM assignments WHERE pair_set_id = ? AND pair_id = 0", [ps]) == 0
    pairs.withdraw_pair(store, world["lead"], ps, 0, withdrawn=False)
    assert store.scalar("SELECT count(*) FROM assignments WHERE pair_set_id = ? AND pair_id = 0", [ps]) == 2


def test_the_task_list_follows_every_change_of_assignments(world):
    """The desk remembers which sets a rater is in (it answers every vote from memory); each
    change of assignments is seen on the next call, by the same desk."""
    store, d = world["store"], desk(world)

    def shown(name: str) -> dict[str, tuple[int, int]]:
        return {t["pair_set_id"]: (t["done"], t["total"]) for t in d.tasks(rater(name))}

    first = make_set(world, raters=RATERS[:2], raters_per_pair=1, gold_rate=0.0)
    assert shown("ann") == {first: (0, 15)} and shown("dan") == {}
    second = make_set(world, name="Round 2", raters=["dan"], raters_per_pair=1, gold_rate=0.0)  # a new set
    assert shown("dan") == {second: (0, 30)} and set(shown("ann")) == {first}
    view = d.next_pair(rater("ann"), first)
    d.vote(rater("ann"), first, view.ticket, "1")
    assert shown("ann") == {first: (1, 15)}
    pairs.assign_raters(store, world["lead"], second, ["dan", "ann"], 1)  # ann joins the second set
    assert shown("ann") == {first: (1, 15), second: (0, 15)} and shown("dan") == {second: (0, 15)}
    pairs.assign_raters(store, world["lead"], first, ["ben"], 1)  # ann leaves: only her voted pair stays hers
    assert shown("ann") == {first: (1, 1), second: (0, 15)}
    pairs.withdraw_pair(store, world["lead"], first, view.ticket)  # her last pair there withdrawn
    assert shown("ann") == {second: (0, 15)}
    assert shown("ann") == {t["pair_set_id"]: (t["done"], t["total"]) for t in desk(world).tasks(rater("ann"))}


def test_gold_marks_take_sides_not_model_names(world):
    store = world["store"]
    ps = make_set(world, gold_rate=0.3)
    rows = truth(store, ps)
    real = next(p for p, r in rows.items() if r["gold_better"] is None)
    generated = next(p for p, r in rows.items() if r["gold_better"] is not None)
    with pytest.raises(InvalidInput, match="side a or side b"):
        pairs.mark_gold(store, world["engineer"], ps, real, "adapter:tuned")  # no oracle for model names
    pairs.mark_gold(store, world["engineer"], ps, real, "b")
    assert store.row("SELECT gold_better, gold_source FROM pairs WHERE pair_set_id = ? AND pair_id = ?",
                     [ps, real]) == {"gold_better": "b", "gold_source": "marked by eve"}
    with pytest.raises(InvalidInput, match="generated gold pair"):
        pairs.mark_gold(store, world["engineer"], ps, generated, None)
    gold_prompts = [r["prompt_idx"] for r in rows.values() if r["a"] == GOLD_REFERENCE]
    assert len(gold_prompts) == len(set(gold_prompts))  # never the same gold pair twice


# ---- the rating desk -------------------------------------------------------------------------
def test_a_vote_is_stored_in_canonical_terms_and_counts_once(world):
    store, d = world["store"], desk(world)
    ps = make_set(world)
    view = d.next_pair(rater("ann"), ps)
    row = truth(store, ps)[view.ticket]
    shown_first = row["a_text"] if row["left_is_a"] else row["b_text"]
    assert view.response_1 == shown_first
    assert d.vote(rater("ann"), ps, view.ticket, "1", "clearer").status == "recorded"
    assert d.vote(rater("ann"), ps, view.ticket, "2").status == "duplicate"  # a resent request
    [vote] = store.rows("SELECT * FROM votes WHERE pair_set_id = ?", [ps])
    assert vote["choice"] == "1" and vote["outcome"] == ("a" if row["left_is_a"] else "b")
    assert vote["rationale"] == "clearer" and vote["seconds"] is not None
    # Durable: a new desk (a restarted server) reads it back and moves on.
    fresh = RatingDesk(store)
    nxt = fresh.next_pair(rater("ann"), ps)
    assert nxt.ticket != view.ticket and nxt.done == 1


def test_concurrent_double_submission_counts_once(world):
    store, d = world["store"], desk(world)
    ps = make_set(world)
    view = d.next_pair(rater("ann"), ps)
    statuses = []
    threads = [threading.Thread(target=lambda: statuses.append(d.vote(rater("ann"), ps, view.ticket, "tie").status))
               for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(Counter(statuses).items()) == [("duplicate", 11), ("recorded", 1)]
    assert store.scalar("SELECT count(*) FROM votes WHERE pair_set_id = ?", [ps]) == 1


def test_a_click_right_after_the_pair_appeared_is_taken_for_a_double_click(world):
    d = desk(world, min_vote_seconds=5.0)
    ps = make_set(world)
    view = d.next_pair(rater("ann"), ps)
    assert d.vote(rater("ann"), ps, view.ticket, "1").status == "ignored"
    assert world["store"].scalar("SELECT count(*) FROM votes") == 0


def test_raters_never_vote_on_pairs_they_do_not_hold_and_never_collide(world):
    store, d = world["store"], desk(world)
    ps = make_set(world, raters=RATERS, raters_per_pair=2)
    ann_pairs = {r["pair_id"] for r in store.rows("SELECT pair_id FROM assignments WHERE pair_set_id = ? "
                                                  "AND rater = 'ann'", [ps])}
    foreign = next(p for p in truth(store, ps) if p not in ann_pairs)
    with pytest.raises(PermissionDenied):
        d.vote(rater("ann"), ps, foreign, "1")
    rng = np.random.default_rng(0)
    rows = truth(store, ps)

    def rate_all(name: str) -> None:
        while (view := d.next_pair(rater(name), ps)) is not None:
            d.vote(rater(name), ps, view.ticket, simulated_choice(rows[view.ticket], 0.9, rng))

    threads = [threading.Thread(target=rate_all, args=(r,)) for r in RATERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stray = store.scalar("""SELECT count(*) FROM votes v WHERE v.pair_set_id = ? AND NOT EXISTS (SELECT 1 FROM
                            assignments a WHERE a.pair_set_id = v.pair_set_id AND a.pair_id = v.pair_id
                            AND a.rater = v.rater)""", [ps])
    assert stray == 0
    per_pair = {r["n"] for r in store.rows("SELECT count(*) AS n FROM votes WHERE pair_set_id = ? GROUP BY pair_id",
                                           [ps])}
    assert per_pair == {2} and store.scalar("SELECT count(*) FROM votes") == 2 * len(rows)


def test_skip_sends_a_pair_to_the_back_and_undo_brings_the_last_vote_back(world):
    d = desk(world)
    ps = make_set(world)
    ann = rater("ann")
    first = d.next_pair(ann, ps)
    d.skip(ann, ps, first.ticket)
    second = d.next_pair(ann, ps)
    assert second.ticket != first.ticket and second.skipped == 1
    d.vote(ann, ps, second.ticket, "2")
    assert d.undo(ann, ps) is True
    again = d.next_pair(ann, ps)
    assert again.ticket == second.ticket and again.done == 0
    d.vote(ann, ps, again.ticket, "2")
    d.skip(ann, ps, again.ticket)  # S pressed right after the vote: nothing to skip any more
    assert d.next_pair(ann, ps).ticket not in (again.ticket, first.ticket)
    assert d.undo(ann, ps) is True
    assert world["store"].scalar("SELECT count(*) FROM votes") == 0
    while (view := d.next_pair(ann, ps)) is not None and not view.returning:
        d.vote(ann, ps, view.ticket, "tie")
    assert view is not None and view.ticket == first.ticket  # the skipped pair comes back last
    d.vote(ann, ps, view.ticket, "1")
    assert d.next_pair(ann, ps) is None


def test_the_pair_view_holds_nothing_that_names_a_side(world):
    d = desk(world)
    ps = make_set(world)
    view = d.next_pair(rater("ann"), ps)
    shown = json.dumps(view.__dict__, default=str)
    for secret in VARIANTS + ("tuned", GOLD_REFERENCE, GOLD_CORRUPTED, world["gen"], "left_is_a"):
        assert secret not in shown
    assert set(view.__dict__) == {"ticket", "messages", "response_1", "response_2", "done", "total", "skipped",
                                  "returning"}


def test_roles_are_enforced_in_core(world):
    store, d = world["store"], desk(world)
    ps = make_set(world)
    with pytest.raises(PermissionDenied):
        make_set({**world, "lead": rater("ann")})
    with pytest.raises(PermissionDenied):
        d.next_pair(world["lead"], ps)  # leads read results; they do not vote
    with pytest.raises(PermissionDenied):
        results.latest(store, rater("ann"), ps, world["owner"].settings.review)
    with pytest.raises(PermissionDenied):
        pairs.pairs_revealed(store, world["engineer"], ps)
    with pytest.raises(PermissionDenied):
        pairs.set_exclusion(store, rater("ann"), ps, "ben", True)


# ---- results ---------------------------------------------------------------------------------
def _rate_everything(world, ps: str, skills: dict[str, float]) -> None:
    d, rows = desk(world), truth(world["store"], ps)
    rng = np.random.default_rng(1)
    for name, skill in skills.items():
        while (view := d.next_pair(rater(name), ps)) is not None:
            d.vote(rater(name), ps, view.ticket, simulated_choice(rows[view.ticket], skill, rng))


def test_results_are_computed_stored_and_recomputed_after_an_exclusion(world):
    store, review = world["store"], world["owner"].settings.review
    review.bootstrap_rounds = 200
    ps = make_set(world)
    _rate_everything(world, ps, {"ann": 0.95, "ben": 0.9, "cat": 0.0})
    res = results.latest(store, world["lead"], ps, review)
    n_real = store.scalar("SELECT count(*) FROM pairs WHERE pair_set_id = ? AND gold_better IS NULL", [ps])
    assert res.n_votes == store.scalar("SELECT count(*) FROM votes")
    assert list(res.ladder["variant"]) == ["adapter:tuned", "base"]  # the fixture's tuned side is better
    [comp] = res.comparisons.to_dict("records")
    assert comp["n"] == 3 * n_real and comp["rate"] > 0.5
    assert store.scalar("SELECT count(*) FROM review_ladder WHERE result_id = ?", [res.result_id]) == 2
    assert set(store.df("SELECT rater FROM review_raters WHERE result_id = ?", [res.result_id])["rater"]) == \
        {"ann", "ben", "cat"}
    assert "random?" in res.raters.set_index("rater").loc["cat", "flags"]
    # Unchanged inputs: the stored result is reused, not recomputed.
    assert results.latest(store, world["lead"], ps, review).result_id == res.result_id
    pairs.set_exclusion(store, world["lead"], ps, "cat", True, "random clicks")
    res2 = results.latest(store, world["lead"], ps, review)
    assert res2.result_id != res.result_id and res2.excluded == ["cat"]
    assert res2.n_votes == res.n_votes - store.scalar("SELECT count(*) FROM votes WHERE rater = 'cat'")
    assert bool(res2.raters.set_index("rater").loc["cat", "excluded"])


def test_exports_csv_parquet_and_an_inert_html_report(world):
    store, review = world["store"], world["owner"].settings.review
    review.bootstrap_rounds = 100
    ps = make_set(world, name="Replies <b>round</b> 1")
    _rate_everything(world, ps, {"ann": 0.9, "ben": 0.9, "cat": 0.9})
    data, name, _ = results.export(store, world["lead"], ps, review, "csv", "comparisons")
    assert name.endswith("comparisons.csv") and "adapter:tuned" in data.decode()
    data, _, _ = results.export(store, world["engineer"], ps, review, "parquet", "ladder")
    assert list(pd.read_parquet(io.BytesIO(data))["variant"]) == ["adapter:tuned", "base"]
    votes, _, _ = results.export(store, world["lead"], ps, review, "csv", "votes")
    assert len(pd.read_csv(io.BytesIO(votes))) == store.scalar("SELECT count(*) FROM votes")
    with pytest.raises(PermissionDenied):
        results.export(store, world["engineer"], ps, review, "csv", "votes")
    report = results.export(store, world["lead"], ps, review, "html")[0].decode()
    assert "Replies &lt;b&gt;round&lt;/b&gt; 1" in report and "<b>round" not in report and "<script" not in report


# ---- inert output ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, present", [
    ('<script>alert(1)</script> **hi**', ["&lt;script&gt;", "<strong>hi</strong>"]),
    ('<img src=x onerror="alert(1)">', ["&lt;img src=x"]),
    ("![pixel](http://tracker.example/p.png)", ["![pixel](http://tracker.example/p.png)"]),
    ("![x][1]\n\n[1]: https://evil.example/p.png", ["![x][1]", "[1]: https://evil.example/p.png"]),
    ("[click](javascript:alert(1)) and <https://example.com>", ["[click](javascript:alert(1))", "&lt;https://"]),
    ("`a\n\n![i](https://evil.example/i.png)\n\nb`", ["![i](https://evil.example/i.png)"]),
    ("```\n<b>code</b>\n````\nafter <i>x</i>", ["&lt;b&gt;code&lt;/b&gt;", "&lt;i&gt;x&lt;/i&gt;"]),
    ("- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |", ["<li>one</li>", "<td>2</td>"]),
])
def test_model_output_renders_formatted_but_inert(text, present):
    out = inert_html(text)
    for p in present:
        assert p in out, (p, out)
    # Nothing that runs, loads or links: no tag but the formatting ones.
    tags = set(re.findall(r"<([a-z0-9]+)", out))
    assert tags <= {"div", "p", "strong", "em", "code", "pre", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th",
                    "td", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "br"}, tags


# ---- [trust]: the prompt as the unit, plans, stored results of an older method --------------

def test_results_count_prompts_and_say_the_unit(world):
    store, review = world["store"], world["owner"].settings.review
    review.bootstrap_rounds = 100
    ps = make_set(world)
    _rate_everything(world, ps, {"ann": 0.9, "ben": 0.9, "cat": 0.6})
    res = results.latest(store, world["lead"], ps, review)
    prompts = store.scalar("SELECT count(DISTINCT prompt_idx) FROM pairs WHERE pair_set_id = ? "
                           "AND gold_better IS NULL", [ps])
    [comp] = res.comparisons.to_dict("records")
    assert (comp["prompts"], comp["n"], comp["raters"], res.n_prompts) == (prompts, 3 * prompts, 3, prompts)
    [line] = [v for v in results.verdict(res) if v.startswith("adapter:tuned vs base")]
    assert f"{prompts} prompts, {3 * prompts} votes, 3 raters each" in line
    assert ("is better" in line) == bool(comp["significant"]) and ("no clear difference" in line) != comp["significant"]
    assert "without" in line  # how the rate moves with each rater left out
    plan = results.plan_now(store, world["lead"], ps, res, review)
    assert plan.prompts == prompts and plan.raters_per_prompt == 3 and plan.icc == pytest.approx(res.icc)


def test_a_plan_before_the_pair_set_exists(world):
    spec = PairSetSpec(name="", generation_set_id=world["gen"], variants=list(VARIANTS), baseline="base",
                       raters_per_pair=3, max_prompts=20)
    plan = pairs.plan_pair_set(world["store"], world["lead"], spec)
    assert (plan.prompts, plan.raters_per_prompt, plan.icc) == (20, 3, 0.3)
    assert plan.detectable_rate == pytest.approx(stats.plan(20, 3).detectable_rate)
    assert pairs.plan_pair_set(world["store"], world["lead"], PairSetSpec(
        name="", generation_set_id=world["gen"], variants=["base"])) is None
    with pytest.raises(PermissionDenied):
        pairs.plan_pair_set(world["store"], rater("ann"), spec)


def test_results_of_an_older_method_are_recomputed_once_when_the_owner_starts(settings, env):
    """Through the real trigger: a stored result marked as computed by the vote-level method is
    recomputed by the owner's background pass at start, once; the next start leaves it alone."""
    from core.owner import Owner
    from core.users import create_user

    settings.review.bootstrap_rounds = 100
    first = Owner.open(settings, monitor=False, env=env)
    lead = create_user(first.store, User("admin", Role.ENGINEER), "leo", "correct-horse-battery", "lead")
    world = {"store": first.store, "lead": lead, "owner": first,
             "gen": seed_generation_set(first.store, n_prompts=12, variants=VARIANTS, seed=3)}
    rater_accounts(first.store, RATERS, "correct-horse-battery")
    ps = make_set(world)
    _rate_everything(world, ps, {"ann": 0.9, "ben": 0.9, "cat": 0.9})
    old = results.latest(first.store, lead, ps, settings.review)
    first.store.execute("UPDATE review_results SET settings = json_object('method', 1, 'fingerprint', 'old') "
                        "WHERE result_id = ?", [old.result_id])
    from core.regression import runs
    from tests.test_regression_runs import seed_suite_set

    suite_set = seed_suite_set(first.store, {})
    old_gate = runs.judge(first.store, lead, suite_set, "adapter:tuned", settings.regression)
    first.store.execute("UPDATE regression_gates SET settings = '{\"method\": 1}' WHERE gate_id = ?",
                        [old_gate["gate_id"]])
    first.close()

    second = Owner.open(settings, monitor=False, env=env)
    second.restating.join(timeout=60)
    newest = second.store.row("SELECT * FROM review_results WHERE pair_set_id = ? ORDER BY computed_at DESC LIMIT 1",
                              [ps])
    assert newest["result_id"] != old.result_id and newest["computed_by"] == "tuneboard"
    assert json.loads(newest["settings"])["method"] == stats.METHOD_VERSION
    assert second.store.scalar("SELECT count(*) FROM review_comparisons WHERE result_id = ?",
                               [newest["result_id"]]) == 1
    assert second.store.scalar("SELECT count(*) FROM audit_log WHERE action = 'results.restate'") == 1
    gate = second.store.row("SELECT * FROM regression_gates ORDER BY computed_at DESC LIMIT 1")
    assert gate["gate_id"] != old_gate["gate_id"] and json.loads(gate["settings"])["method"] == runs.gates.METHOD_VERSION
    second.close()
    third = Owner.open(settings, monitor=False, env=env)
    third.restating.join(timeout=60)
    assert third.store.scalar("SELECT count(*) FROM review_results WHERE pair_set_id = ?", [ps]) == 2
    assert third.store.scalar("SELECT count(*) FROM regression_gates") == 2
    assert third.store.scalar("SELECT count(*) FROM audit_log WHERE action = 'results.restate'") == 1
    third.close()
