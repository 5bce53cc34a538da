"""Load and a crash, through the running app: raters vote over the Rate page's own websocket.

`benchmarks.rater_load` drives `tuneboard serve` exactly as the page's browser does (a rerun
with the clicked button's widget id as a trigger; the page's `on_click` records the vote).
Here the load is bounded for CI (50 raters at once, a few votes each, loopback only, a
deadline that stops every rater); `make bench` (load_server) runs 50 x 200 over 1M stored
votes and reports p95. What is asserted is what a lead relies on: no error, every vote the
page acknowledged is in the table once, nothing else is, and a kill -9 of the dashboard in the
middle of rating loses no acknowledged vote.
"""

from __future__ import annotations

import contextlib
import threading
import time
import pytest

from benchmarks import bench_review_p2 as p2
from benchmarks.rater_load import (RaterReport, acknowledged, free_port, mint_tokens, run_raters, server_env,
                                   start_server, stop_server, stored_votes)
from core.config import load_settings
from core.owner import Owner

pytestmark = pytest.mark.slow

RATERS = [f"rater{i:02d}" for i in range(50)]
PRESTORED = 2           # votes each rater already has before the run (stored in SQL)


@pytest.fixture
def workspace(tmp_path):
    """50 raters, 400 pairs x 3 raters each (24 assignments per rater), 100 votes stored."""
    env = server_env(tmp_path / "ws", {"TUNEBOARD_REVIEW_MIN_VOTE_SECONDS": "0"})
    with contextlib.chdir(tmp_path):
        settings = load_settings(env=env)
    owner = Owner.open(settings, monitor=False, env=env)
    try:
        p2.build(owner.store, n_prompts=50, n_pairs=400, n_raters=len(RATERS), votes_per_rater=PRESTORED)
        tokens = mint_tokens(owner.store, RATERS)
    finally:
        owner.close()
    return tmp_path, env, settings, tokens


def test_fifty_raters_at_once_lose_and_double_count_nothing(workspace):
    root, env, settings, tokens = workspace
    port = free_port()
    proc = start_server(root, env, port, root / "server.log")
    try:
        reports = run_raters(f"http://localhost:{port}", tokens, votes=4, think=(0.0, 0.3), seed=1,
                             stop_after=240)
    finally:
        stop_server(proc)
    errors = [f"{r.name}: {e}" for r in reports for e in r.errors]
    assert errors == []
    assert all(sum(r.acknowledged.values()) == 4 for r in reports), "a rater was stopped by the deadline"
    assert sum(r.served_again for r in reports) == 0          # no pair shown again after its vote
    stored, total, distinct = stored_votes(settings.database_path)
    assert stored == acknowledged(reports)                    # per rater and choice: none lost, none extra
    assert total == distinct == len(RATERS) * (PRESTORED + 4)  # one row per (rater, pair)


def test_kill_9_mid_rating_keeps_every_acknowledged_vote(workspace):
    root, env, settings, tokens = workspace
    port = free_port()
    proc = start_server(root, env, port, root / "server.log")
    before = [RaterReport(name) for name in tokens]
    done = threading.Event()

    def kill_mid_rating() -> None:  # once 100 votes are acknowledged: raters are busy voting
        while not done.is_set() and sum(sum(r.acknowledged.values()) for r in before) < 100:
            time.sleep(0.02)
        stop_server(proc, kill=True)

    killer = threading.Thread(target=kill_mid_rating, daemon=True)
    killer.start()
    try:
        run_raters(f"http://localhost:{port}", tokens, votes=20, think=(0.0, 0.2), seed=2, stop_after=180,
                   reports=before)
    finally:
        done.set()
        killer.join()
        stop_server(proc, kill=True)
    acked = acknowledged(before)
    assert 0 < sum(acked.values()) < len(RATERS) * 20, "the kill did not land mid-rating"
    # Every rater saw the connection drop (nothing else went wrong).
    assert all(r.errors and all("Connection" in e or "Timeout" in e for e in r.errors) for r in before), \
        [r.errors for r in before if not r.errors or any("Connection" not in e for e in r.errors)][:3]

    # Restart on the same workspace: the database opens (its WAL replays) and rating goes on.
    proc = start_server(root, env, port, root / "server.log")
    try:
        after = run_raters(f"http://localhost:{port}", tokens, votes=1, think=(0.0, 0.1), seed=3, stop_after=120)
    finally:
        stop_server(proc)
    assert [e for r in after for e in r.errors] == []
    stored, total, distinct = stored_votes(settings.database_path)
    both = acked + acknowledged(after)
    missing = {key: n - stored[key] for key, n in both.items() if stored[key] < n}
    assert missing == {}, f"acknowledged votes lost by the crash: {missing}"
    # At most one vote per rater was written without its acknowledgement reaching the rater
    # (the kill fell between the commit and the page's reply); nothing was counted twice.
    assert 0 <= sum(stored.values()) - sum(both.values()) <= len(RATERS)
    assert total == distinct
