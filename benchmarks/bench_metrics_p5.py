"""P5: ROUGE-L + BLEU + chrF over 10k (prediction, reference) pairs, parallel vs one process.

Both sides run the real `score` job worker (core.metrics.worker.main) end to end on the same
run folder contents (config.json + inputs.jsonl, one variant): ours with `processes` = the
machine's cores, the baseline with `processes` = 1. The parallel run's emitted `scores`
events must equal the single-process run's, or the benchmark fails. Goal: a speedup of at
least 0.7 x cores."""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path

from benchmarks.result import Result
from core.jobs.events import CONFIG_FILE, EVENTS_FILE
from core.metrics import worker
from core.metrics.registry import METRICS

PAIRS, METRIC_NAMES, EFFICIENCY = 10_000, ["rougeL", "bleu", "chrf"], 0.7
WORDS = ("thanks for reaching out we have reset your password please check the inbox spam folder "
         "order refund shipping delayed tracking number account billing invoice subscription cancel "
         "renewal charged twice sorry inconvenience update app version restart device settings "
         "support team ticket escalated engineer within hours business days replacement warranty "
         "return label address confirm email verified login issue resolved let us know if anything "
         "else help today best regards customer care plan upgrade downgrade credit applied").split()


def make_pairs(n: int = PAIRS, seed: int = 5) -> list[tuple[str, str]]:
    """Seeded support-reply-length pairs (30-60 words); each prediction keeps a random share
    of its reference's words, in order, and replaces the rest, so scores spread over 0-100."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        ref = [rng.choice(WORDS) for _ in range(rng.randint(30, 60))]
        keep = rng.random()
        pred = [w if rng.random() < keep else rng.choice(WORDS) for w in ref[:rng.randint(25, len(ref))]]
        pairs.append((" ".join(pred).capitalize() + ".", " ".join(ref).capitalize() + "."))
    return pairs


def score_run(pairs: list[tuple[str, str]], processes: int) -> tuple[float, dict[str, list]]:
    """Seconds for one end-to-end worker run, and its `scores` items by metric."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        (run_dir / CONFIG_FILE).write_text(json.dumps({
            "set_id": "bench", "metrics": METRIC_NAMES, "n_rows": len(pairs), "processes": processes,
            "versions": {m: METRICS[m].version for m in METRIC_NAMES}}, indent=2, sort_keys=True))
        (run_dir / worker.INPUTS_FILE).write_text("".join(
            json.dumps({"prompt_idx": i, "variant_id": "base", "output": p, "reference": r}) + "\n"
            for i, (p, r) in enumerate(pairs)), encoding="utf-8")
        t0 = time.perf_counter()
        assert worker.main(str(run_dir)) == 0
        seconds = time.perf_counter() - t0
        events = [json.loads(line) for line in (run_dir / EVENTS_FILE).read_text().splitlines()]
    assert events[-1]["type"] == "finished", events[-1]
    return seconds, {e["metric"]: e["items"] for e in events if e["type"] == "scores"}


def run() -> Result:
    os.environ["OMP_NUM_THREADS"] = "1"
    cores = os.cpu_count() or 1
    pairs = make_pairs()
    t_par, par = score_run(pairs, cores)
    t_one, one = score_run(pairs, 1)
    same = par == one and set(one) == set(METRIC_NAMES) and all(len(v) == PAIRS for v in one.values())
    ratio, goal = t_one / t_par, EFFICIENCY * cores
    return Result("metrics_p5", f"{PAIRS // 1000}k pairs x {len(METRIC_NAMES)} metrics: {t_par:.1f} s on {cores} processes",
                  f"vs {t_one:.1f} s in one process{'' if same else ' (SCORES DIFFER)'}",
                  ratio, f"ratio>={goal:.1f} (0.7 x {cores} cores)", same and ratio >= goal)
