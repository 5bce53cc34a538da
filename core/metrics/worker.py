"""The `score` job's worker: per-example scores of each metric for each variant, in parallel.

    python -m core.metrics.worker RUN_DIR

Reads `inputs.jsonl` (prompt_idx, variant_id, output, reference, tests) written by the owner
and emits one `scores` event per (variant, metric) with every example's score, or, for a
corpus-level metric, one `corpus` event per variant with its resampled replicates
(core.metrics.corpus). It never opens the database. Work is split into chunks of examples over a process pool (one per core); a
metric that runs code in the sandbox (tests_pass) gets small chunks, since each example
costs a process of its own, with the limits from the job config's `sandbox`.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from core.errors import InvalidInput
from core.jobs.worker import Stopped, WorkerRun, run_worker
from core.metrics import custom
from core.metrics.corpus import replicates
from core.metrics.registry import METRICS, register, score

INPUTS_FILE = "inputs.jsonl"
CHUNK = 256
SANDBOX_CHUNK = 4


def _score_chunk(task: tuple[str, list[str], list[str], list[str | None], dict, dict]) -> list[float]:
    metric, predictions, references, tests, sandbox, options = task
    return score([metric], predictions, references, tests, sandbox, options)[metric]


def _corpus(run: WorkerRun, metric: str, by_variant: dict[str, list[dict]], version: str, rounds: int) -> None:
    """A corpus-level metric over the prompts every variant answered: each variant's score and replicates
    (core.metrics.corpus), one `corpus` event per variant."""
    variants = list(by_variant)
    common = sorted(set.intersection(*({i["prompt_idx"] for i in items} for items in by_variant.values())))
    rows = {v: {i["prompt_idx"]: i for i in items} for v, items in by_variant.items()}
    preds = [rows[v][p]["output"] for v in variants for p in common]
    refs = [rows[v][p]["reference"] or "" for v in variants for p in common]
    statistic = METRICS[metric].corpus(preds, refs)
    reps = replicates(statistic, len(common), variants, "base", rounds, seed=0)
    for variant, rep in reps.items():
        run.events.emit("corpus", variant_id=variant, metric=metric, metric_version=version, **rep)


def score_run(run: WorkerRun) -> None:
    config = run.config
    for name, spec in (config.get("custom") or {}).items():  # a team's evaluate metrics, as the owner registered them
        register(custom.metric_of(name, spec))
        custom.load(spec["module"])  # once, here: the scoring processes fork from this one
    rows = [json.loads(line) for line in (run.folder / INPUTS_FILE).read_text(encoding="utf-8").splitlines()
            if line.strip()]
    metrics, versions, sandbox = config["metrics"], config["versions"], config.get("sandbox") or {}
    changed = [n for n in metrics if METRICS[n].version != versions[n]]
    if changed:
        raise InvalidInput(f"metrics {', '.join(changed)} changed since this job was submitted (now "
                           f"{METRICS[changed[0]].version}); score again")
    options = config.get("options") or {}  # what the data declares for metrics that need more than references
    workers = max(1, min(int(config.get("processes") or os.cpu_count() or 1), os.cpu_count() or 1))
    by_variant: dict[str, list[dict]] = {}
    for r in rows:
        by_variant.setdefault(r["variant_id"], []).append(r)
    total = len(by_variant) * len(metrics)
    events = run.events
    corpus = [n for n in metrics if METRICS[n].scorer is None]
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
                if metric in corpus:
                    continue
                size = SANDBOX_CHUNK if METRICS[metric].needs == "tests" else CHUNK
                chunks = [(metric, preds[i:i + size], refs[i:i + size], tests[i:i + size], sandbox, options)
                          for i in range(0, len(items), size)]
                try:
                    values = [v for part in pool.map(_score_chunk, chunks) for v in part]
                except custom.CorpusLevel:  # an evaluate module that gives one number per set
                    corpus.append(metric)
                    continue
                events.emit("scores", variant_id=variant, metric=metric, metric_version=versions[metric],
                            items=[[i["prompt_idx"], v] for i, v in zip(items, values)])
                done += 1
                events.emit("progress", done=done, total=total)
        for metric in corpus:
            if run.should_stop():
                raise Stopped(done=done)
            _corpus(run, metric, by_variant, versions[metric], int(config.get("corpus_rounds") or 1000))
            done += len(by_variant)
            events.emit("progress", done=done, total=total)
        events.emit("finished", scored=done)


def main(run_dir: str) -> int:
    return run_worker(run_dir, score_run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
