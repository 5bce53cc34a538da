"""The rating desk: which pair a rater sees next, and their votes, skips and undos.

One `RatingDesk` lives in the owning process (beside the Store). DuckDB is the truth; the
desk keeps each rater's open queue in memory so that the next pair is served without
scanning the votes table (P2: a million votes). A queue is reloaded whenever the pair set's
`assign_version` moves (assignment changed, a pair withdrawn) and after a restart.

What the rater's page receives is a `PairView`: the conversation and two anonymous
responses. The pair's id stays in server-side session state; the side mapping never
leaves this module.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import duckdb

from core import audit
from core.auth import Action, User, require
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.store import Store

CHOICES = {"1": "Response 1 is better", "2": "Response 2 is better", "tie": "About the same",
           "both_bad": "Both are bad"}
MAX_RATIONALE = 2000


@dataclass(frozen=True)
class PairView:
    """Everything a rater may see of one pair: nothing that names or hints at a model."""

    ticket: int                 # kept in server-side session state only; never rendered
    messages: list[dict]        # the conversation up to the response (system, user, ...)
    response_1: str
    response_2: str
    done: int
    total: int
    skipped: int                # skipped and not yet voted
    returning: bool             # a skipped pair offered again


@dataclass(frozen=True)
class VoteReceipt:
    status: str                 # "recorded", "duplicate" (already counted once) or "ignored"
    message: str = ""


@dataclass
class _Queue:
    version: int
    open: list[int]                                   # unvoted, unskipped, in queue order
    skipped: list[int]                                # unvoted, skipped, oldest skip first
    assigned: set[int]
    done: int
    served: dict[int, tuple[float, bool]] = field(default_factory=dict)  # pair -> (first shown, left_is_a)


class RatingDesk:
    def __init__(self, store: Store, min_vote_seconds: float = 0.5):
        self.store = store
        self.min_vote_seconds = min_vote_seconds
        self._queues: dict[tuple[str, str], _Queue] = {}
        # (pair set, rater) -> the assign_version at which the rater had no assignment in that set
        self._absent: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    # ---- queues --------------------------------------------------------------------
    def _version(self, cur, pair_set_id: str) -> int:
        got = cur.execute("SELECT assign_version FROM pair_sets WHERE pair_set_id = ?", [pair_set_id]).fetchone()
        if got is None:
            raise NotFound("This rating task no longer exists; pick another one.")
        return got[0]

    def _load(self, cur, pair_set_id: str, rater: str, version: int) -> _Queue:
        rows = cur.execute("""
            SELECT a.pair_id, v.rater IS NOT NULL AS voted, s.created_at AS skipped_at
            FROM assignments a JOIN pairs p USING (pair_set_id, pair_id)
            LEFT JOIN votes v ON v.pair_set_id = a.pair_set_id AND v.pair_id = a.pair_id AND v.rater = a.rater
            LEFT JOIN skips s ON s.pair_set_id = a.pair_set_id AND s.pair_id = a.pair_id AND s.rater = a.rater
            LEFT JOIN pair_routes r ON r.pair_set_id = a.pair_set_id AND r.pair_id = a.pair_id
            WHERE a.pair_set_id = ? AND a.rater = ? AND NOT p.withdrawn
              AND (coalesce(r.route, '') <> 'judged' OR v.rater IS NOT NULL)  -- a judge's pairs leave the queue
            ORDER BY coalesce(r.route, '') <> 'experts_first', a.position""",
                           [pair_set_id, rater]).fetchall()
        open_ = [pid for pid, voted, skipped in rows if not voted and skipped is None]
        skipped = [pid for pid, voted, skipped in sorted((r for r in rows if not r[1] and r[2] is not None),
                                                         key=lambda r: r[2])]
        return _Queue(version, open_, skipped, {r[0] for r in rows}, sum(1 for r in rows if r[1]))

    def _queue(self, cur, pair_set_id: str, rater: str, version: int | None = None) -> _Queue:
        """The rater's queue as of `version` (read from the pair set when not given)."""
        if version is None:
            version = self._version(cur, pair_set_id)
        key = (pair_set_id, rater)
        with self._lock:
            q = self._queues.get(key)
            if q is not None and q.version == version:
                return q
        fresh = self._load(cur, pair_set_id, rater, version)
        with self._lock:
            old = self._queues.get(key)
            if old is not None:
                fresh.served = {p: t for p, t in old.served.items() if p in fresh.assigned}
            self._queues[key] = fresh
            return fresh

    # ---- what a rater sees -----------------------------------------------------------
    def tasks(self, actor: User) -> list[dict]:
        """The rater's pair sets with their progress (names and instructions only: both are checked blind).

        Progress comes from the rater's queues, so a page rerun never counts the votes table. It runs
        on every vote (the page shows each task's progress), so it reads only the small pair_sets
        table: which sets the rater is in is known from the queues (and `_absent`) as of each set's
        assign_version, which every change of assignments moves; the rater's assignments are
        scanned only when a set is new to this desk or its version moved.
        """
        require(actor, Action.REVIEW_RATE)
        rater = actor.username
        with self.store.cursor() as cur:
            sets = cur.execute("SELECT pair_set_id, name, instructions, assign_version FROM pair_sets "
                               "ORDER BY created_at").fetchall()
            with self._lock:
                unknown = {ps for ps, _, _, version in sets if self._absent.get((ps, rater)) != version
                           and getattr(self._queues.get((ps, rater)), "version", None) != version}
            if unknown:
                mine = {r[0] for r in cur.execute("SELECT DISTINCT pair_set_id FROM assignments WHERE rater = ?",
                                                  [rater]).fetchall()}
                with self._lock:
                    for ps, _, _, version in sets:
                        if ps in unknown and ps not in mine:
                            self._absent[(ps, rater)] = version
            tasks = []
            for pair_set_id, name, instructions, version in sets:
                with self._lock:
                    if self._absent.get((pair_set_id, rater)) == version:
                        continue
                q = self._queue(cur, pair_set_id, rater, version)
                if q.assigned:
                    tasks.append({"pair_set_id": pair_set_id, "name": name, "instructions": instructions,
                                  "done": q.done, "total": len(q.assigned)})
        return tasks

    def next_pair(self, actor: User, pair_set_id: str) -> PairView | None:
        """The rater's next pair (the first open one, then skipped ones again); None when all are voted.

        One query when the cached queue is current: the pair row carries the set's assignment
        version, and a moved version reloads the queue and picks again.
        """
        require(actor, Action.REVIEW_RATE)
        with self.store.cursor() as cur:
            with self._lock:
                q = self._queues.get((pair_set_id, actor.username))
            if q is None:
                q = self._queue(cur, pair_set_id, actor.username)
            for _ in range(3):
                with self._lock:
                    returning = not q.open
                    pair_id = q.open[0] if q.open else (q.skipped[0] if q.skipped else None)
                if pair_id is None:
                    fresh = self._queue(cur, pair_set_id, actor.username)
                    if fresh is q:
                        return None
                    q = fresh
                    continue
                row = cur.execute("""
                    SELECT s.assign_version, p.left_is_a, p.a_text, p.b_text, gp.messages
                    FROM pairs p JOIN pair_sets s ON s.pair_set_id = p.pair_set_id
                    JOIN generation_prompts gp ON gp.set_id = s.generation_set_id AND gp.prompt_idx = p.prompt_idx
                    WHERE p.pair_set_id = ? AND p.pair_id = ?""", [pair_set_id, pair_id]).fetchone()
                if row is not None and row[0] == q.version:
                    break
                q = self._queue(cur, pair_set_id, actor.username)
            else:
                raise NotFound("The pairs of this task are being reassigned; reload the page in a moment.")
            with self._lock:
                q.served.setdefault(pair_id, (time.monotonic(), bool(row[1])))
                done, total, skipped = q.done, len(q.assigned), len(q.skipped)
        _, left_is_a, a_text, b_text, messages = row
        conversation = json.loads(messages)  # the chat up to the answer, earlier assistant turns included
        first, second = (a_text, b_text) if left_is_a else (b_text, a_text)
        return PairView(pair_id, conversation, first, second, done, total, skipped, returning)

    # ---- what a rater does -----------------------------------------------------------
    def _own(self, cur, actor: User, pair_set_id: str, ticket: int) -> _Queue:
        q = self._queue(cur, pair_set_id, actor.username)
        if ticket not in q.assigned:
            raise PermissionDenied("This pair is not (or no longer) assigned to you; here is your next one.")
        return q

    def vote(self, actor: User, pair_set_id: str, ticket: int, choice: str, rationale: str = "") -> VoteReceipt:
        """Record one vote. It is durable when this returns "recorded"; a resent vote counts once."""
        require(actor, Action.REVIEW_RATE)
        if choice not in CHOICES:
            raise InvalidInput(f"choice: {choice!r} is not one of {', '.join(CHOICES)}")
        rationale = (rationale or "").strip()
        if len(rationale) > MAX_RATIONALE:
            raise InvalidInput(f"rationale: at most {MAX_RATIONALE} characters (got {len(rationale)})")
        with self.store.cursor() as cur:
            q = self._own(cur, actor, pair_set_id, ticket)
            with self._lock:
                served = q.served.get(ticket)
            now = time.monotonic()
            if served is not None and now - served[0] < self.min_vote_seconds:
                return VoteReceipt("ignored", "That click came too soon after the pair appeared; "
                                              "it was taken for a double click and not counted.")
            shown = served[0] if served else None
            left_is_a = served[1] if served else cur.execute(
                "SELECT left_is_a FROM pairs WHERE pair_set_id = ? AND pair_id = ?", [pair_set_id, ticket]).fetchone()[0]
            outcome = choice if choice in ("tie", "both_bad") else \
                ("a" if (choice == "1") == bool(left_is_a) else "b")
            seconds = None if shown is None else round(now - shown, 3)
            # A plain INSERT: the key refuses a second vote (ON CONFLICT would scan the votes table).
            try:
                cur.execute("""INSERT INTO votes (pair_set_id, pair_id, rater, choice, outcome, rationale, seconds)
                               VALUES (?, ?, ?, ?, ?, ?, ?)""",
                            [pair_set_id, ticket, actor.username, choice, outcome, rationale or None, seconds])
                inserted = 1
            except (duckdb.ConstraintException, duckdb.TransactionException):
                inserted = 0  # already counted: a resent request or a concurrent double click
            with self._lock:
                # The queue now cached, which a reassignment may have reloaded while the vote was written.
                q = self._queues.get((pair_set_id, actor.username), q)
                if ticket in q.open:
                    q.open.remove(ticket)
                    q.done += 1
                elif ticket in q.skipped:
                    q.skipped.remove(ticket)
                    q.done += 1
                q.served.pop(ticket, None)
        if not inserted:
            return VoteReceipt("duplicate", "Your vote on that pair was already recorded; it counts once.")
        return VoteReceipt("recorded")

    def skip(self, actor: User, pair_set_id: str, ticket: int) -> None:
        """Put a pair at the back of the rater's queue; it comes back after every other pair."""
        require(actor, Action.REVIEW_RATE)
        with self.store.cursor() as cur:
            q = self._own(cur, actor, pair_set_id, ticket)
            with self._lock:
                if ticket not in q.open and ticket not in q.skipped:
                    return  # voted meanwhile (a key pressed right after a vote): nothing to skip
            cur.execute("INSERT OR REPLACE INTO skips (pair_set_id, pair_id, rater, created_at) "
                        "VALUES (?, ?, ?, current_timestamp)", [pair_set_id, ticket, actor.username])
            with self._lock:
                if ticket in q.open:
                    q.open.remove(ticket)
                if ticket in q.skipped:
                    q.skipped.remove(ticket)
                q.skipped.append(ticket)
                q.served.pop(ticket, None)

    def undo(self, actor: User, pair_set_id: str) -> bool:
        """Take back the rater's latest vote in this pair set; its pair is shown again next. False if none."""
        require(actor, Action.REVIEW_RATE)
        with self.store.transaction() as cur:
            last = cur.execute("""SELECT v.pair_id, v.choice FROM votes v JOIN pairs p USING (pair_set_id, pair_id)
                                  WHERE v.pair_set_id = ? AND v.rater = ? AND NOT p.withdrawn
                                  ORDER BY v.created_at DESC, v.pair_id DESC LIMIT 1""",
                               [pair_set_id, actor.username]).fetchone()
            if last is None:
                return False
            cur.execute("DELETE FROM votes WHERE pair_set_id = ? AND pair_id = ? AND rater = ?",
                        [pair_set_id, last[0], actor.username])
            cur.execute("DELETE FROM skips WHERE pair_set_id = ? AND pair_id = ? AND rater = ?",
                        [pair_set_id, last[0], actor.username])
            audit.record(cur, actor, "vote.undo", pair_set_id, json.dumps({"pair_id": last[0], "choice": last[1]}))
        with self._lock:
            q = self._queues.get((pair_set_id, actor.username))
            if q is not None:
                if last[0] in q.assigned and last[0] not in q.open:
                    q.open.insert(0, last[0])
                    q.done -= 1
                q.served.pop(last[0], None)
        return True
