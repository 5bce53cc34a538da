"""[api] Pair sets and rating through the HTTP API: a lead makes, assigns and reads a pair set; a
rater rates through next/vote/skip/undo exactly as blind as the Rate page (a scan of every
response and header for anything that names a variant, model, run, path, pair or side); roles
answer 403 with nothing written; tickets are opaque, per rater and bounded; a vote counts once.

The generation set is a seeded fixture (core.demo.review): no model runs here.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading

import pytest

from api.routes import rating, review
from core.demo.review import rater_accounts, seed_generation_set
from tests.apptest import use_fast_password_hashing
from tests.conftest import PASSWORD
from tests.test_api import bearer, client, token_of  # noqa: F401  (client is a fixture)

VARIANTS = ("base", "adapter:tuned")


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    use_fast_password_hashing(monkeypatch)


@pytest.fixture
def world(owner, accounts, client):  # noqa: F811
    rater_accounts(owner.store, ["ann", "ben"], PASSWORD)
    owner.settings.review.bootstrap_rounds = 100   # the statistics are tested in test_review*.py
    owner.desk.min_vote_seconds = 0.0              # the double-click guard has its own test below
    gen = seed_generation_set(owner.store, n_prompts=8, variants=VARIANTS, seed=3)
    tokens = {name: token_of(client, name) for name in ("rita", "ann", "leo", "eve")}
    return {"owner": owner, "store": owner.store, "gen": gen, "client": client,
            "h": {name: bearer(t) for name, t in tokens.items()}}


def create(w, raters=("rita", "ann"), k=2, **extra) -> str:
    body = {"name": "Support replies, round 1", "generation_set_id": w["gen"], "variants": list(VARIANTS),
            "baseline": "base", "raters": list(raters), "raters_per_pair": k, "gold_rate": 0.0, "seed": 5, **extra}
    r = w["client"].post("/pair-sets", json=body, headers=w["h"]["leo"])
    assert r.status_code == 201, r.text
    return r.json()["pair_set_id"]


def snapshot(store) -> str:
    """Every table's content, hashed (api_tokens left out: using a token notes when it was last used)."""
    tables = [r["table_name"] for r in store.rows("SELECT table_name FROM information_schema.tables "
                                                 "WHERE table_schema = 'main' ORDER BY table_name")]
    digest = hashlib.sha256()
    for t in tables:
        if t != "api_tokens":
            digest.update(t.encode() + store.df(f"SELECT * FROM {t}").to_csv(index=False).encode())
    return digest.hexdigest()


# ---- a lead's side ---------------------------------------------------------------------------
def test_a_lead_creates_assigns_and_watches_a_pair_set(world):
    c, h, store = world["client"], world["h"], world["store"]
    body = {"name": "Support replies, round 1", "generation_set_id": world["gen"], "variants": list(VARIANTS),
            "raters": ["rita"], "raters_per_pair": 1}
    plan = c.post("/pair-sets/plan", json=body, headers=h["leo"])
    assert plan.status_code == 200 and plan.json()["prompts"] == 8 and "prompts" in plan.json()["sentence"]
    made = c.post("/pair-sets", json=body, headers=h["leo"])
    assert made.status_code == 201, made.text
    ps = made.json()["pair_set_id"]
    assert made.json()["plan"] == plan.json()
    assert [s["pair_set_id"] for s in c.get("/pair-sets", headers=h["leo"]).json()] == [ps]
    shown = c.get(f"/pair-sets/{ps}", headers=h["eve"]).json()
    assert shown["variants"] == list(VARIANTS) and shown["gold_rate"] == 0.1  # the setting's default
    added = c.put(f"/pair-sets/{ps}/raters", json={"raters": ["rita", "ann"], "raters_per_pair": 2}, headers=h["leo"])
    assert added.status_code == 200 and set(added.json()["added"]) == {"rita", "ann"}
    progress = c.get(f"/pair-sets/{ps}/progress", headers=h["leo"]).json()
    n_pairs = store.scalar("SELECT count(*) FROM pairs WHERE pair_set_id = ?", [ps])
    assert {(p["rater"], p["assigned"], p["voted"]) for p in progress} == {("rita", n_pairs, 0), ("ann", n_pairs, 0)}
    empty = c.get(f"/pair-sets/{ps}/results", headers=h["leo"]).json()
    assert empty["result_id"] is None and empty["n_votes"] == 0 and empty["plan"]["prompts"] == 8
    # Bad requests name their field; unknown sets are 404; nothing of either is written.
    before = snapshot(store)
    bad = c.post("/pair-sets", json={**body, "variants": ["base", "nope"], "name": "tuned vs base"}, headers=h["leo"])
    assert bad.status_code == 400 and "variants" in bad.json()["error"]["message"] \
        and "name" in bad.json()["error"]["message"]
    assert c.post("/pair-sets", json={**body, "design": "sideways"}, headers=h["leo"]).status_code == 422
    for path in ("", "/progress", "/results", "/export"):
        r = c.get(f"/pair-sets/pairs-nope{path}", headers=h["leo"])
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, r.text)
    assert snapshot(store) == before


def test_votes_cast_through_the_api_reach_the_results_and_the_exports(world):
    c, h, store = world["client"], world["h"], world["store"]
    ps = create(world, raters=("rita",), k=1)
    recorded = 0
    while not (nxt := c.get(f"/rating/{ps}/next", headers=h["rita"]).json())["finished"]:
        r = c.post(f"/rating/{ps}/vote", json={"ticket": nxt["ticket"], "choice": 1}, headers=h["rita"])
        recorded += r.json()["status"] == "recorded"
    assert recorded == nxt["progress"]["done"] == nxt["progress"]["total"] == store.scalar("SELECT count(*) FROM votes")
    res = c.get(f"/pair-sets/{ps}/results", headers=h["leo"])
    assert res.status_code == 200, res.text
    res = res.json()
    assert res["n_votes"] == recorded and res["ballots"] == recorded and res["n_prompts"] == 8
    [comp] = res["comparisons"]
    assert comp["n"] == recorded and 0 <= comp["lo"] <= comp["rate"] <= comp["hi"] <= 1 and "8 prompts" in comp["units"]
    assert {r["variant"] for r in res["ladder"]} == set(VARIANTS)
    assert res["position_bias"]["share_first"] == 1.0  # every vote said "Response 1"
    assert any(line.startswith("adapter:tuned vs base") for line in res["verdict"])
    assert res["plan"]["prompts"] == 8 and res["settings"]["bootstrap_rounds"] == 100
    # Unchanged votes: the stored result is served again, not recomputed.
    again = c.get(f"/pair-sets/{ps}/results", headers=h["leo"]).json()
    assert again["result_id"] == res["result_id"] and store.scalar("SELECT count(*) FROM review_results") == 1
    assert c.get(f"/pair-sets/{ps}/results?refresh=false", headers=h["eve"]).json()["result_id"] == res["result_id"]

    csv = c.get(f"/pair-sets/{ps}/export", params={"format": "csv", "table": "votes"}, headers=h["leo"])
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert f'filename="{ps}-votes.csv"' in csv.headers["content-disposition"]
    assert len(csv.text.strip().splitlines()) == recorded + 1
    votes = c.get(f"/pair-sets/{ps}/export", params={"format": "json", "table": "votes"}, headers=h["leo"]).json()
    assert len(votes) == recorded and {v["rater"] for v in votes} == {"rita"}
    ladder = c.get(f"/pair-sets/{ps}/export", params={"format": "json", "table": "ladder"}, headers=h["eve"]).json()
    assert {r["variant"] for r in ladder} == set(VARIANTS)
    report = c.get(f"/pair-sets/{ps}/export", params={"format": "html"}, headers=h["eve"])
    assert report.status_code == 200 and "<script" not in report.text
    # Every vote with its model names is the lead's alone (core: review.reveal).
    assert c.get(f"/pair-sets/{ps}/export", params={"table": "votes"}, headers=h["eve"]).status_code == 403


# ---- a rater's side --------------------------------------------------------------------------
def test_a_rater_rates_skips_and_undoes_through_the_api(world):
    c, h, store = world["client"], world["h"], world["store"]
    ps = create(world)
    [task] = c.get("/rating/tasks", headers=h["rita"]).json()
    assert task["pair_set_id"] == ps and task["name"] == "Support replies, round 1"
    total = task["progress"]["total"]
    first = c.get(f"/rating/{ps}/next", headers=h["rita"]).json()
    assert not first["finished"] and first["progress"] == {"done": 0, "total": total, "skipped": 0}
    assert first["conversation"] and first["response_1"] is not None and first["response_2"] is not None
    assert c.get(f"/rating/{ps}/next", headers=h["rita"]).json()["ticket"] == first["ticket"]  # same pair, same ticket

    skipped = c.post(f"/rating/{ps}/skip", json={"ticket": first["ticket"]}, headers=h["rita"])
    assert skipped.json()["status"] == "skipped"
    second = c.get(f"/rating/{ps}/next", headers=h["rita"]).json()
    assert second["ticket"] != first["ticket"] and second["progress"]["skipped"] == 1
    vote = c.post(f"/rating/{ps}/vote", json={"ticket": second["ticket"], "choice": "tie", "rationale": "both fine"},
                  headers=h["rita"])
    assert vote.status_code == 200 and vote.json()["status"] == "recorded"
    assert store.rows("SELECT choice, rationale FROM votes") == [{"choice": "tie", "rationale": "both fine"}]

    undo = c.post(f"/rating/{ps}/undo", headers=h["rita"]).json()
    assert undo["status"] == "undone" and store.scalar("SELECT count(*) FROM votes") == 0
    back = c.get(f"/rating/{ps}/next", headers=h["rita"]).json()
    assert (back["response_1"], back["response_2"], back["progress"]["done"]) == \
        (second["response_1"], second["response_2"], 0)
    assert c.post(f"/rating/{ps}/undo", headers=h["rita"]).json()["status"] == "nothing_to_undo"

    # Every other pair, then the skipped one comes back, then the task is finished.
    seen = []
    while not (nxt := c.get(f"/rating/{ps}/next", headers=h["rita"]).json())["finished"]:
        seen.append(nxt["returning"])
        assert c.post(f"/rating/{ps}/vote", json={"ticket": nxt["ticket"], "choice": "both_bad"},
                      headers=h["rita"]).json()["status"] == "recorded"
    assert len(seen) == total and seen[-1] is True and not any(seen[:-1])
    assert nxt["progress"] == {"done": total, "total": total, "skipped": 0} and nxt["ticket"] is None
    assert store.scalar("SELECT count(*) FROM votes WHERE rater = 'rita'") == total

    # A bad choice or a too-long rationale is refused by the schema; a set not theirs is a 404.
    r = c.post(f"/rating/{ps}/vote", json={"ticket": first["ticket"], "choice": "3"}, headers=h["rita"])
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "choice"
    assert c.get("/rating/pairs-nope/next", headers=h["rita"]).status_code == 404


def test_a_vote_counts_once_however_often_it_is_sent(world):
    c, h, store = world["client"], world["h"], world["store"]
    ps = create(world)
    pair = c.get(f"/rating/{ps}/next", headers=h["rita"]).json()
    body = {"ticket": pair["ticket"], "choice": "2"}
    assert c.post(f"/rating/{ps}/vote", json=body, headers=h["rita"]).json()["status"] == "recorded"
    again = c.post(f"/rating/{ps}/vote", json=body, headers=h["rita"]).json()
    assert again["status"] == "duplicate" and "once" in again["message"]
    assert store.scalar("SELECT count(*) FROM votes") == 1

    # Two requests with the same ticket at the same moment (a double click): one row.
    pair = c.get(f"/rating/{ps}/next", headers=h["rita"]).json()
    go, statuses = threading.Barrier(2), []

    def send() -> None:
        go.wait()
        statuses.append(c.post(f"/rating/{ps}/vote", json={"ticket": pair["ticket"], "choice": "1"},
                               headers=h["rita"]).json()["status"])

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == ["duplicate", "recorded"] and store.scalar("SELECT count(*) FROM votes") == 2

    # A click right after the pair appeared is taken for a double click, as on the page.
    world["owner"].desk.min_vote_seconds = 60.0
    pair = c.get(f"/rating/{ps}/next", headers=h["rita"]).json()
    r = c.post(f"/rating/{ps}/vote", json={"ticket": pair["ticket"], "choice": "1"}, headers=h["rita"]).json()
    assert r["status"] == "ignored" and store.scalar("SELECT count(*) FROM votes") == 2


def test_a_ticket_is_good_only_for_its_rater_and_its_task(world):
    c, h, store = world["client"], world["h"], world["store"]
    ps = create(world)            # rita and ann both hold every pair (2 raters per pair)
    other = create(world)
    ritas = c.get(f"/rating/{ps}/next", headers=h["rita"]).json()["ticket"]
    before = snapshot(store)
    for who, pair_set, ticket in (("ann", ps, ritas), ("rita", other, ritas), ("rita", ps, "made-up"),
                                  ("rita", ps, ritas[:-1])):
        for action in ("vote", "skip"):
            r = c.post(f"/rating/{pair_set}/{action}", json={"ticket": ticket, "choice": "1"}, headers=h[who])
            assert r.status_code == 409, (who, action, r.text)
            assert r.json()["error"]["code"] == "stale_ticket" and "/next" in r.json()["error"]["message"]
    assert snapshot(store) == before
    # Ann's own ticket for the same pair is another string.
    assert c.get(f"/rating/{ps}/next", headers=h["ann"]).json()["ticket"] != ritas


def test_the_ticket_book_is_bounded_and_its_tickets_expire():
    now = [0.0]
    book = rating.TicketBook(per_rater=3, raters=2, ttl=60, clock=lambda: now[0])
    handles = [book.issue("rita", "ps", pair) for pair in range(4)]
    assert len(set(handles)) == 4 and all(len(x) >= 32 for x in handles)
    assert book.resolve("rita", "ps", handles[0]) is None          # the oldest went first
    assert [book.resolve("rita", "ps", x) for x in handles[1:]] == [1, 2, 3]
    assert book.issue("rita", "ps", 3) == handles[3]                # served again: the same ticket
    assert book.resolve("ann", "ps", handles[1]) is None and book.resolve("rita", "other", handles[1]) is None
    now[0] = 61
    assert book.resolve("rita", "ps", handles[1]) is None           # expired
    book.issue("ann", "ps", 1)
    book.issue("ben", "ps", 1)                                      # a third rater: rita's book goes
    assert book.resolve("rita", "ps", handles[3]) is None


# ---- blindness -------------------------------------------------------------------------------
ALLOWED_KEYS = {"finished", "ticket", "conversation", "role", "content", "response_1", "response_2", "returning",
                "progress", "done", "total", "skipped", "status", "message", "pair_set_id", "name", "instructions",
                "error", "code", "fields", "field"}
NUMBERS = {"done", "total", "skipped"}
CONTENT = {"content", "response_1", "response_2"}
SIDE_WORDS = r"\b(left|right|side|sides|left_is_a|a_text|b_text|pair_id|variant|variants|model|adapter|base|" \
             r"outcome|gold)\b"


def _forbidden(store, settings) -> list[str]:
    """Everything that would tell a rater which model wrote which response, from the database."""
    terms = set()
    for g in store.rows("SELECT set_id, base_model, variants FROM generation_sets"):
        terms.update([g["set_id"], g["base_model"]])
        for v in json.loads(g["variants"]):
            terms.update(str(v.get(k) or "") for k in ("variant_id", "name", "model", "path"))
    for p in store.rows("SELECT DISTINCT a, b FROM pairs"):
        terms.update([p["a"], p["b"]])
    terms.update(r["job_id"] for r in store.rows("SELECT job_id FROM jobs"))
    terms.update(r["run_dir"] for r in store.rows("SELECT run_dir FROM jobs"))
    terms.update([str(settings.workspace_dir), str(settings.runs_dir), str(settings.database_path)])
    terms.update(str(getattr(settings.model, "base", "") or "").split())
    return sorted(t for t in terms if t and len(t) >= 3)


def _walk(value, key, found: list[tuple[str, object]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            found.append(("<key>", k))
            _walk(v, k, found)
    elif isinstance(value, list):
        for v in value:
            _walk(v, key, found)
    else:
        found.append((key, value))


def test_nothing_a_rater_receives_names_a_variant_model_run_path_pair_or_side(world):
    c, h, store, owner = world["client"], world["h"], world["store"], world["owner"]
    ps = create(world)
    seen = []

    def call(method: str, path: str, **kw):
        r = c.request(method, path, headers=h["rita"], **kw)
        seen.append(r)
        return r

    call("GET", "/rating/tasks")
    first = call("GET", f"/rating/{ps}/next").json()
    call("POST", f"/rating/{ps}/skip", json={"ticket": first["ticket"]})
    call("POST", f"/rating/{ps}/vote", json={"ticket": first["ticket"], "choice": "1"})
    call("POST", f"/rating/{ps}/vote", json={"ticket": first["ticket"], "choice": "1"})  # duplicate
    call("POST", f"/rating/{ps}/undo")
    call("POST", f"/rating/{ps}/vote", json={"ticket": "made-up", "choice": "1"})        # 409
    call("POST", f"/rating/{ps}/vote", json={"ticket": first["ticket"], "choice": "9"})  # 422
    call("GET", "/rating/pairs-nope/next")                                               # 404
    while not (nxt := call("GET", f"/rating/{ps}/next").json())["finished"]:
        call("POST", f"/rating/{ps}/vote", json={"ticket": nxt["ticket"], "choice": "2"})
    call("POST", f"/rating/{ps}/undo")
    call("GET", f"/rating/{ps}/next")
    call("GET", "/rating/tasks")
    assert {r.status_code for r in seen} == {200, 404, 409, 422}

    forbidden = _forbidden(store, owner.settings)
    assert "adapter:tuned" in forbidden and world["gen"] in forbidden
    pair_ids = {str(p) for p in store.df("SELECT pair_id FROM pairs")["pair_id"]}
    truths = {(r["a_text"], r["b_text"]) for r in store.rows("SELECT a_text, b_text FROM pairs")}
    tickets = set()
    for r in seen:
        head = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        for term in forbidden:
            assert term.lower() not in head.lower(), (term, head)
            assert term.lower() not in r.text.lower(), (term, r.request.url, r.text[:300])
        assert not re.search(SIDE_WORDS, head, re.I)
        body = r.json()
        found: list[tuple[str, object]] = []
        _walk(body, "", found)
        for key, value in found:
            if key == "<key>":
                assert value in ALLOWED_KEYS, (value, r.text[:300])
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                assert key in NUMBERS, (key, value)   # no number but the progress counts
            elif isinstance(value, str) and key not in CONTENT:
                assert not re.search(SIDE_WORDS, value, re.I), (key, value)
                assert value not in pair_ids, (key, value)
        if isinstance(body, dict) and body.get("response_1") is not None:
            shown = (body["response_1"], body["response_2"])
            assert shown in truths or shown[::-1] in truths           # the two texts, nothing added
            tickets.add(body["ticket"])
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) and not t.isdigit() for t in tickets)


# ---- roles -----------------------------------------------------------------------------------
def _review_calls(ps: str, gen: str) -> dict[tuple[str, str], dict]:
    body = {"name": "Round 2", "generation_set_id": gen, "variants": list(VARIANTS), "raters": ["ann"],
            "raters_per_pair": 1}
    return {("GET", "/pair-sets"): {},
            ("POST", "/pair-sets/plan"): {"json": body},
            ("POST", "/pair-sets"): {"json": body},
            ("GET", "/pair-sets/{pair_set_id}"): {},
            ("PUT", "/pair-sets/{pair_set_id}/raters"): {"json": {"raters": ["ann"], "raters_per_pair": 1}},
            ("GET", "/pair-sets/{pair_set_id}/progress"): {},
            ("GET", "/pair-sets/{pair_set_id}/results"): {},
            ("GET", "/pair-sets/{pair_set_id}/export"): {"params": {"format": "csv", "table": "comparisons"}}}


def _rating_calls() -> dict[tuple[str, str], dict]:
    return {("GET", "/rating/tasks"): {},
            ("GET", "/rating/{pair_set_id}/next"): {},
            ("POST", "/rating/{pair_set_id}/vote"): {"json": {"ticket": "made-up", "choice": "1"}},
            ("POST", "/rating/{pair_set_id}/skip"): {"json": {"ticket": "made-up"}},
            ("POST", "/rating/{pair_set_id}/undo"): {}}


def _routes(router) -> set[tuple[str, str]]:
    return {(m, r.path) for r in router.routes for m in r.methods}


def test_a_raters_token_gets_403_on_every_pair_set_route_and_others_on_every_rating_route(world):
    c, h, store = world["client"], world["h"], world["store"]
    ps = create(world)
    pair = c.get(f"/rating/{ps}/next", headers=h["rita"]).json()
    c.post(f"/rating/{ps}/vote", json={"ticket": pair["ticket"], "choice": "1"}, headers=h["rita"])
    c.get(f"/pair-sets/{ps}/results", headers=h["leo"])  # a stored result exists: a GET has nothing to compute
    review_calls, rating_calls = _review_calls(ps, world["gen"]), _rating_calls()
    assert set(review_calls) == _routes(review.router) and set(rating_calls) == _routes(rating.router)
    before = snapshot(store)
    for who, calls in (("rita", review_calls), ("ann", review_calls), ("leo", rating_calls), ("eve", rating_calls)):
        for (method, path), kw in calls.items():
            r = c.request(method, path.format(pair_set_id=ps), headers=h[who], **kw)
            assert r.status_code == 403, (who, method, path, r.text)
            assert r.json()["error"]["code"] == "forbidden" and "Traceback" not in r.text
    for (method, path), kw in {**review_calls, **rating_calls}.items():
        assert c.request(method, path.format(pair_set_id=ps), **kw).status_code == 401
    assert snapshot(store) == before
    # And allowed where the role allows it (the lead's calls above; the rater's here).
    assert c.get("/rating/tasks", headers=h["rita"]).status_code == 200


def test_every_route_of_the_area_is_summarised_in_the_schema(client):  # noqa: F811
    schema = client.get("/openapi.json").json()
    ours = {p: ops for p, ops in schema["paths"].items() if p.startswith(("/pair-sets", "/rating"))}
    assert len(ours) == 12
    for path, ops in ours.items():
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
