"""Load through the running app: 50 raters x 200 votes over the Rate page, 1,000,000 votes stored,
the Rate page as it is (a vote reruns only its rating area, an `st.fragment`) beside the whole-page
rerun it had before, in the same run.

Setup: the P2 workspace (benchmarks/bench_review_p2.py: 350,000 pairs, 50 raters, 1M votes
already cast, in bulk SQL) opened by a real `tuneboard serve` on loopback. Each rater is a
`benchmarks.rater_load.RaterClient`: the Rate page's own websocket protocol, signed in with a
login cookie, clicking the page's vote buttons by widget id, so every vote runs the page's
callback and rerun exactly as in a browser (no browser rendering, which is the client's cost,
not the server's).

Two passes over the same workspace, each on a freshly started server (cold queues, the same
code): first "whole page", where the client leaves the fragment out of its clicks, so every
vote reruns the app's entrypoint (navigation, sidebar, login cookie) and the whole page, which
is what the page did before its rating area became a fragment; then "fragment", where a click
names the fragment its button is in, as the browser does. Each pass: one rater alone first
(the comparison for load), then all 50 at once, each thinking U(0.5, 1.5) s between pairs (as
P2: a compressed human pace, ~10x a real panel).

Measured: vote-to-next-pair latency as a rater feels it (trigger sent -> the rerun showing the
next pair has arrived; each rater's first vote, which loads their queue, is reported apart),
votes per second, and the server's CPU time per vote (a figure the machine's other work moves
less than latency). Checked per pass: errors, votes lost (acknowledged by the page but not in
the table), votes double-counted (rows beyond the acknowledged ones), pairs served again.
The ratio is the whole-page p95 / the fragment p95 under load (higher is better).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import bench_review_p2 as p2
from benchmarks.rater_load import (acknowledged, cpu_seconds, free_port, mint_tokens, run_raters, server_env,
                                   start_server, stop_server, stored_votes)
from benchmarks.result import Result
from core.config import load_settings
from core.owner import Owner

RATERS, VOTES, THINK = 50, 200, (0.5, 1.5)
ALONE_VOTES = 40
GOAL_MS = 1000.0
PASSES = (("whole page", False), ("fragment", True))   # (name, the client names the fragment in a click)


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


@dataclass
class Pass:
    name: str
    alone_p95: float
    p50: float
    p95: float
    p99: float
    votes_per_s: float
    cpu_ms: float             # server CPU per vote under load
    lost: int
    extra: int
    again: int
    errors: list[str]
    complete: bool            # every rater cast every vote asked of them

    @property
    def clean(self) -> bool:
        return self.complete and not self.errors and self.lost == 0 and self.extra == 0 and self.again == 0

    def line(self) -> str:
        return (f"p95 {self.p95:.0f} ms (p50 {self.p50:.0f}, p99 {self.p99:.0f}), {self.votes_per_s:.1f} votes/s, "
                f"server CPU {self.cpu_ms:.1f} ms/vote; lost {self.lost}, double {self.extra}, "
                f"errors {len(self.errors)}")


def _pass(name: str, fragments: bool, root: Path, env: dict, database: Path, tokens: dict[str, str],
          seed: int) -> Pass:
    before, _, _ = stored_votes(database)
    port = free_port()
    proc = start_server(root, env, port, root / "server.log")
    try:
        url = f"http://localhost:{port}"
        alone = run_raters(url, {"rater00": tokens["rater00"]}, votes=ALONE_VOTES, think=THINK, seed=seed,
                           fragments=fragments)
        alone_lat = alone[0].latencies[1:]  # the first vote also loads this rater's queue
        print(f"  [{name}] one rater alone: {len(alone_lat) + 1} votes, p50 {_p(alone_lat, 50):.0f} "
              f"p95 {_p(alone_lat, 95):.0f} ms, errors {len(alone[0].errors)}", flush=True)
        print(f"  [{name}] load average before the run {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)",
              flush=True)
        cpu0, t0 = cpu_seconds(proc), time.perf_counter()
        loaded = run_raters(url, tokens, votes=VOTES, think=THINK, seed=seed + 1, stop_after=3600,
                            fragments=fragments)
        wall, cpu = time.perf_counter() - t0, cpu_seconds(proc) - cpu0
    finally:
        stop_server(proc)
    load_after = os.getloadavg()[0]
    lat = [x for r in loaded for x in r.latencies]
    firsts = [r.latencies[0] for r in loaded if r.latencies]
    steady = [x for r in loaded for x in r.latencies[1:]]
    errors = [e for r in alone + loaded for e in r.errors]
    acked = acknowledged(alone + loaded)
    stored, total, distinct = stored_votes(database)
    stored = stored - before                                    # this pass's rows, per (rater, choice)
    lost = sum(max(0, n - stored[key]) for key, n in acked.items())
    extra = sum(stored.values()) - sum(acked.values()) + lost
    again = sum(r.served_again for r in alone + loaded)
    result = Pass(name, _p(alone_lat, 95), _p(steady, 50), _p(steady, 95), _p(steady, 99), len(lat) / wall,
                  1000 * cpu / max(1, len(lat)), lost, extra, again, errors,
                  sum(acked.values()) == RATERS * VOTES + ALONE_VOTES and total == distinct)
    print(f"  [{name}] {RATERS} raters at once: {len(lat)} votes in {wall:.0f} s ({result.votes_per_s:.1f} votes/s); "
          f"vote->next pair p50 {result.p50:.0f} p95 {result.p95:.0f} p99 {result.p99:.0f} "
          f"max {_p(steady, 100):.0f} ms; first vote of each rater (queue load) p95 {_p(firsts, 95):.0f} ms; "
          f"server CPU {result.cpu_ms:.1f} ms/vote; load average after {load_after:.2f}", flush=True)
    print(f"  [{name}] acknowledged {sum(acked.values())}, stored {sum(stored.values())} (rows {total:,}, distinct "
          f"{distinct:,}); lost {lost}; double-counted {extra}; served again {again}; errors {len(errors)}",
          flush=True)
    for e in errors[:5]:
        print(f"    error: {e}", flush=True)
    return result


def run() -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
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
        old, new = [_pass(name, fragments, tmp, env, settings.database_path, tokens, seed=7 + 2 * i)
                    for i, (name, fragments) in enumerate(PASSES)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    return Result(
        "load_server",
        f"fragment: {new.line()}; {RATERS}x{VOTES} votes via the page, 1M stored",
        f"whole-page rerun, same run: {old.line()}; 1 rater alone p95 {new.alone_p95:.0f} / {old.alone_p95:.0f} ms",
        old.p95 / new.p95 if new.p95 else float("nan"), f"p95<={GOAL_MS:.0f}ms, 0 lost",
        old.clean and new.clean and new.p95 <= GOAL_MS)
