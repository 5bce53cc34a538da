"""Load through the running app: 50 raters x 200 votes over the Rate page, 1,000,000 votes stored.

Setup: the P2 workspace (benchmarks/bench_review_p2.py: 350,000 pairs, 50 raters, 1M votes
already cast, in bulk SQL) opened by a real `tuneboard serve` on loopback. Each rater is a
`benchmarks.rater_load.RaterClient`: the Rate page's own websocket protocol, signed in with a
login cookie, clicking the page's vote buttons by widget id, so every vote runs the page's
callback and rerun exactly as in a browser (no browser rendering, which is the client's cost,
not the server's).

Measured: vote-to-next-pair latency as a rater feels it (trigger sent -> the rerun showing the
next pair has arrived), first with one rater alone on the server (the comparison), then with
all 50 at once, each thinking U(0.5, 1.5) s between pairs (as P2: a compressed human pace,
~10x a real panel). Checked: errors, votes lost (acknowledged by the page but not in the
table), votes double-counted (rows beyond the acknowledged ones), pairs served again.
The ratio is alone p95 / loaded p95 (1.0 = no slowdown under load).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import bench_review_p2 as p2
from benchmarks.rater_load import (acknowledged, free_port, mint_tokens, run_raters, server_env, start_server,
                                   stop_server, stored_votes)
from benchmarks.result import Result
from core.config import load_settings
from core.owner import Owner

RATERS, VOTES, THINK = 50, 200, (0.5, 1.5)
ALONE_VOTES = 40
GOAL_MS = 1000.0


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def run() -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    proc = None
    try:
        env = server_env(tmp / "ws")
        with contextlib.chdir(tmp):
            settings = load_settings(env=env)
        t0 = time.perf_counter()
        owner = Owner.open(settings, monitor=False, env=env)
        try:
            counts = p2.build(owner.store)
            tokens = mint_tokens(owner.store, [f"rater{i:02d}" for i in range(RATERS)])
        finally:
            owner.close()
        print(f"  setup {time.perf_counter() - t0:.0f} s: {counts['votes']:,} votes stored, "
              f"{counts['pairs']:,} pairs, {RATERS} raters", flush=True)
        port = free_port()
        proc = start_server(tmp, env, port, tmp / "server.log")
        url = f"http://localhost:{port}"

        alone = run_raters(url, {"rater00": tokens["rater00"]}, votes=ALONE_VOTES, think=THINK, seed=7)
        alone_lat = alone[0].latencies[1:]  # the first vote also loads this rater's queue
        print(f"  one rater alone: {len(alone_lat) + 1} votes, p50 {_p(alone_lat, 50):.0f} "
              f"p95 {_p(alone_lat, 95):.0f} ms, errors {len(alone[0].errors)}", flush=True)

        print(f"  load average before the run {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)", flush=True)
        t0 = time.perf_counter()
        loaded = run_raters(url, tokens, votes=VOTES, think=THINK, seed=8, stop_after=3600)
        wall = time.perf_counter() - t0
        stop_server(proc)
        lat = [x for r in loaded for x in r.latencies]
        firsts = [r.latencies[0] for r in loaded if r.latencies]
        steady = [x for r in loaded for x in r.latencies[1:]]
        errors = [e for r in alone + loaded for e in r.errors]
        acked = acknowledged(alone + loaded)
        stored, total, distinct = stored_votes(settings.database_path)
        lost = sum(max(0, n - stored[key]) for key, n in acked.items())
        extra = sum(stored.values()) - sum(acked.values()) + lost
        again = sum(r.served_again for r in alone + loaded)
        p50, p95, p99 = _p(steady, 50), _p(steady, 95), _p(steady, 99)
        print(f"  {RATERS} raters at once: {len(lat)} votes in {wall:.0f} s ({len(lat) / wall:.1f} votes/s); "
              f"vote->next pair p50 {p50:.0f} p95 {p95:.0f} p99 {p99:.0f} max {_p(steady, 100):.0f} ms; "
              f"first vote of each rater (queue load) p95 {_p(firsts, 95):.0f} ms", flush=True)
        print(f"  acknowledged {sum(acked.values())}, stored {sum(stored.values())} (rows {total:,}, distinct "
              f"{distinct:,}); lost {lost}; double-counted {extra}; served again {again}; errors {len(errors)}",
              flush=True)
        for e in errors[:5]:
            print(f"    error: {e}", flush=True)
    finally:
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    alone_p95 = _p(alone_lat, 95)
    ok = not errors and lost == 0 and extra == 0 and again == 0 and total == distinct and \
        sum(acked.values()) == RATERS * VOTES + ALONE_VOTES and p95 <= GOAL_MS
    return Result(
        "load_server",
        f"p95 {p95:.0f} ms (p50 {p50:.0f}), {RATERS}x{VOTES} votes via the page, 1M stored; "
        f"lost {lost}, double {extra}, errors {len(errors)}",
        f"1 rater alone p95 {alone_p95:.0f} ms / {RATERS} at once p95",
        alone_p95 / p95 if p95 else float("nan"), f"p95<={GOAL_MS:.0f}ms, 0 lost", ok)
