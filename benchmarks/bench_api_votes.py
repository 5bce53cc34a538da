"""api_votes: 50 API clients rating at once through a live server, 1,000,000 votes stored.

Setup: the P2 workspace with an API token per rater (benchmarks.bench_api_results.api_workspace)
opened by a real `tuneboard serve` (benchmarks.rater_load's helpers). Each client is a thread
with its own HTTP connection, as a custom rating UI would be: GET /rating/{set}/next (the first
one loads the rater's queue and is reported apart), then for each vote: think U(0.5, 1.5) s,
POST .../vote with the pair's opaque ticket, GET .../next; the vote and the next pair are timed
together (vote -> next pair, as a rater feels it). One vote in ten is sent a second time right
after its answer (a client retrying after a lost reply): it must come back "duplicate".

Checked with the server stopped: votes acknowledged ("recorded") against rows stored, per rater
and choice: lost (acknowledged, not stored) and double (stored beyond what was acknowledged),
every resend answered "duplicate", a pair never served again after its vote, no error.
The ratio is the goal over the p95 (higher is better).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks import bench_review_p2 as p2
from benchmarks.bench_api_results import api_workspace, p
from benchmarks.rater_load import free_port, start_server, stop_server, stored_votes
from benchmarks.result import Result

RATERS, VOTES, THINK = 50, 100, (0.5, 1.5)
RESEND = 0.1
GOAL_MS = 250.0
CHOICES = ("1", "1", "2", "2", "tie", "both_bad")


@dataclass
class Client:
    name: str
    acknowledged: Counter = field(default_factory=Counter)   # choice -> votes answered "recorded"
    receipts: Counter = field(default_factory=Counter)       # every vote's status, resends included
    resends: int = 0
    resent_duplicate: int = 0
    first_next: float = float("nan")
    latencies: list[float] = field(default_factory=list)     # seconds, vote sent -> next pair arrived
    served_again: int = 0
    errors: list[str] = field(default_factory=list)


def rate(url: str, token: str, report: Client, seed: int, start: threading.Barrier) -> None:
    rng = random.Random(seed)
    base = f"{url}/api/v1/rating/{p2.PAIR_SET}"
    voted: set[str] = set()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
        try:
            start.wait()
            t0 = time.perf_counter()
            pair = http.get(f"{base}/next").raise_for_status().json()
            report.first_next = time.perf_counter() - t0
            while sum(report.acknowledged.values()) < VOTES and not pair["finished"]:
                if pair["ticket"] in voted:
                    report.served_again += 1
                time.sleep(rng.uniform(*THINK))
                body = {"ticket": pair["ticket"], "choice": rng.choice(CHOICES)}
                t0 = time.perf_counter()
                receipt = http.post(f"{base}/vote", json=body).raise_for_status().json()
                nxt = http.get(f"{base}/next").raise_for_status().json()
                report.latencies.append(time.perf_counter() - t0)
                report.receipts[receipt["status"]] += 1
                if receipt["status"] == "recorded":
                    report.acknowledged[body["choice"]] += 1
                    voted.add(pair["ticket"])
                else:
                    report.errors.append(f"vote answered {receipt}")
                if rng.random() < RESEND:
                    again = http.post(f"{base}/vote", json=body).raise_for_status().json()
                    report.resends += 1
                    report.receipts[again["status"]] += 1
                    report.resent_duplicate += again["status"] == "duplicate"
                pair = nxt
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            report.errors.append(f"{type(exc).__name__}: {exc}"[:200])


def run() -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-votes-"))
    try:
        ws = api_workspace(tmp, raters=RATERS)
        database = ws["settings"].database_path
        before, _, _ = stored_votes(database)
        port = free_port()
        proc = start_server(tmp, ws["env"], port, tmp / "server.log")
        try:
            url = f"http://localhost:{port}"
            reports = [Client(f"rater{i:02d}") for i in range(RATERS)]
            start = threading.Barrier(RATERS)
            threads = [threading.Thread(target=rate, args=(url, ws["tokens"][r.name], r, 11 + k, start), daemon=True)
                       for k, r in enumerate(reports)]
            print(f"  load average before the run {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)", flush=True)
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            load_after = os.getloadavg()[0]
        finally:
            stop_server(proc)
        stored, total, distinct = stored_votes(database)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    stored = stored - before
    acked = Counter({(r.name, c): n for r in reports for c, n in r.acknowledged.items()})
    lost = sum(max(0, n - stored[key]) for key, n in acked.items())
    double = sum(stored.values()) - sum(acked.values()) + lost
    lat = [x for r in reports for x in r.latencies]
    firsts = [r.first_next for r in reports]
    errors = [e for r in reports for e in r.errors]
    resends = sum(r.resends for r in reports)
    resent_ok = sum(r.resent_duplicate for r in reports)
    again = sum(r.served_again for r in reports)
    receipts = sum((r.receipts for r in reports), Counter())
    complete = sum(acked.values()) == RATERS * VOTES
    p95 = p(lat, 95)
    print(f"  {RATERS} clients: {len(lat)} votes in {wall:.0f} s ({len(lat) / wall:.1f} votes/s); vote->next pair "
          f"p50 {p(lat, 50):.0f} p95 {p95:.0f} p99 {p(lat, 99):.0f} max {p(lat, 100):.0f} ms; first next (queue "
          f"load, 50 at once) p50 {p(firsts, 50):.0f} p95 {p(firsts, 95):.0f} ms; load average after {load_after:.2f}",
          flush=True)
    print(f"  acknowledged {sum(acked.values())}, stored {sum(stored.values())} (rows {total:,}, distinct "
          f"{distinct:,}); lost {lost}; double {double}; resends {resends}, answered duplicate {resent_ok}; "
          f"receipts {dict(receipts)}; served again {again}; errors {len(errors)}", flush=True)
    for e in errors[:5]:
        print(f"    error: {e}", flush=True)
    clean = (complete and not errors and lost == 0 and double == 0 and again == 0 and resent_ok == resends
             and total == distinct)
    return Result(
        "api_votes",
        f"vote->next p95 {p95:.0f} ms (p50 {p(lat, 50):.0f}), {RATERS} clients x {VOTES} votes, 1M stored; "
        f"lost {lost}, double {double}, {resends} resends all duplicate: {resent_ok == resends}",
        f"goal {GOAL_MS:.0f} ms vs p95", GOAL_MS / p95 if p95 else float("nan"),
        f"p95<={GOAL_MS:.0f}ms, 0 lost, 0 double", clean and p95 <= GOAL_MS)
