"""P2: from a vote to the next pair with 1,000,000 votes stored and 50 raters rating at once.

Setup (in SQL, not through the desk): a fresh workspace with a generation set of 300 prompts,
one pair set of 350,000 pairs, 50 raters, 3 raters per pair (21,000 assignments per rater in
a shuffled per-rater order), and 1,000,000 votes already cast on each rater's first 20,000
assignments, stored in the order they would have arrived (all raters at the same pace, so the
table is not clustered by pair or rater), so every rater has 1,000 open pairs left.

Ours: one `RatingDesk` shared by 50 threads, one per rater (what Streamlit's script threads
do). Each thread loads its queue with a first `next_pair` (timed on its own: a one-off per
rater session), all threads wait for one another, then each loops: think (uniform 0.5-1.5 s,
a compressed human pace), then `vote(...)` + `next_pair(...)` timed together (the rating
page's callback and rerun). Baseline: the same path without the in-memory queue, the
straightforward SQL every time (the rater's first assignment by position with no vote and no
skip: an anti-join against the votes table; then the pair row; the vote itself as in the
desk). It is run sequentially on a quiet database, which favours it, and it leaves out the
done/total counts the page shows, which favours it too: the ratio is a lower bound.

Also printed, not graded: whether every receipt matches a row in the votes table, whether a
rater was ever served a pair they had voted, errors, and ten double clicks (two concurrent
`vote` calls on one pair: one "recorded", one "duplicate", one row). Latencies on a shared
2-core machine move with whatever else runs: the load average is printed beside them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.result import Result
from core.auth import Role, User
from core.review.desk import RatingDesk
from core.store import Store

N_PROMPTS, N_PAIRS, N_RATERS, K = 300, 350_000, 50, 3
VOTES_PER_RATER = 20_000                      # 50 x 20,000 = 1,000,000 stored votes
THINK = (0.5, 1.5)                            # seconds between a pair appearing and the click
MEASURE_SECONDS = 35.0
BASELINE_OPS = 50
GOAL_MS = 30.0
GEN_SET, PAIR_SET = "generate-bench-p2", "pairs-bench-p2"


def _raters() -> list[str]:
    return [f"rater{i:02d}" for i in range(N_RATERS)]


def build(store: Store, n_prompts: int = N_PROMPTS, n_pairs: int = N_PAIRS, n_raters: int = N_RATERS, k: int = K,
          votes_per_rater: int = VOTES_PER_RATER) -> dict:
    """The workspace described above, in bulk SQL (smaller when asked: the CI load test). Returns counts."""
    with store.transaction() as cur:
        cur.execute("""INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by, started_at, finished_at)
                       VALUES (?, 'generate', 'succeeded', '', '{}', 'bench', current_timestamp, current_timestamp)""",
                    [GEN_SET])
        variants = [{"variant_id": v, "kind": v.split(":")[0], "name": v.split(":")[-1], "path": "", "model": "",
                     "api_key_env": ""} for v in ("base", "adapter:tuned")]
        cur.execute("""INSERT INTO generation_sets (set_id, name, source, base_model, variants, decoding,
                       requested_path, chosen_path, n_prompts)
                       VALUES (?, 'bench p2', '{"kind": "bench"}', 'demo-base', ?, '{}', 'transformers',
                               'transformers', ?)""", [GEN_SET, json.dumps(variants), n_prompts])
        cur.execute("""INSERT INTO generation_prompts (set_id, prompt_idx, messages, reference, source_ref)
                       SELECT ?, i::INTEGER,
                              to_json([{'role': 'system', 'content': 'You are a support agent. Answer in JSON.'},
                                       {'role': 'user', 'content': 'Ticket ' || i || ': my order has not '
                                        || 'arrived and the tracking page shows nothing. What now?'}])::VARCHAR,
                              '{"answer": "reference ' || i || '"}', 'bench:' || i
                       FROM range(?) t(i)""", [GEN_SET, n_prompts])
        cur.execute("""INSERT INTO pair_sets (pair_set_id, name, generation_set_id, variants, comparisons, design,
                       raters_per_pair, gold_rate, seed, assign_version, created_by)
                       VALUES (?, 'bench p2', ?, '["base", "adapter:tuned"]', '[["adapter:tuned", "base"]]',
                               'baseline', ?, 0.0, 0, 1, 'bench')""", [PAIR_SET, GEN_SET, k])
        cur.execute("""INSERT INTO pairs (pair_set_id, pair_id, prompt_idx, a, b, left_is_a, a_text, b_text,
                       identity_flags)
                       SELECT ?, i::INTEGER, (i % ?)::INTEGER, 'adapter:tuned', 'base', hash(i) % 2 = 0,
                              '{"answer": "Sorry about order ' || i || '; a new one ships today."}',
                              '{"answer": "I am not sure how to help with that (' || i || ')."}', '[]'
                       FROM range(?) t(i)""", [PAIR_SET, n_prompts, n_pairs])
        cur.execute("INSERT INTO users (username, password_hash, role, created_by) "
                    "SELECT 'rater' || lpad(i::VARCHAR, 2, '0'), 'not-a-hash', 'rater', 'bench' FROM range(?) t(i)",
                    [n_raters])
        # pair p goes to raters p, p+17, p+34 (mod 50): three distinct raters, 21,000 pairs each,
        # in a shuffled order per rater.
        cur.execute("""INSERT INTO assignments (pair_set_id, rater, pair_id, position)
                       SELECT ?, 'rater' || lpad(r::VARCHAR, 2, '0'), p::INTEGER,
                              (row_number() OVER (PARTITION BY r ORDER BY hash(p, r)) - 1)::INTEGER
                       FROM (SELECT p, (p + 17 * j) % ? AS r FROM range(?) t(p), range(?) s(j))""",
                    [PAIR_SET, n_raters, n_pairs, k])
        cur.execute("""INSERT INTO votes (pair_set_id, pair_id, rater, choice, outcome, seconds, created_at)
                       SELECT a.pair_set_id, a.pair_id, a.rater, c.choice,
                              CASE WHEN c.choice IN ('tie', 'both_bad') THEN c.choice
                                   WHEN (c.choice = '1') = p.left_is_a THEN 'a' ELSE 'b' END,
                              5.0 + hash(a.rater, a.pair_id) % 20,
                              TIMESTAMP '2025-01-01' + to_seconds(a.position)
                       FROM assignments a JOIN pairs p USING (pair_set_id, pair_id),
                            LATERAL (SELECT ['1', '2', 'tie', 'both_bad'][(1 + hash(a.pair_id, a.rater) % 4)::INTEGER]
                                     AS choice) c
                       WHERE a.pair_set_id = ? AND a.position < ?
                       ORDER BY a.position, a.rater""", [PAIR_SET, votes_per_rater])
    store.execute("CHECKPOINT")
    return {t: store.scalar(f"SELECT count(*) FROM {t}") for t in ("pairs", "assignments", "votes")}


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def measure_desk(store: Store, seconds: float = MEASURE_SECONDS, seed: int = 2) -> dict:
    desk = RatingDesk(store, min_vote_seconds=0.0)
    raters = _raters()
    loads: list[float] = []
    ops: list[float] = []
    receipts: Counter = Counter()
    errors: Counter = Counter()
    served_twice: list[tuple[str, int]] = []
    voted_pairs: dict[str, list[int]] = {r: [] for r in raters}
    lock = threading.Lock()
    deadline = [0.0, 0.0]                     # [measurement start, measurement end]

    def start_clock() -> None:                # run once, before any thread passes the barrier
        deadline[0] = time.perf_counter()
        deadline[1] = deadline[0] + seconds

    ready = threading.Barrier(len(raters) + 1, action=start_clock)

    def rater_loop(name: str, k: int) -> None:
        user = User(name, Role.RATER)
        rng = random.Random(seed * 1000 + k)
        seen: set[int] = set()
        try:
            t0 = time.perf_counter()
            view = desk.next_pair(user, PAIR_SET)
            t_load = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - counted and reported
            with lock:
                errors[f"load {type(exc).__name__}: {exc}"[:160]] += 1
            ready.wait()
            return
        with lock:
            loads.append(t_load)
        ready.wait()
        while view is not None and time.perf_counter() < deadline[1]:
            seen.add(view.ticket)
            time.sleep(rng.uniform(*THINK))
            choice = rng.choice(["1", "1", "2", "2", "tie", "both_bad"])
            try:
                t0 = time.perf_counter()
                receipt = desk.vote(user, PAIR_SET, view.ticket, choice, "")
                nxt = desk.next_pair(user, PAIR_SET)
                dt = time.perf_counter() - t0
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors[f"{type(exc).__name__}: {exc}"[:160]] += 1
                time.sleep(0.05)
                try:
                    view = desk.next_pair(user, PAIR_SET)
                except Exception:  # noqa: BLE001
                    return
                continue
            with lock:
                ops.append(dt)
                receipts[receipt.status] += 1
                voted_pairs[name].append(view.ticket)
                if nxt is not None and nxt.ticket in seen:
                    served_twice.append((name, nxt.ticket))
            view = nxt

    threads = [threading.Thread(target=rater_loop, args=(r, k), daemon=True) for k, r in enumerate(raters)]
    t_start = time.perf_counter()
    for t in threads:
        t.start()
    ready.wait()
    t_loaded = deadline[0] - t_start
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - deadline[0]
    return {"loads": loads, "ops": ops, "receipts": receipts, "errors": errors, "served_twice": served_twice,
            "voted_pairs": voted_pairs, "elapsed": elapsed, "load_wall": t_loaded}


def double_clicks(store: Store, n: int = 10) -> tuple[Counter, int]:
    """Two requests voting on the same pair at the same moment (a double click), n times over.
    Returns the receipts and how many rows the votes table gained (should be n)."""
    desk = RatingDesk(store, min_vote_seconds=0.0)
    receipts: Counter = Counter()
    before = store.scalar("SELECT count(*) FROM votes")
    for k in range(n):
        user = User(_raters()[k % N_RATERS], Role.RATER)
        view = desk.next_pair(user, PAIR_SET)
        go = threading.Barrier(2)

        def click(choice: str) -> None:
            go.wait()
            try:
                receipts[desk.vote(user, PAIR_SET, view.ticket, choice, "").status] += 1
            except Exception as exc:  # noqa: BLE001 - counted and reported
                receipts[type(exc).__name__] += 1

        pair = [threading.Thread(target=click, args=(c,)) for c in ("1", "2")]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
    return receipts, store.scalar("SELECT count(*) FROM votes") - before


NEXT_SQL = """
    SELECT a.pair_id FROM assignments a
    WHERE a.pair_set_id = ? AND a.rater = ?
      AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.pair_set_id = a.pair_set_id AND v.pair_id = a.pair_id
                      AND v.rater = a.rater)
      AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.pair_set_id = a.pair_set_id AND s.pair_id = a.pair_id
                      AND s.rater = a.rater)
    ORDER BY a.position LIMIT 1"""
PAIR_SQL = """
    SELECT p.left_is_a, p.a_text, p.b_text, gp.messages
    FROM pairs p JOIN pair_sets s ON s.pair_set_id = p.pair_set_id
    JOIN generation_prompts gp ON gp.set_id = s.generation_set_id AND gp.prompt_idx = p.prompt_idx
    WHERE p.pair_set_id = ? AND p.pair_id = ?"""


def _sql_next(cur, rater: str):
    got = cur.execute(NEXT_SQL, [PAIR_SET, rater]).fetchone()
    if got is None:
        return None
    row = cur.execute(PAIR_SQL, [PAIR_SET, got[0]]).fetchone()
    json.loads(row[3])
    return got[0]


def _sql_vote(cur, rater: str, pair_id: int, choice: str) -> None:
    left_is_a = cur.execute("SELECT left_is_a FROM pairs WHERE pair_set_id = ? AND pair_id = ?",
                            [PAIR_SET, pair_id]).fetchone()[0]
    outcome = choice if choice in ("tie", "both_bad") else ("a" if (choice == "1") == bool(left_is_a) else "b")
    cur.execute("INSERT INTO votes (pair_set_id, pair_id, rater, choice, outcome) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING", [PAIR_SET, pair_id, rater, choice, outcome])


def measure_baseline(store: Store, n: int = BASELINE_OPS) -> list[float]:
    raters = _raters()
    current: dict[str, int] = {}
    with store.cursor() as cur:
        for r in raters[: min(n, len(raters))]:
            current[r] = _sql_next(cur, r)
    out = []
    with store.cursor() as cur:
        for i in range(n):
            r = raters[i % len(current)]
            t0 = time.perf_counter()
            _sql_vote(cur, r, current[r], "1")
            current[r] = _sql_next(cur, r)
            out.append(time.perf_counter() - t0)
    return out


def run() -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="bench-p2-"))
    try:
        t0 = time.perf_counter()
        store = Store(tmp / "tuneboard.duckdb")
        counts = build(store)
        t_setup = time.perf_counter() - t0
        print(f"  setup {t_setup:.1f} s: {counts['pairs']:,} pairs, {counts['assignments']:,} assignments, "
              f"{counts['votes']:,} votes, {N_RATERS} raters", flush=True)
        votes_before = counts["votes"]

        print(f"  load average before the run {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)", flush=True)
        got = measure_desk(store)
        ops_ms = [x * 1000 for x in got["ops"]]
        loads_ms = [x * 1000 for x in got["loads"]]
        p50, p95, mx = _pct(ops_ms, 50), _pct(ops_ms, 95), max(ops_ms, default=float("nan"))
        rate = len(ops_ms) / got["elapsed"]

        # What the desk's receipts say against what the table holds.
        votes_after = store.scalar("SELECT count(*) FROM votes")
        all_voted = [(r, p) for r, ps in got["voted_pairs"].items() for p in ps]
        repeats = len(all_voted) - len(set(all_voted))
        print(f"  desk: {len(ops_ms)} ops in {got['elapsed']:.1f} s ({rate:.1f} votes/s); vote->next p50 {p50:.1f} "
              f"p95 {p95:.1f} p99 {_pct(ops_ms, 99):.1f} max {mx:.1f} ms; queue load ({len(loads_ms)} raters "
              f"at once, {got['load_wall']:.1f} s wall) p50 {_pct(loads_ms, 50):.0f} p95 {_pct(loads_ms, 95):.0f} "
              f"max {max(loads_ms, default=float('nan')):.0f} ms", flush=True)
        print(f"  receipts {dict(got['receipts'])}; votes table +{votes_after - votes_before} "
              f"(recorded {got['receipts']['recorded']}); pair voted twice by one rater {repeats}; "
              f"pair served again after its vote {len(got['served_twice'])}; errors {sum(got['errors'].values())}",
              flush=True)
        for msg, n in got["errors"].most_common(5):
            print(f"    error x{n}: {msg}", flush=True)

        clicks, added = double_clicks(store)
        print(f"  double clicks (2 concurrent votes on one pair, x10): receipts {dict(clicks)}, votes table +{added}",
              flush=True)

        base_ms = [x * 1000 for x in measure_baseline(store)]
        b50, b95 = _pct(base_ms, 50), _pct(base_ms, 95)
        print(f"  baseline (SQL each time, sequential, {len(base_ms)} ops): p50 {b50:.1f} p95 {b95:.1f} "
              f"max {max(base_ms):.1f} ms", flush=True)
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ok = p95 <= GOAL_MS
    return Result(
        "review_p2",
        f"p95 {p95:.1f} ms (p50 {p50:.1f}, max {mx:.0f}), {rate:.0f} votes/s, {N_RATERS} raters, think "
        f"U({THINK[0]},{THINK[1]}) s, 1M votes; queue load p95 {_pct(loads_ms, 95):.0f} ms",
        f"SQL next-pair p95 {b95:.0f} ms / in-memory queue p95",
        b95 / p95, f"p95<={GOAL_MS:.0f}ms", ok)
