"""api_results: GET /api/v1/pair-sets/{id}/results with 1,000,000 votes stored, through a live server.

Setup: the P2 workspace (benchmarks/bench_review_p2.py: 350,000 pairs, 50 raters, 1M votes, in
bulk SQL), a lead account with an API token, and the pair set's results computed and stored once
(core.review.results.compute, timed: what a GET costs when the votes have changed since the newest
stored result). Then a real `tuneboard serve` (benchmarks.rater_load's helpers) and 30 GETs of the
results, one after another, as a notebook or a CI job reads a verdict: each checks that nothing
changed since the stored result (the votes' count and latest time, exclusions, withdrawn and gold
pairs) and serves it (the verdict sentences, ladder, comparisons, agreement, rater table and plan
as JSON); `?refresh=false` (the stored result without the check) is timed beside it.

Checked: every GET answers 200 with the stored result (none recomputed). The ratio is the
recompute time over the p95 of a GET (what serving the stored result saves).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks import bench_review_p2 as p2
from benchmarks.rater_load import free_port, server_env, start_server, stop_server
from benchmarks.result import Result
from core import tokens
from core.auth import CLI_USER, Role, User
from core.config import load_settings
from core.owner import Owner
from core.review import results
from core.users import create_user

REQUESTS = 30
GOAL_MS = 100.0
LEAD = "lead01"


def p(values: list[float], q: float) -> float:
    """The q-th percentile in milliseconds of durations in seconds."""
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def api_workspace(tmp: Path, raters: int = 0, compute: bool = False) -> dict:
    """The P2 workspace under `tmp` with API tokens for the lead and the first `raters` raters.

    Returns env, settings, tokens {username: token} and, with `compute`, the seconds a results
    computation took (stored, so the server's first GET has nothing to compute)."""
    env = server_env(tmp / "ws")
    with contextlib.chdir(tmp):
        settings = load_settings(env=env)
    t0 = time.perf_counter()
    owner = Owner.open(settings, monitor=False, env=env)
    try:
        counts = p2.build(owner.store)
        lead = create_user(owner.store, CLI_USER, LEAD, "bench-lead-password-1", "lead")
        days, most = settings.auth.token_days, settings.auth.max_token_days
        minted = {LEAD: tokens.create_token(owner.store, lead, "bench", days, most)[1]}
        for i in range(raters):
            name = f"rater{i:02d}"
            minted[name] = tokens.create_token(owner.store, User(name, Role.RATER), "bench", days, most)[1]
        print(f"  setup {time.perf_counter() - t0:.0f} s: {counts['votes']:,} votes stored, {counts['pairs']:,} "
              f"pairs, {len(minted)} API tokens", flush=True)
        seconds = None
        if compute:
            t0 = time.perf_counter()
            results.compute(owner.store, lead, p2.PAIR_SET, settings.review)
            seconds = time.perf_counter() - t0
            print(f"  results computed and stored in {seconds:.1f} s ({settings.review.bootstrap_rounds} bootstrap "
                  "rounds): what a GET costs after the votes changed", flush=True)
    finally:
        owner.close()
    return {"env": env, "settings": settings, "tokens": minted, "compute_s": seconds}


def run() -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-results-"))
    try:
        ws = api_workspace(tmp, compute=True)
        port = free_port()
        proc = start_server(tmp, ws["env"], port, tmp / "server.log")
        try:
            url = f"http://localhost:{port}/api/v1/pair-sets/{p2.PAIR_SET}/results"
            with httpx.Client(headers={"Authorization": f"Bearer {ws['tokens'][LEAD]}"}, timeout=600) as client:
                t0 = time.perf_counter()
                first = client.get(url)
                cold = time.perf_counter() - t0
                first.raise_for_status()
                stored = first.json()
                print(f"  load average before the run {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs); first GET "
                      f"(cold process) {cold * 1000:.0f} ms, {len(first.content):,} bytes", flush=True)
                timings: dict[str, list[float]] = {"checked": [], "stored": []}
                bad = []
                for i in range(REQUESTS):
                    for kind, params in (("checked", {}), ("stored", {"refresh": "false"})):
                        t0 = time.perf_counter()
                        r = client.get(url, params=params)
                        timings[kind].append(time.perf_counter() - t0)
                        if r.status_code != 200 or r.json()["result_id"] != stored["result_id"]:
                            bad.append(f"{kind} #{i}: {r.status_code} {r.text[:120]}")
        finally:
            stop_server(proc)
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    checked, plain = timings["checked"], timings["stored"]
    print(f"  {REQUESTS} GETs: p50 {p(checked, 50):.0f} p95 {p(checked, 95):.0f} max {p(checked, 100):.0f} ms "
          f"(refresh=false: p50 {p(plain, 50):.0f} p95 {p(plain, 95):.0f} ms); n_votes {stored['n_votes']:,}, "
          f"{len(stored['verdict'])} verdict line(s), ladder {len(stored['ladder'])}, agreement "
          f"{len(stored['agreement'])} rows; recomputed or failed {len(bad)}; load average after {load_after:.2f}",
          flush=True)
    for line in stored["verdict"][:1]:
        print(f"  verdict: {line[:160]}", flush=True)
    for b in bad[:5]:
        print(f"    bad: {b}", flush=True)
    p95 = p(checked, 95)
    return Result(
        "api_results",
        f"GET results p95 {p95:.0f} ms (p50 {p(checked, 50):.0f}; refresh=false p95 {p(plain, 95):.0f}), "
        f"{REQUESTS} GETs, {stored['n_votes']:,} votes",
        f"recompute from the votes {ws['compute_s']:.1f} s vs the stored result's GET p95",
        ws["compute_s"] * 1000 / p95 if p95 else float("nan"), f"p95<={GOAL_MS:.0f}ms, none recomputed",
        not bad and p95 <= GOAL_MS)
