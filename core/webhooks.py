"""Webhooks: engineers' URLs that hear of events, signed, retried, and kept until delivered.

Owns `webhooks` (the hooks), `webhook_events` (every event announced, once) and
`webhook_deliveries` (one per hook and event, with each attempt's outcome).

An event is found on the owner's tick from what the database already holds, never by a call
inside the code that causes it: a training job that reached succeeded or failed (`jobs`), a
regression gate stored (`regression_gates`), a schedule that started a pipeline
(`schedule_events`), a promotion or rollback (`promotions`), a pair set whose every open
assignment has its vote (`pair_sets` with `assignments` and `votes`). Each has a key naming
what caused it; `webhook_events` holds every key announced, so one transaction (`collect`)
inserts the new events with their deliveries and nothing is announced twice, or lost, across a
restart (migration 20 marks what happened before webhooks existed as seen).

A hook's secret is random, shown once at creation, and stored as it is: the server needs it
to sign (`X-Tuneboard-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`); deleting the
hook erases it. Deliveries are POSTed from the owner's sender threads (never the tick, never a
request): a 2xx within `Policy.timeout_s` delivers; otherwise the delivery is retried
`Policy.retries` times with exponential backoff (`backoff_s`, doubling, at most
`max_backoff_s`), then gives up. A delivery is at least once: one sent as the server stopped
is sent again after it starts, with the same `id` in the body for the receiver to drop.
"""

from __future__ import annotations

import hashlib
import http.client
import hmac
import json
import logging
import queue
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from core import audit, variants
from core.auth import Action, User, require
from core.errors import InvalidInput, NotFound
from core.store import Store, insert_rows

log = logging.getLogger("tuneboard.webhooks")

# What a hook may subscribe to, with what it means (the API, the page and the CLI list these).
EVENTS: dict[str, str] = {
    "run.finished": "a training run succeeded",
    "run.failed": "a training run failed",
    "gate.verdict": "a regression gate was judged for a version (pass, fail or inconclusive)",
    "pairset.complete": "every assigned pair of a pair set has its vote",
    "schedule.fired": "a schedule started a retraining pipeline",
    "promotion": "a version was promoted for its task",
    "rollback": "a task was rolled back to the version promoted before",
}
PING = "ping"  # sent by hand (the test button), to one hook; never subscribed to
STATUSES = ("pending", "delivered", "gave_up", "cancelled")
SIGNATURE_HEADER = "X-Tuneboard-Signature"


@dataclass(frozen=True)
class Policy:
    """How deliveries are sent (tests shorten the waits)."""

    timeout_s: float = 10.0        # a 2xx must come within this
    backoff_s: float = 10.0        # wait before the first retry; doubles each time
    max_backoff_s: float = 600.0   # never wait longer than 10 minutes between tries
    retries: int = 5               # after the first attempt; then the delivery gives up
    poll_s: float = 1.0            # how often the sender looks for due deliveries (it is also woken)
    senders: int = 4               # threads sending at once (a slow receiver does not hold up the others)
    pairset_every_s: float = 10.0  # pair sets with new votes are checked for completeness this often
    # A pass looks at rows stamped within window_s (a row is stamped when its transaction starts, which
    # is far less than this before it commits); every full_every_s, and first, at every row.
    window_s: float = 600.0
    full_every_s: float = 600.0

    def delay(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` failed ones."""
        return min(self.backoff_s * 2 ** (attempts - 1), self.max_backoff_s)


POLICY = Policy()


# ---- hooks ----------------------------------------------------------------------------------------
def _check_url(url: str) -> list[str]:
    if not url:
        return ["url: give the address to POST events to (http:// or https://)."]
    if len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        return ["url: at most 2000 characters, without spaces or control characters."]
    parts = urlsplit(url)
    problems = []
    if parts.scheme not in ("http", "https"):
        problems.append(f"url: {parts.scheme or 'no scheme'}: only http:// and https:// addresses can receive "
                        "webhooks.")
    elif not parts.hostname:
        problems.append("url: it names no host (e.g. https://ci.example.com/hooks/tuneboard).")
    if parts.username or parts.password:
        problems.append("url: leave credentials out of the address (hook lists show it); the receiver checks the "
                        "signature instead.")
    if parts.fragment:
        problems.append("url: a #fragment is never sent to a server; leave it out.")
    try:
        parts.port
    except ValueError:
        problems.append("url: its port is not a number from 1 to 65535.")
    return problems


def create_hook(store: Store, actor: User, url: str, events: list[str], name: str = "") -> tuple[dict, str]:
    """Register `url` for `events`. Returns the hook and its signing secret, which is shown only now.

    Engineers only (users.manage): a hook sends the server's events to an address of the caller's
    choosing, a decision about the whole installation like managing its accounts."""
    require(actor, Action.USERS_MANAGE)
    url, name = (url or "").strip(), (name or "").strip()
    problems = _check_url(url)
    events = list(dict.fromkeys(events or []))
    unknown = [e for e in events if e not in EVENTS]
    if not events:
        problems.append(f"events: choose at least one of {', '.join(EVENTS)}.")
    elif unknown:
        problems.append(f"events: {', '.join(map(repr, unknown))} unknown; the events are {', '.join(EVENTS)}.")
    if len(name) > 100:
        problems.append("name: at most 100 characters.")
    if problems:
        raise InvalidInput(" ".join(problems))
    name = name or urlsplit(url).hostname
    hook_id = f"hook-{secrets.token_hex(6)}"
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    with store.transaction() as cur:
        cur.execute("INSERT INTO webhooks (hook_id, name, url, events, secret, created_by) VALUES (?, ?, ?, ?, ?, ?)",
                    [hook_id, name, url, json.dumps(events), secret, actor.username])
        audit.record(cur, actor, "webhook.create", hook_id, {"name": name, "url": url, "events": events})
    return {**get_hook(store, actor, hook_id), "secret": secret}, secret


_HOOK_COLUMNS = """h.hook_id, h.name, h.url, h.events, h.created_by, h.created_at,
    (SELECT count(*) FROM webhook_deliveries d WHERE d.hook_id = h.hook_id AND d.status = 'delivered') AS delivered,
    (SELECT count(*) FROM webhook_deliveries d WHERE d.hook_id = h.hook_id AND d.status = 'pending') AS pending,
    (SELECT count(*) FROM webhook_deliveries d WHERE d.hook_id = h.hook_id AND d.status = 'gave_up') AS gave_up"""


def _hook_row(row: dict) -> dict:
    return {**row, "events": json.loads(row["events"])}


def list_hooks(store: Store, actor: User) -> list[dict]:
    """Every live hook (the team's, whoever made it), with counts of its deliveries; never a secret."""
    require(actor, Action.USERS_MANAGE)
    return [_hook_row(r) for r in store.rows(f"SELECT {_HOOK_COLUMNS} FROM webhooks h WHERE h.deleted_at IS NULL "
                                             "ORDER BY h.created_at")]


def get_hook(store: Store, actor: User, hook_id: str) -> dict:
    require(actor, Action.USERS_MANAGE)
    row = store.row(f"SELECT {_HOOK_COLUMNS} FROM webhooks h WHERE h.hook_id = ? AND h.deleted_at IS NULL",
                    [hook_id])
    if row is None:
        raise NotFound(f"No webhook {hook_id!r} (GET /webhooks lists them).")
    return _hook_row(row)


def delete_hook(store: Store, actor: User, hook_id: str) -> None:
    """Stop a hook: its pending deliveries are cancelled, its secret erased; its delivery log stays."""
    hook = get_hook(store, actor, hook_id)
    with store.transaction() as cur:
        cur.execute("UPDATE webhooks SET deleted_at = now(), deleted_by = ?, secret = '' WHERE hook_id = ?",
                    [actor.username, hook_id])
        cur.execute("UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL "
                    "WHERE hook_id = ? AND status = 'pending'", [hook_id])
        audit.record(cur, actor, "webhook.delete", hook_id, {"name": hook["name"], "url": hook["url"]})


def deliveries(store: Store, actor: User, hook_id: str | None = None, limit: int = 200) -> list[dict]:
    """Newest first: each delivery's event, status, attempts, last code or error, next try, and the
    log of its attempts (of one hook, or of every hook, deleted ones included)."""
    require(actor, Action.USERS_MANAGE)
    if hook_id is not None:
        if store.row("SELECT 1 FROM webhooks WHERE hook_id = ?", [hook_id]) is None:
            raise NotFound(f"No webhook {hook_id!r} (GET /webhooks lists them).")
    rows = store.rows("""SELECT d.delivery_id, d.hook_id, h.name AS hook, d.event, d.event_id, d.status, d.attempts,
                                d.last_code, d.last_error, d.last_attempt_at, d.next_attempt_at, d.delivered_at,
                                d.created_at, d.log
                         FROM webhook_deliveries d JOIN webhooks h USING (hook_id)
                         JOIN webhook_events e USING (event_id)
                         WHERE ? IS NULL OR d.hook_id = ? ORDER BY e.seq DESC, d.created_at DESC LIMIT ?""",
                      [hook_id, hook_id, max(1, min(int(limit), 10_000))])
    for r in rows:
        r["log"] = json.loads(r["log"])
    return rows


def send_test(store: Store, actor: User, hook_id: str) -> str:
    """Queue a `ping` event to one hook (what the page's and the API's test button do); its delivery id."""
    hook = get_hook(store, actor, hook_id)
    event_id, delivery_id = _new_id("ev"), _new_id("dl")
    data = {"hook_id": hook_id, "name": hook["name"], "by": actor.username,
            "message": "A test delivery from tuneboard: verify its signature with this hook's secret."}
    with store.transaction() as cur:
        cur.execute("INSERT INTO webhook_events (event_id, source_key, event, body) VALUES (?, ?, ?, ?)",
                    [event_id, f"ping:{event_id}", PING, _body(PING, event_id, data)])
        cur.execute("INSERT INTO webhook_deliveries (delivery_id, hook_id, event_id, event, status, next_attempt_at) "
                    "VALUES (?, ?, ?, ?, 'pending', now())", [delivery_id, hook_id, event_id, PING])
    return delivery_id


# ---- signing --------------------------------------------------------------------------------------
def sign(secret: str, body: bytes) -> str:
    """The signature header's value: what a receiver recomputes from the raw body and compares."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """A receiver's check (a Python receiver may copy these two lines)."""
    return hmac.compare_digest(sign(secret, body), signature or "")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _utc(value: datetime) -> str:
    """A moment as UTC ISO 8601 with a Z. The store's timestamps are naive, in the server's local time."""
    aware = value if value.tzinfo else value.astimezone()
    return aware.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _plain(value):
    return _utc(value) if isinstance(value, datetime) else str(value)


def _body(event: str, event_id: str, data: dict) -> str:
    """The exact bytes every attempt sends (and signs), stored once per event; every time in it in UTC."""
    return json.dumps({"event": event, "id": event_id, "at": _utc(datetime.now(timezone.utc)), "data": data},
                      sort_keys=True, default=_plain, separators=(",", ":"))


# ---- finding events (the owner's tick) -------------------------------------------------------------
# Each source: its new rows as (source_key, event, data). The keys are the ones migration 20 seeds
# (test_webhooks holds the two to each other). "New": no event of that key yet; a row's event is
# always announced after the row's stamp, so within a window (`$since`) only the ledger's newest
# rows need a look.
_NEW = ("NOT EXISTS (SELECT 1 FROM webhook_events w WHERE w.source_key = {key} "
        "AND ($since::TIMESTAMP IS NULL OR w.created_at >= $since::TIMESTAMP))")
_RUN_KEY = "'run:' || j.job_id || ':' || j.status || ':' || CAST(epoch_ms(j.finished_at) AS VARCHAR)"
_PAIRSET_KEY = "'pairset:' || s.pair_set_id || ':' || CAST(s.assign_version AS VARCHAR)"


def _rows(cur, sql: str, params: list | dict | None = None) -> list[dict]:
    result = cur.execute(sql, params or [])
    cols = [d[0] for d in result.description]
    return [dict(zip(cols, row)) for row in result.fetchall()]


def _runs(cur, since) -> list[tuple[str, str, dict]]:
    found = []
    runs = _rows(cur, f"""
            SELECT {_RUN_KEY} AS k, j.job_id, j.status, j.error, j.created_by, j.started_at, j.finished_at,
                   r.dataset_version, r.base_model, r.method, r.best_eval_loss, r.final_step
            FROM jobs j LEFT JOIN runs r ON r.job_id = j.job_id
            WHERE j.kind = 'train' AND j.status IN ('succeeded', 'failed') AND j.finished_at IS NOT NULL
              AND ($since::TIMESTAMP IS NULL OR j.finished_at >= $since::TIMESTAMP)
              AND {_NEW.format(key=_RUN_KEY)} ORDER BY j.finished_at, j.job_id""", {"since": since})
    fine_tuned = variants.fine_tuned_of_runs(cur, [r["job_id"] for r in runs]) if runs else {}
    for r in runs:
        data = {"run_id": r["job_id"], "status": r["status"], "started_by": r["created_by"],
                "dataset_version": r["dataset_version"], "base_model": r["base_model"], "method": r["method"],
                "variant_id": fine_tuned.get(r["job_id"]), "best_eval_loss": r["best_eval_loss"],
                "final_step": r["final_step"], "started_at": r["started_at"], "finished_at": r["finished_at"]}
        if r["status"] == "failed":
            data["error"] = (r["error"] or "")[:500]
        found.append((r["k"], "run.finished" if r["status"] == "succeeded" else "run.failed", data))
    return found


def _gates(cur, since) -> list[tuple[str, str, dict]]:
    found = []
    for r in _rows(cur, f"""SELECT 'gate:' || g.gate_id AS k, g.* FROM regression_gates g
                            WHERE ($since::TIMESTAMP IS NULL OR g.computed_at >= $since::TIMESTAMP)
                              AND {_NEW.format(key="'gate:' || g.gate_id")} ORDER BY g.computed_at, g.gate_id""",
                       {"since": since}):
        detail = json.loads(r["detail"] or "{}")
        overall = detail.get("overall") or {}
        found.append((r["k"], "gate.verdict", {
            "gate_id": r["gate_id"], "variant_id": r["variant_id"], "baseline": r["baseline"], "set_id": r["set_id"],
            "verdict": r["verdict"], "reasons": detail.get("reasons", []), "items": overall.get("n"),
            "drop_points": overall.get("drop_points"), "computed_by": r["computed_by"],
            "computed_at": r["computed_at"]}))
    return found


def _schedules(cur, since) -> list[tuple[str, str, dict]]:
    # fired_at is the schedule's own (UTC) clock: no window (one row per firing); the ledger's is ours.
    key = "'schedule:' || CAST(e.id AS VARCHAR)"
    return [(r["k"], "schedule.fired", {"schedule_id": r["schedule_id"], "schedule": r["name"], "task": r["task"],
                                        "pipeline_id": r["pipeline_id"], "why": r["note"],
                                        "fired_at": r["fired_at"]})
            for r in _rows(cur, f"""SELECT {key} AS k, e.schedule_id, s.name, s.task, e.pipeline_id, e.note, e.fired_at
                                    FROM schedule_events e LEFT JOIN schedules s ON s.schedule_id = e.schedule_id
                                    WHERE e.outcome = 'started' AND {_NEW.format(key=key)} ORDER BY e.id""",
                               {"since": None})]


def _promotions(cur, since) -> list[tuple[str, str, dict]]:
    found = []
    new = _rows(cur, f"""SELECT 'promotion:' || p.promotion_id AS k, p.* FROM promotions p
                         WHERE ($since::TIMESTAMP IS NULL OR p.created_at >= $since::TIMESTAMP)
                           AND {_NEW.format(key="'promotion:' || p.promotion_id")} ORDER BY p.seq""", {"since": since})
    for r in new:
        data = {"promotion_id": r["promotion_id"], "task": r["task"], "variant_id": r["variant_id"],
                "reason": r["reason"], "by": r["promoted_by"], "at": r["created_at"]}
        if r["action"] == "rollback":
            # The version it left: the top of the task's stack just before this row (core.lifecycle.promotion).
            stack: list[str] = []
            for earlier in _rows(cur, "SELECT variant_id, action FROM promotions WHERE task = ? AND seq < ? "
                                      "ORDER BY seq", [r["task"], r["seq"]]):
                if earlier["action"] == "rollback":
                    stack = stack[:-1]
                else:
                    stack.append(earlier["variant_id"])
            data["rolled_back_from"] = stack[-1] if stack else None
            found.append((r["k"], "rollback", data))
        else:
            data.update(gate_id=r["gate_id"], gate_verdict=r["gate_verdict"], override=r["override"])
            found.append((r["k"], "promotion", data))
    return found


def _pairsets(cur, pair_sets: list[str]) -> list[tuple[str, str, dict]]:
    """Of `pair_sets`, those whose every open assignment (a pair not withdrawn, a rater not excluded)
    has its vote; once per assignment version (new raters make a set that completes again new)."""
    if not pair_sets:
        return []
    rows = _rows(cur, f"""
        SELECT {_PAIRSET_KEY} AS k, s.pair_set_id, s.name, s.assign_version, count(*) AS assignments,
               count(DISTINCT a.rater) AS raters, count(DISTINCT a.pair_id) AS pairs, max(v.created_at) AS last_vote_at
        FROM pair_sets s JOIN assignments a ON a.pair_set_id = s.pair_set_id
        JOIN pairs p ON p.pair_set_id = a.pair_set_id AND p.pair_id = a.pair_id
        LEFT JOIN votes v ON v.pair_set_id = a.pair_set_id AND v.pair_id = a.pair_id AND v.rater = a.rater
        WHERE list_contains($sets, s.pair_set_id) AND NOT p.withdrawn
          AND a.rater NOT IN (SELECT x.rater FROM rater_exclusions x WHERE x.pair_set_id = a.pair_set_id)
          AND {_NEW.format(key=_PAIRSET_KEY)}
        GROUP BY s.pair_set_id, s.name, s.assign_version HAVING count(*) = count(v.rater)
        ORDER BY last_vote_at, s.pair_set_id""", {"sets": list(pair_sets), "since": None})
    # Counts and names only: which model is which, and who voted what, stay on the Results page.
    return [(r["k"], "pairset.complete", {"pair_set_id": r["pair_set_id"], "name": r["name"], "votes": r["assignments"],
                                          "pairs": r["pairs"], "raters": r["raters"],
                                          "last_vote_at": r["last_vote_at"]}) for r in rows]


def collect(store: Store, pair_sets: list[str] | None = None, window_s: float | None = None) -> int:
    """One pass of the owner's tick: every new event, with a pending delivery for each live hook that
    subscribes to it, in one transaction; returns how many deliveries it queued. `pair_sets`: the pair
    sets to check for completeness (None: all; the owner passes those whose votes changed).
    `window_s`: look only at rows stamped that recently (None: at every row; see `Webhooks.collect`)."""
    with store.transaction() as cur:
        now = cur.execute("SELECT CAST(now() AS TIMESTAMP)").fetchone()[0]
        since = None if window_s is None else now - timedelta(seconds=window_s)
        if pair_sets is None:
            pair_sets = [r[0] for r in cur.execute("SELECT pair_set_id FROM pair_sets").fetchall()]
        found = (_runs(cur, since) + _gates(cur, since) + _schedules(cur, since) + _promotions(cur, since)
                 + _pairsets(cur, pair_sets))
        if not found:
            return 0
        hooks = [(r[0], set(json.loads(r[1]))) for r in
                 cur.execute("SELECT hook_id, events FROM webhooks WHERE deleted_at IS NULL").fetchall()]
        events, queued = [], []
        for key, event, data in found:
            event_id = _new_id("ev")
            events.append([event_id, key, event, _body(event, event_id, data)])
            queued += [[_new_id("dl"), hook_id, event_id, event, "pending", now]
                       for hook_id, wanted in hooks if event in wanted]
        # One statement per table (row by row, a burst after a busy hour took seconds; this takes ms).
        insert_rows(cur, "webhook_events", ["event_id", "source_key", "event", "body"], events)
        insert_rows(cur, "webhook_deliveries", ["delivery_id", "hook_id", "event_id", "event", "status",
                                                "next_attempt_at"], queued)
    return len(queued)


# ---- sending (the owner's sender threads) ----------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a 2xx: it is recorded and retried (urllib would re-send it as a GET)."""

    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str | None]:
    """POST once: (HTTP status, None) for an answer, (status or None, what went wrong) otherwise."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            code = response.status
    except urllib.error.HTTPError as exc:
        snippet = exc.read(300).decode("utf-8", "replace").strip() if exc.fp else ""
        return exc.code, f"HTTP {exc.code} {exc.reason}" + (f": {snippet}" if snippet else "")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(reason).__name__}: {reason}"[:300]
    return code, None if 200 <= code < 300 else f"HTTP {code}"


def attempt(store: Store, delivery_id: str, policy: Policy = POLICY) -> str | None:
    """Send one due delivery and record the outcome; its new status (None: it was not due)."""
    row = store.row("""SELECT d.attempts, d.log, d.event, h.url, h.secret, e.body FROM webhook_deliveries d
                       JOIN webhooks h USING (hook_id) JOIN webhook_events e USING (event_id)
                       WHERE d.delivery_id = ? AND d.status = 'pending' AND d.next_attempt_at <= now()
                         AND h.deleted_at IS NULL""", [delivery_id])
    if row is None:
        return None
    body = row["body"].encode()
    headers = {"Content-Type": "application/json", "User-Agent": "tuneboard-webhooks/1",
               "X-Tuneboard-Event": row["event"], "X-Tuneboard-Delivery": delivery_id,
               SIGNATURE_HEADER: sign(row["secret"], body)}
    started = time.monotonic()
    code, error = post(row["url"], body, headers, policy.timeout_s)
    n = row["attempts"] + 1
    entry = {"attempt": n, "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "code": code,
             "error": error, "ms": round((time.monotonic() - started) * 1000)}
    status = "delivered" if error is None else ("gave_up" if n > policy.retries else "pending")
    wait_us = int(policy.delay(n) * 1_000_000) if status == "pending" else 0
    store.execute("""UPDATE webhook_deliveries SET attempts = ?, status = ?, last_code = ?, last_error = ?,
                     last_attempt_at = now(), log = ?,
                     delivered_at = CASE WHEN ? = 'delivered' THEN now() END,
                     next_attempt_at = CASE WHEN ? = 'pending' THEN now() + to_microseconds(?) END
                     WHERE delivery_id = ? AND status = 'pending'""",
                  [n, status, code, error, json.dumps(json.loads(row["log"]) + [entry]), status, status, wait_us,
                   delivery_id])
    return status


class Webhooks:
    """The owner's webhook service: `collect` on each tick, and sender threads (`start`/`stop`) that
    POST due deliveries, so neither the tick nor a request ever waits on a receiver."""

    def __init__(self, store: Store, policy: Policy | None = None):
        self.store = store
        self.policy = policy or POLICY
        self._wake, self._stop = threading.Event(), threading.Event()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pairsets_seen: dict[str, tuple] = {}
        self._pairsets_at: float | None = None
        self._full_at: float | None = None
        self._failing: str | None = None

    # ---- the tick -------------------------------------------------------------------------------
    def collect(self) -> int:
        """Find new events and queue their deliveries (the owner's follow-up pass calls this)."""
        changed, marks = self._pairsets_to_check()
        now = time.monotonic()
        full = self._full_at is None or now - self._full_at >= self.policy.full_every_s
        queued = collect(self.store, changed, None if full else self.policy.window_s)
        if full:
            self._full_at = now
        self._pairsets_seen.update(marks)  # only once the pass committed: a failed one checks them again
        if queued:
            self._wake.set()
        return queued

    def _pairsets_to_check(self) -> tuple[list[str], dict[str, tuple]]:
        """Pair sets not yet announced whose votes, assignments or exclusions changed since they were
        last checked, at most every `pairset_every_s` (a full check of a set joins all its votes)."""
        now = time.monotonic()
        if self._pairsets_at is not None and now - self._pairsets_at < self.policy.pairset_every_s:
            return [], {}
        self._pairsets_at = now
        rows = self.store.rows(f"""
            SELECT s.pair_set_id, s.assign_version,
                   (SELECT count(*) FROM votes v WHERE v.pair_set_id = s.pair_set_id) AS votes,
                   (SELECT count(*) FROM rater_exclusions x WHERE x.pair_set_id = s.pair_set_id) AS excluded
            FROM pair_sets s WHERE {_NEW.format(key=_PAIRSET_KEY)}""", {"since": None})
        marks = {r["pair_set_id"]: (r["assign_version"], r["votes"], r["excluded"]) for r in rows}
        changed = [p for p, mark in marks.items() if self._pairsets_seen.get(p) != mark]
        return changed, {p: marks[p] for p in changed}

    # ---- sending --------------------------------------------------------------------------------
    def wake(self) -> None:
        """Look for due deliveries now (after queueing one by hand)."""
        self._wake.set()

    def start(self) -> "Webhooks":
        if self._threads:
            return self
        self._stop.clear()
        self._threads = [threading.Thread(target=self._dispatch, name="tuneboard-webhooks", daemon=True)]
        self._threads += [threading.Thread(target=self._send, name=f"tuneboard-webhook-sender-{i}", daemon=True)
                          for i in range(max(1, self.policy.senders))]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the threads; a delivery being sent right now stays pending and is sent again later."""
        self._stop.set()
        self._wake.set()
        for _ in self._threads[1:]:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads = []

    @property
    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                due = self.store.rows("SELECT delivery_id FROM webhook_deliveries WHERE status = 'pending' AND "
                                      "next_attempt_at <= now() ORDER BY next_attempt_at, created_at LIMIT 200")
                self._failing = None
            except Exception as exc:  # noqa: BLE001 - logged once per kind of failure, retried next poll
                if str(exc) != self._failing:
                    log.exception("looking for due webhook deliveries failed (retried every %.1f s)",
                                  self.policy.poll_s)
                self._failing, due = str(exc), []
            for d in due:
                with self._lock:
                    if d["delivery_id"] in self._busy:
                        continue
                    self._busy.add(d["delivery_id"])
                self._queue.put(d["delivery_id"])
            self._wake.wait(self.policy.poll_s)

    def _send(self) -> None:
        while True:
            delivery_id = self._queue.get()
            if delivery_id is None or self._stop.is_set():
                return
            try:
                # `attempt` reads the row again: one queued twice (read just before its last attempt
                # was written) is no longer due and is not sent twice.
                attempt(self.store, delivery_id, self.policy)
            except Exception:  # noqa: BLE001 - the delivery stays pending and is tried again
                log.exception("webhook delivery %s could not be attempted", delivery_id)
            finally:
                with self._lock:
                    self._busy.discard(delivery_id)

