"""[api] Webhooks against a local receiver this test starts (never an outside service): signed
deliveries that verify with the hook's secret; a receiver that fails first gets it on retry; one
that is down across an owner restart still gets the pending delivery; giving up after the
retries; no event delivered twice. Each event kind comes from the real thing that causes it
(a job's worker events, a gate judged, a pair set voted to the end, a schedule firing on the
owner's clock, a promotion and a rollback), found by the owner's own pass (the monitor's
reconcile + follow-ups), not by calling the collector by hand."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core import owner as owners
from core import webhooks
from core.auth import CLI_USER
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.lifecycle import promotion, schedules
from core.owner import Owner, follow_ups
from core.store.migrations import MIGRATIONS
from core.users import create_user
from tests.conftest import PASSWORD, known_versions
from tests.test_lifecycle_schedules import task  # noqa: F401  (a fixture: a task with a finished run, quiet jobs)

FAST = webhooks.Policy(timeout_s=3.0, backoff_s=0.05, max_backoff_s=0.2, retries=5, poll_s=0.02, senders=2,
                       pairset_every_s=0.0)
REASON = "written reason for the record"


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    """Short waits for every Webhooks the owner makes in these tests (set before any owner opens)."""
    monkeypatch.setattr(webhooks, "POLICY", FAST)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A local HTTP receiver: answers each POST with the next of `answers` (then 200), records it."""

    def __init__(self, answers=(), delay: float = 0.0, port: int | None = None):
        self.answers, self.delay = list(answers), delay
        self.port = port or free_port()
        self.got: list[tuple[dict, bytes]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/tuneboard"

    def start(self) -> "Receiver":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer._lock:
                    outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    code = outer.answers.pop(0) if outer.answers else 200
                time.sleep(outer.delay)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[dict, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n:
            assert time.monotonic() < deadline, f"the receiver got {len(self.got)} of {n} deliveries"
            time.sleep(0.02)
        return self.got

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _, body in self.got]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def tick(owner) -> None:
    """One pass of the owner's monitor, as JobMonitor runs it every second."""
    owner.jobs.reconcile()
    follow_ups(owner.store, owner.jobs, owner.settings, owner.hooks)


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return found


def delivery_rows(store, hook_id: str) -> list[dict]:
    return store.rows("SELECT * FROM webhook_deliveries WHERE hook_id = ? ORDER BY created_at", [hook_id])


def test_a_promotion_and_a_rollback_arrive_signed_once_each(owner, accounts, receiver):
    eng = accounts["engineer"]
    hook, secret = webhooks.create_hook(owner.store, eng, receiver.url, ["promotion", "rollback"], "ci")
    assert secret.startswith("whsec_") and hook["secret"] == secret
    assert "secret" not in webhooks.list_hooks(owner.store, eng)[0]
    owner.hooks.start()
    known_versions(owner.store, "adapter:one", "adapter:two", "adapter:three")
    promotion.promote(owner.store, eng, "adapter:one", REASON, override=True, task="tickets")
    promotion.promote(owner.store, eng, "adapter:two", REASON, override=True, task="tickets")
    promotion.rollback(owner.store, eng, "tickets", REASON)
    tick(owner)
    got = receiver.wait(3)
    for headers, body in got:  # what a receiver does: recompute the HMAC of the raw body with the secret
        assert webhooks.verify(secret, body, headers["x-tuneboard-signature"])
        assert not webhooks.verify("whsec_wrong", body, headers["x-tuneboard-signature"])
        assert headers["content-type"] == "application/json"
        assert headers["x-tuneboard-event"] == json.loads(body)["event"]
    sent = sorted(receiver.payloads(), key=lambda p: (p["event"], p["data"]["variant_id"]))
    assert [(p["event"], p["data"]["variant_id"]) for p in sent] == [
        ("promotion", "adapter:one"), ("promotion", "adapter:two"), ("rollback", "adapter:one")]
    assert sent[2]["data"]["rolled_back_from"] == "adapter:two" and sent[2]["data"]["task"] == "tickets"
    assert sent[0]["data"]["override"] is True and sent[0]["data"]["by"] == eng.username
    assert all(p["id"].startswith("ev_") and p["at"].endswith("Z") for p in sent)
    # The data's own times too: UTC with a Z, within a minute of when the receiver got them.
    for p in sent:
        stamped = datetime.fromisoformat(p["data"]["at"].replace("Z", "+00:00"))
        assert p["data"]["at"].endswith("Z") and abs(stamped - datetime.now(timezone.utc)) < timedelta(minutes=1)
    # More passes (and a restart-free second look) announce nothing again.
    for _ in range(3):
        tick(owner)
    time.sleep(0.2)
    assert len(receiver.got) == 3
    rows = delivery_rows(owner.store, hook["hook_id"])
    assert len(rows) == 3 and {r["status"] for r in rows} == {"delivered"} and {r["attempts"] for r in rows} == {1}
    assert {h["x-tuneboard-delivery"] for h, _ in got} == {r["delivery_id"] for r in rows}
    assert owner.store.scalar("SELECT count(*) FROM webhook_events WHERE event IN ('promotion', 'rollback')") == 3
    # A later pass (the owner's passes after its first look only at recent rows) finds the next one.
    promotion.promote(owner.store, eng, "adapter:three", REASON, override=True, task="tickets")
    tick(owner)
    assert json.loads(receiver.wait(4)[3][1])["data"]["variant_id"] == "adapter:three"
    trail = owner.store.rows("SELECT actor, action, target FROM audit_log WHERE action LIKE 'webhook.%'")
    assert trail == [{"actor": eng.username, "action": "webhook.create", "target": hook["hook_id"]}]


def test_a_receiver_that_fails_first_gets_the_same_signed_body_on_retry(owner, accounts):
    receiver = Receiver(answers=[500, 503]).start()
    try:
        hook, secret = webhooks.create_hook(owner.store, accounts["engineer"], receiver.url, ["promotion"])
        owner.hooks.start()
        delivery = webhooks.send_test(owner.store, accounts["engineer"], hook["hook_id"])
        owner.hooks.wake()
        got = receiver.wait(3)
        row = wait_for(lambda: owner.store.row("SELECT * FROM webhook_deliveries WHERE delivery_id = ? AND "
                                               "status = 'delivered'", [delivery]))
    finally:
        receiver.stop()
    assert row["attempts"] == 3 and row["last_code"] == 200 and row["next_attempt_at"] is None
    assert [a["code"] for a in json.loads(row["log"])] == [500, 503, 200]
    assert "HTTP 500" in json.loads(row["log"])[0]["error"]
    assert len({body for _, body in got}) == 1  # every retry sends (and signs) the same bytes
    assert {h["x-tuneboard-delivery"] for h, _ in got} == {delivery}
    assert all(webhooks.verify(secret, body, h["x-tuneboard-signature"]) for h, body in got)
    assert json.loads(got[0][1])["event"] == "ping"
    listed = webhooks.deliveries(owner.store, accounts["engineer"], hook["hook_id"])
    assert listed[0]["status"] == "delivered" and len(listed[0]["log"]) == 3


def test_it_gives_up_after_five_retries_and_says_why(owner, accounts):
    down = Receiver()  # never started: connection refused
    hook, _ = webhooks.create_hook(owner.store, accounts["engineer"], down.url, ["promotion"])
    failing = Receiver(answers=[500] * 10).start()
    try:
        other, _ = webhooks.create_hook(owner.store, accounts["engineer"], failing.url, ["promotion"])
        owner.hooks.start()
        known_versions(owner.store, "adapter:one", "adapter:two", "adapter:three")
        promotion.promote(owner.store, accounts["engineer"], "adapter:one", REASON, override=True, task="t")
        tick(owner)
        def both_gave_up():
            rows = owner.store.rows("SELECT * FROM webhook_deliveries WHERE status = 'gave_up'")
            return rows if len(rows) == 2 else None

        rows = wait_for(both_gave_up)
        time.sleep(0.3)
    finally:
        failing.stop()
    assert len(failing.got) == 6  # the first attempt and 5 retries, then nothing more
    for r in rows:
        log = json.loads(r["log"])
        assert r["attempts"] == 6 and len(log) == 6 and r["next_attempt_at"] is None and r["delivered_at"] is None
    refused = next(r for r in rows if r["hook_id"] == hook["hook_id"])
    assert refused["last_code"] is None and "Connection" in refused["last_error"]
    assert next(r for r in rows if r["hook_id"] == other["hook_id"])["last_code"] == 500
    # The waits doubled: 0.05, 0.1, 0.2 and then the cap (0.2 s here; 10 minutes by default).
    assert [FAST.delay(n) for n in range(1, 6)] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert [webhooks.Policy().delay(n) for n in (1, 2, 5, 7, 20)] == [10, 20, 160, 600, 600]


def test_a_receiver_down_across_an_owner_restart_gets_the_delivery_after_it(settings, env, monkeypatch):
    # Slower retries than FAST: the delivery must still be pending when the owner stops.
    monkeypatch.setattr(webhooks, "POLICY", webhooks.Policy(backoff_s=0.5, max_backoff_s=1.0, poll_s=0.05,
                                                            pairset_every_s=0.0))
    receiver = Receiver()  # its port is chosen, nothing listens yet
    first = Owner.open(settings, monitor=True, env=env)
    try:
        eng = create_user(first.store, CLI_USER, "eve", PASSWORD, "engineer")
        hook, secret = webhooks.create_hook(first.store, eng, receiver.url, ["promotion"])
        known_versions(first.store, "adapter:one", "adapter:two", "adapter:three")
        promotion.promote(first.store, eng, "adapter:one", REASON, override=True, task="t")
        # The real monitor (every second) finds it and the sender tries it once, in vain.
        row = wait_for(lambda: next((r for r in delivery_rows(first.store, hook["hook_id"]) if r["attempts"] >= 1),
                                    None), timeout=15)
        assert row["status"] == "pending" and row["last_code"] is None
    finally:
        first.close()
    receiver.start()
    second = Owner.open(settings, monitor=True, env=env)
    try:
        got = receiver.wait(1, timeout=15)
        wait_for(lambda: second.store.row("SELECT 1 FROM webhook_deliveries WHERE status = 'delivered'"))
        time.sleep(1.5)  # a pass of the new monitor or two: nothing is announced or sent again
        assert len(receiver.got) == 1
        assert second.store.scalar("SELECT count(*) FROM webhook_deliveries") == 1
        assert second.store.scalar("SELECT count(*) FROM webhook_events WHERE event = 'promotion'") == 1
    finally:
        second.close()
        receiver.stop()
    headers, body = got[0]
    assert webhooks.verify(secret, body, headers["x-tuneboard-signature"])
    assert json.loads(body)["data"]["variant_id"] == "adapter:one"


def test_a_delivery_in_flight_is_not_sent_twice_and_never_holds_up_the_tick(owner, accounts):
    receiver = Receiver(delay=0.6).start()  # slower than many polls of the sender
    try:
        hook, _ = webhooks.create_hook(owner.store, accounts["engineer"], receiver.url, ["promotion"])
        owner.hooks.start()
        known_versions(owner.store, "adapter:one", "adapter:two", "adapter:three")
        promotion.promote(owner.store, accounts["engineer"], "adapter:one", REASON, override=True, task="t")
        started = time.monotonic()
        tick(owner)
        receiver.wait(1)
        tick(owner)  # while the receiver is still answering
        assert time.monotonic() - started < 0.6 + 0.5
        wait_for(lambda: owner.store.row("SELECT 1 FROM webhook_deliveries WHERE status = 'delivered'"))
        time.sleep(0.3)
    finally:
        receiver.stop()
    assert len(receiver.got) == 1


class FakeLauncher:
    """Starts nothing (the test writes the worker's events); the worker is never alive."""

    def start(self, job_id, module, run_dir) -> int:
        return 4242

    def alive(self, job_id, pid) -> bool:
        return False

    def stop(self, job_id, pid) -> None:
        pass

    def end(self, job_id, pid) -> int:
        return 0


def _worker_says(run_dir: str, *events: dict) -> None:
    with open(Path(run_dir, "events.jsonl"), "a") as fh:
        for seq, event in enumerate(events, start=1):
            fh.write(json.dumps({"seq": seq, "at": time.time(), **event}) + "\n")


def _train_job(owner, eng) -> str:
    def record(cur, job_id):
        cur.execute("INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage) VALUES "
                    "(?, 'tickets-v1', 'tiny', 'lora', '{}', '{}')", [job_id])

    return owner.jobs.submit(eng, "train", {"train": {"base_model": "tiny", "method": "lora"}}, record=record)


def test_training_runs_that_finish_or_fail_are_announced_by_the_monitors_pass(owner, accounts, receiver):
    eng = accounts["engineer"]
    hook, _ = webhooks.create_hook(owner.store, eng, receiver.url, ["run.finished", "run.failed"])
    owner.hooks.start()
    owner.jobs.launchers = {"train": FakeLauncher()}
    done, broken, stopped = _train_job(owner, eng), _train_job(owner, eng), _train_job(owner, eng)
    _worker_says(owner.jobs.get(done)["run_dir"], {"type": "started"},
                 {"type": "finished", "adapter_dir": "/runs/x/adapter", "step": 12, "best_eval_loss": 0.5})
    _worker_says(owner.jobs.get(broken)["run_dir"], {"type": "started"},
                 {"type": "failed", "error": "CUDA out of memory at step 3"})
    _worker_says(owner.jobs.get(stopped)["run_dir"], {"type": "started"}, {"type": "cancelled"})
    tick(owner)
    receiver.wait(2)
    tick(owner)
    time.sleep(0.2)
    by_event = {p["event"]: p["data"] for p in receiver.payloads()}
    assert len(receiver.got) == 2 and set(by_event) == {"run.finished", "run.failed"}  # not the cancelled one
    assert by_event["run.finished"]["run_id"] == done and by_event["run.finished"]["status"] == "succeeded"
    assert by_event["run.finished"]["variant_id"] == f"adapter:{done}"
    assert by_event["run.finished"]["final_step"] == 12 and by_event["run.finished"]["dataset_version"] == "tickets-v1"
    assert by_event["run.failed"]["run_id"] == broken and "out of memory" in by_event["run.failed"]["error"]


def test_a_gate_verdict_is_announced_once_with_its_verdict(owner, accounts, receiver):
    from core.regression import runs
    from tests.test_regression_runs import seed_suite_set

    hook, secret = webhooks.create_hook(owner.store, accounts["engineer"], receiver.url, ["gate.verdict"])
    owner.hooks.start()
    set_id = seed_suite_set(owner.store, {})
    gate = runs.judge(owner.store, accounts["lead"], set_id, "adapter:tuned", owner.settings.regression)
    # Read back: the stored gate, no new one.
    runs.judge(owner.store, accounts["lead"], set_id, "adapter:tuned", owner.settings.regression)
    tick(owner)
    [(headers, body)] = receiver.wait(1)
    tick(owner)
    time.sleep(0.2)
    assert len(receiver.got) == 1 and webhooks.verify(secret, body, headers["x-tuneboard-signature"])
    data = json.loads(body)["data"]
    assert data["gate_id"] == gate["gate_id"] and data["verdict"] == gate["verdict"] == "pass"
    assert data["variant_id"] == "adapter:tuned" and data["items"] == gate["detail"]["overall"]["n"]


def test_a_pair_set_is_complete_once_every_assignment_has_its_vote(owner, accounts, receiver):
    from core.demo.review import seed_generation_set
    from core.review.desk import RatingDesk
    from core.review.pairs import PairSetSpec, create_pair_set

    hook, _ = webhooks.create_hook(owner.store, accounts["engineer"], receiver.url, ["pairset.complete"])
    owner.hooks.start()
    gen = seed_generation_set(owner.store, n_prompts=3, seed=1)
    pair_set = create_pair_set(owner.store, accounts["lead"], PairSetSpec(
        name="Round 1", generation_set_id=gen, variants=["base", "adapter:tuned"], raters=["rita"],
        raters_per_pair=1, gold_rate=0.0))
    desk, rita = RatingDesk(owner.store, 0.0), accounts["rater"]
    views = 0
    while (view := desk.next_pair(rita, pair_set)) is not None:
        tick(owner)  # not complete yet: nothing announced
        assert owner.store.scalar("SELECT count(*) FROM webhook_events WHERE event = 'pairset.complete'") == 0
        desk.vote(rita, pair_set, view.ticket, "tie")
        views += 1
    assert views == 3
    tick(owner)
    receiver.wait(1)
    for _ in range(2):
        tick(owner)
    time.sleep(0.2)
    [payload] = receiver.payloads()
    assert payload["event"] == "pairset.complete"
    assert payload["data"] == {**payload["data"], "pair_set_id": pair_set, "name": "Round 1", "votes": 3, "raters": 1}
    assert "base" not in json.dumps(payload["data"]) and "rita" not in json.dumps(payload["data"])


def test_a_schedule_firing_on_the_owners_tick_is_announced(owner, accounts, receiver, task):
    eng = accounts["engineer"]
    hook, _ = webhooks.create_hook(owner.store, eng, receiver.url, ["schedule.fired"])
    owner.hooks.start()
    # Made an hour ago, every hour: due on the owner's next pass (its own clock, not a fake one).
    sid = schedules.create_schedule(owner.store, eng, "hourly retrain", task, "interval", "1",
                                    now=schedules.utcnow() - timedelta(hours=1, minutes=1))
    tick(owner)
    [payload] = [json.loads(body) for _, body in receiver.wait(1)]
    tick(owner)
    time.sleep(0.2)
    assert len(receiver.got) == 1
    started = owner.store.row("SELECT * FROM schedule_events WHERE outcome = 'started'")
    assert payload["event"] == "schedule.fired" and payload["data"]["schedule_id"] == sid
    assert payload["data"]["pipeline_id"] == started["pipeline_id"] and payload["data"]["task"] == "tickets"


def test_the_migration_marks_the_past_seen_with_the_collectors_own_keys(owner, accounts):
    """A workspace upgraded to webhooks announces nothing that happened before: migration 20's seed
    holds exactly the keys the collector computes (kept in step by this test)."""
    from core.demo.review import seed_generation_set
    from core.regression import runs
    from core.review.desk import RatingDesk
    from core.review.pairs import PairSetSpec, create_pair_set
    from tests.test_regression_runs import seed_suite_set

    eng, store = accounts["engineer"], owner.store
    known_versions(store, "adapter:one", "adapter:two", "adapter:three")
    promotion.promote(store, eng, "adapter:one", REASON, override=True, task="t")
    promotion.promote(store, eng, "adapter:two", REASON, override=True, task="t")
    promotion.rollback(store, eng, "t", REASON)
    runs.judge(store, accounts["lead"], seed_suite_set(store, {}), "adapter:tuned", owner.settings.regression)
    owner.jobs.launchers = {"train": FakeLauncher()}
    job = _train_job(owner, eng)
    _worker_says(owner.jobs.get(job)["run_dir"], {"type": "finished", "adapter_dir": "/a", "step": 1})
    owner.jobs.reconcile()
    store.execute("INSERT INTO schedule_events (schedule_id, fired_at, outcome, pipeline_id, note) VALUES "
                  "('sched-x', ?, 'started', 'pipeline-x', 'due')", [datetime(2026, 1, 1)])
    gen = seed_generation_set(store, n_prompts=2, seed=3)
    pair_set = create_pair_set(store, accounts["lead"], PairSetSpec(
        name="R", generation_set_id=gen, variants=["base", "adapter:tuned"], raters=["rita"], raters_per_pair=1,
        gold_rate=0.0))
    desk = RatingDesk(store, 0.0)
    while (view := desk.next_pair(accounts["rater"], pair_set)) is not None:
        desk.vote(accounts["rater"], pair_set, view.ticket, "1")

    [(_, _, sql)] = [m for m in MIGRATIONS if m[0] == 20]
    seed = sql[sql.index("INSERT INTO webhook_events"):]
    with store.transaction() as cur:
        cur.execute("DELETE FROM webhook_events")
        cur.execute(seed)
    seeded = {r["source_key"] for r in store.rows("SELECT source_key FROM webhook_events")}
    assert {k.split(":")[0] for k in seeded} == {"promotion", "gate", "run", "schedule", "pairset"} and len(seeded) == 7
    webhooks.create_hook(store, eng, "http://127.0.0.1:9/never", list(webhooks.EVENTS))
    assert webhooks.collect(store) == 0
    assert store.scalar("SELECT count(*) FROM webhook_events") == 7


def test_who_may_manage_hooks_and_what_a_url_must_be(owner, accounts):
    eng = accounts["engineer"]
    for who in ("lead", "rater"):
        with pytest.raises(PermissionDenied):
            webhooks.create_hook(owner.store, accounts[who], "https://ci.example.com/h", ["promotion"])
        with pytest.raises(PermissionDenied):
            webhooks.list_hooks(owner.store, accounts[who])
    with pytest.raises(InvalidInput) as bad:
        webhooks.create_hook(owner.store, eng, "ftp://user:pw@example.com/x#frag", ["promotion", "run.exploded"],
                             "x" * 101)
    for said in ("only http:// and https://", "credentials", "fragment", "'run.exploded' unknown", "name:"):
        assert said in str(bad.value)
    for url in ("", "https://", "https://exa mple.com/", "https://example.com:99999/", "javascript:alert(1)"):
        with pytest.raises(InvalidInput):
            webhooks.create_hook(owner.store, eng, url, ["promotion"])
    with pytest.raises(InvalidInput, match="at least one"):
        webhooks.create_hook(owner.store, eng, "https://ci.example.com/h", [])
    hook, _ = webhooks.create_hook(owner.store, eng, "https://ci.example.com/h", ["promotion", "promotion"])
    assert hook["events"] == ["promotion"] and hook["name"] == "ci.example.com"
    webhooks.delete_hook(owner.store, eng, hook["hook_id"])
    assert webhooks.list_hooks(owner.store, eng) == []
    assert owner.store.scalar("SELECT secret FROM webhooks WHERE hook_id = ?", [hook["hook_id"]]) == ""
    with pytest.raises(NotFound):
        webhooks.delete_hook(owner.store, eng, hook["hook_id"])


# ---- the API -------------------------------------------------------------------------------------
@pytest.fixture
def client(owner, accounts):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    import api.app
    from api.routes import webhooks as webhook_routes

    app = api.app.build()
    if not any(getattr(r, "path", "") == "/webhooks" for r in app.routes):  # until the lead registers the router
        app.include_router(webhook_routes.router)
    owners.install(owner)
    try:
        with TestClient(Starlette(routes=[Mount("/api/v1", app=app)]), base_url="http://testserver/api/v1") as c:
            yield c
    finally:
        owners.install(None)


def _bearer(client, username: str) -> dict:
    r = client.post("/login", json={"username": username, "password": PASSWORD, "name": "test"})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_the_api_registers_lists_pings_and_deletes_a_hook(client, owner, receiver):
    eve = _bearer(client, "eve")
    created = client.post("/webhooks", headers=eve, json={"url": receiver.url, "events": ["promotion", "rollback"],
                                                          "name": "ci"})
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["promotion", "rollback"]
    listed = client.get("/webhooks", headers=eve).json()
    assert [h["hook_id"] for h in listed] == [hook["hook_id"]] and "secret" not in listed[0]

    owner.hooks.start()
    queued = client.post(f"/webhooks/{hook['hook_id']}/test", headers=eve)
    assert queued.status_code == 202 and queued.json()["event"] == "ping"
    [(headers, body)] = receiver.wait(1)
    assert webhooks.verify(hook["secret"], body, headers["x-tuneboard-signature"])
    log = wait_for(lambda: [d for d in client.get(f"/webhooks/{hook['hook_id']}/deliveries", headers=eve).json()
                            if d["status"] == "delivered"])
    assert log[0]["delivery_id"] == queued.json()["delivery_id"] and log[0]["last_code"] == 200
    assert log[0]["attempts"] == 1 and log[0]["log"][0]["code"] == 200 and log[0]["event_id"] == json.loads(body)["id"]

    bad = client.post("/webhooks", headers=eve, json={"url": "file:///etc/passwd", "events": ["promotion"]})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"
    assert client.post("/webhooks", headers=eve, json={"url": receiver.url, "events": []}).status_code == 422
    for who in ("leo", "rita"):
        token = _bearer(client, who)
        assert client.get("/webhooks", headers=token).status_code == 403
        assert client.post("/webhooks", headers=token, json={"url": receiver.url, "events": ["promotion"]}) \
            .status_code == 403
        assert client.delete(f"/webhooks/{hook['hook_id']}", headers=token).status_code == 403
    assert client.get("/webhooks").status_code == 401

    assert client.delete(f"/webhooks/{hook['hook_id']}", headers=eve).status_code == 204
    assert client.get("/webhooks", headers=eve).json() == []
    assert client.delete(f"/webhooks/{hook['hook_id']}", headers=eve).status_code == 404
    assert client.get(f"/webhooks/{hook['hook_id']}/deliveries", headers=eve).status_code == 200  # the log stays
    trail = owner.store.rows("SELECT action, door FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY id")
    assert trail == [{"action": "webhook.create", "door": "api"}, {"action": "webhook.delete", "door": "api"}]
    assert "/webhooks" in client.get("/openapi.json").json()["paths"]


# ---- the page's view -------------------------------------------------------------------------------
def _view():
    from pages.parts.webhooks import webhooks_view

    webhooks_view()


def test_the_view_registers_a_hook_shows_its_secret_once_and_logs_deliveries(owner, accounts, receiver):
    from streamlit.testing.v1 import AppTest

    from dashboard.context import SESSION_USER

    owners.install(owner)
    try:
        at = AppTest.from_function(_view, default_timeout=30)
        at.session_state[SESSION_USER] = "eve"
        at.run()
        assert not at.exception
        at.text_input(key="webhook_url").input(receiver.url)
        at.text_input(key="webhook_name").input("ci")
        at.button[0].click()  # the form's submit
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        [hook] = webhooks.list_hooks(owner.store, accounts["engineer"])
        secret = at.code[0].value
        assert secret.startswith("whsec_") and hook["name"] == "ci" and hook["events"] == list(webhooks.EVENTS)
        webhooks.send_test(owner.store, accounts["engineer"], hook["hook_id"])
        owner.hooks.start()
        wait_for(lambda: owner.store.row("SELECT 1 FROM webhook_deliveries WHERE status = 'delivered'"))
        at.run()
        assert not at.exception and not at.code  # the secret is gone on the next run
        log = at.dataframe[-1].value
        assert list(log["status"]) == ["delivered"] and list(log["event"]) == ["ping"]
        rita = AppTest.from_function(_view, default_timeout=30)
        rita.session_state[SESSION_USER] = "rita"
        rita.run()
        assert not rita.dataframe and "engineers" in rita.info[0].value
    finally:
        owners.install(None)
