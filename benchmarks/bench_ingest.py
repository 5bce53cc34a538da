"""Event ingestion: the owner's batched, offset-tracked ingest (one transaction per batch)
against committing each event on its own, for 5,000 events in a DuckDB file."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks.result import Result
from core.auth import CLI_USER
from core.jobs import Jobs
from core.jobs.events import EventWriter
from core.store import Store

N = 5000


def run() -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "b.duckdb")
        jobs = Jobs(store, Path(tmp) / "runs")
        run_dir = Path(tmp) / "runs" / "bench"
        run_dir.mkdir(parents=True)
        with EventWriter(run_dir, fsync=False) as w:
            for step in range(N):
                w.emit("tick", step=step, loss=1.0 / (step + 1))
        store.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) "
                      "VALUES ('bench', 'ticker', 'running', ?, '{}', ?)", [str(run_dir), CLI_USER.username])
        t0 = time.perf_counter()
        got = jobs.ingest("bench").events
        t_batch = time.perf_counter() - t0
        assert got == N

        lines = (run_dir / "events.jsonl").read_text().splitlines()
        t0 = time.perf_counter()
        for line in lines:
            rec = json.loads(line)
            with store.transaction() as cur:
                cur.execute("INSERT INTO job_events VALUES ('naive', ?, ?, ?, ?)",
                            [rec.pop("seq"), rec.pop("at"), rec.pop("type"), json.dumps(rec)])
        t_naive = time.perf_counter() - t0
        store.close()
    ratio = t_naive / t_batch
    return Result("event_ingest_5k", f"{N / t_batch:,.0f} events/s batched", "one commit per event / batched",
                  ratio, "ratio>1", ratio > 1)
