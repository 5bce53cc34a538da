"""[service] The one process: the owner opens with the server (no browser needed), health and
Prometheus metrics answer over HTTP, a failing follow-up is reported, SIGTERM shuts down cleanly."""

from __future__ import annotations

import json
import threading
import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core import owner as owners
from core.jobs import JobMonitor
from core.owner import Owner
from server import routes


@pytest.fixture
def served(settings, env):
    """An owner installed as the server's lifespan installs it (monitor off: each test starts its own)."""
    o = Owner.open(settings, monitor=False, env=env)
    owners.install(o)
    yield o
    owners.install(None)
    if o.monitor:
        o.monitor.stop()
    o.close()


def _client() -> TestClient:
    return TestClient(Starlette(routes=routes.ROUTES, middleware=routes.MIDDLEWARE))


def test_health_is_ready_while_the_monitor_passes_and_reports_a_failing_follow_up(served):
    """Through the real monitor thread: a follow-up that raises makes health 503 with its message
    and time, and the monitor keeps retrying; once it passes again health is ready."""
    failing = threading.Event()
    failing.set()

    def follow_ups():
        if failing.is_set():
            raise RuntimeError("schedule 'weekly' points at a dataset that is gone")

    served.monitor = JobMonitor(served.jobs, interval=0.05, after=follow_ups).start()
    deadline = time.monotonic() + 10
    while served.monitor.last_error is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    answer = _client().get("/api/v1/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["live"] is True and body["ready"] is False and body["database"] == "open"
    assert "dataset that is gone" in body["monitor"]["last_error"] and body["monitor"]["last_error_at"] > 0
    failing.clear()
    while served.monitor.last_error is not None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    answer = _client().get("/api/v1/health")
    assert answer.status_code == 200 and answer.json()["ready"] is True
    assert answer.json()["monitor"]["last_error_at"] is not None  # when it last failed stays readable


def test_health_without_an_owner_is_live_but_not_ready():
    owners.install(None)
    answer = _client().get("/api/v1/health")
    assert answer.status_code == 503 and answer.json() == {"live": True, "ready": False, "database": "not open"}


def test_metrics_count_jobs_votes_and_request_latency(served, accounts):
    served.store.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) "
                         "VALUES ('j1', 'train', 'running', '', '{}', 'eve'), ('j2', 'train', 'failed', '', '{}', 'eve')")
    client = _client()
    client.get("/api/v1/health")
    text = client.get("/api/v1/metrics").text
    assert 'tuneboard_jobs{state="running"} 1.0' in text and 'tuneboard_jobs{state="failed"} 1.0' in text
    assert "tuneboard_jobs_active 1.0" in text and "tuneboard_votes_last_minute 0.0" in text
    assert 'tuneboard_http_request_duration_seconds_count{area="api"}' in text
    assert "tuneboard_followups_failing 0.0" in text
