"""The `score` job's worker: per-example scores of each metric for each variant, in parallel.

    python -m core.metrics.worker RUN_DIR

Reads `inputs.jsonl` (prompt_idx, variant_id, output, reference, tests) written by the owner
and emits one `scores` event per (variant, metric) with every example's score. It never opens
the database. Work is split into chunks of examples over a process pool (one per core); a
metric that runs code in the sandbox (tests_pass) gets small chunks, since each example
costs a process of its own, with the limits from the job config's `sandbox`.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from core.jobs.worker import Stopped, WorkerRun, run_worker
from core.metrics.registry import METRICS, score

INPUTS_FILE = "inputs.jsonl"
CHUNK = 256
SANDBOX_CHUNK = 4


def _score_chunk(task: tuple[str, list[str], list[str], list[str | None], dict, dict]) -> list[float]:
    metric, predictions, references, tests, sandbox, options = task
    return score([metric], predictions, references, tests, sandbox, options)[metric]


def score_run(run: WorkerRun) -> None:
    config = run.config
    rows = [json.loads(line) for line in (run.folder / INPUTS_FILE).read_text(encoding="utf-8").splitlines()
            if line.strip()]
    metrics, versions, sandbox = config["metrics"], config["versions"], config.get("sandbox") or {}
    options = config.get("options") or {}  # what the data declares for metrics that need more than references
    workers = max(1, min(int(config.get("processes") or os.cpu_count() or 1), os.cpu_count() or 1))
    by_variant: dict[str, list[dict]] = {}
    for r in rows:
        by_variant.setdefault(r["variant_id"], []).append(r)
    total = len(by_variant) * len(metrics)
    events = run.events
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        events.emit("started", variants=len(by_variant), metrics=len(metrics), examples=len(rows))
        done = 0
        for variant, items in by_variant.items():
            preds = [i["output"] for i in items]
            refs = [i["reference"] or "" for i in items]
            tests = [i.get("tests") for i in items]
            for metric in metrics:
                if run.should_stop():
                    raise Stopped(done=done)
                size = SANDBOX_CHUNK if METRICS[metric].needs == "tests" else CHUNK
                chunks = [(metric, preds[i:i + size], refs[i:i + size], tests[i:i + size], sandbox, options)
                          for i in range(0, len(items), size)]
                values = [v for part in pool.map(_score_chunk, chunks) for v in part]
                events.emit("scores", variant_id=variant, metric=metric, metric_version=versions[metric],
                            items=[[i["prompt_idx"], v] for i, v in zip(items, values)])
                done += 1
                events.emit("progress", done=done, total=total)
        events.emit("finished", scored=done)


def main(run_dir: str) -> int:
    return run_worker(run_dir, score_run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
