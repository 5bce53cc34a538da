"""HTTP routes beside the pages: health and Prometheus metrics under /api/v1 (the dashboard owns
/metrics as a page). Both read the owner the lifespan opened; neither needs a login (they say
nothing about models, data or votes beyond counts)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from core import owner as owners
from core.jobs import ACTIVE

REGISTRY = CollectorRegistry(auto_describe=True)
LATENCY = Histogram("tuneboard_http_request_duration_seconds", "HTTP request latency (pages, static files, API)",
                    ["area"], registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def health_of(owner) -> tuple[dict, bool]:
    """(the health document, ready?) of the process's owner."""
    if owner is None:
        return {"live": True, "ready": False, "database": "not open"}, False
    monitor = owner.monitor
    now = time.time()
    state = {"alive": bool(monitor and monitor.alive),
             "last_tick_seconds_ago": None if not monitor or monitor.last_tick is None
             else round(now - monitor.last_tick, 1),
             "last_error": monitor.last_error if monitor else None,
             "last_error_at": monitor.last_error_at if monitor else None}
    try:
        owner.store.scalar("SELECT 1")
        database = "open"
    except Exception as exc:  # noqa: BLE001 - reported, not raised: health must answer
        database = f"error: {exc}"
    ready = database == "open" and state["alive"] and state["last_error"] is None
    return {"live": True, "ready": ready, "database": database, "monitor": state,
            "workspace": str(owner.settings.workspace_dir)}, ready


async def health(request: Request) -> JSONResponse:
    """live: the process answers; ready: the database is open, the monitor runs and its last pass
    succeeded (a failing follow-up makes it 503 with the error, so a supervisor can see it)."""
    body, ready = health_of(owners.running())
    return JSONResponse(body, status_code=200 if ready else 503)


class _OwnerCollector:
    """Figures read from the owner at scrape time."""

    def collect(self):
        owner = owners.running()
        if owner is None:
            return
        jobs = GaugeMetricFamily("tuneboard_jobs", "Jobs by state", labels=["state"])
        for row in owner.store.rows("SELECT status, count(*) AS n FROM jobs GROUP BY status"):
            jobs.add_metric([row["status"]], row["n"])
        yield jobs
        pipelines = GaugeMetricFamily("tuneboard_pipelines", "Retraining pipelines by state (train, evaluate, "
                                      "ready for a decision, failed, decided)", labels=["state"])
        for row in owner.store.rows("""SELECT CASE WHEN decision IS NOT NULL THEN 'decided'
                                                   WHEN error IS NOT NULL THEN 'failed' ELSE stage END AS state,
                                              count(*) AS n FROM pipelines GROUP BY state"""):
            pipelines.add_metric([row["state"]], row["n"])
        yield pipelines
        votes = owner.store.scalar("SELECT count(*) FROM votes WHERE created_at > now() - INTERVAL 1 MINUTE")
        yield GaugeMetricFamily("tuneboard_votes_last_minute", "Votes stored in the last 60 seconds", value=votes)
        active = owner.store.scalar("SELECT count(*) FROM jobs WHERE status IN (SELECT unnest(?))", [list(ACTIVE)])
        yield GaugeMetricFamily("tuneboard_jobs_active", "Jobs not yet finished", value=active)
        monitor = owner.monitor
        lag = None if not monitor or monitor.last_tick is None else time.time() - monitor.last_tick
        yield GaugeMetricFamily("tuneboard_ingest_lag_seconds", "Seconds since the owner last ingested events and "
                                "ran its follow-ups", value=-1 if lag is None else lag)
        yield GaugeMetricFamily("tuneboard_followups_failing", "1 while the owner's follow-up pass fails",
                                value=int(bool(monitor and monitor.last_error)))


REGISTRY.register(_OwnerCollector())


async def metrics(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type="text/plain; version=0.0.4; charset=utf-8")


class Timing:
    """ASGI middleware: each HTTP request's time to its last byte (websockets pass through)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        path = scope.get("path", "")
        area = "api" if path.startswith("/api/") else "static" if "/static/" in path else "page"
        try:
            await self.app(scope, receive, send)
        finally:
            LATENCY.labels(area).observe(time.perf_counter() - started)


def _api():
    import api.app

    return api.app.build()


# Matched in order: health and metrics, then the public API (api/), which the CLI speaks too.
ROUTES = [Route("/api/v1/health", health), Route("/api/v1/metrics", metrics),
          Mount("/api/v1", app=_api())]
MIDDLEWARE = [Middleware(Timing)]
