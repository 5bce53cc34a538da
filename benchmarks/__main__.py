"""`python -m benchmarks [NAME ...]` (`make bench`): run every benchmark, or the named ones, and
print one table: figure, comparison, ratio, goal, pass/fail.

Each benchmarks/bench_*.py has `run() -> Result`. The issues' figures come first, in order
(P1-P7), then the others. A benchmark that crashes is a FAIL row with its error; the rest still
run. Progress lines go to the screen as each benchmark runs; the table is printed again, whole,
at the end. Exit status 1 when any row fails.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from benchmarks.result import Result

os.environ.setdefault("OMP_NUM_THREADS", "1")

# The issues' figures, by their labels.
LABELS = {
    "serving": "P1",            # [serving]: generation for base + 3 adapters, tuneboard's path vs transformers
    "review_p2": "P2",          # [review]: vote -> next pair with 1M votes stored, 50 raters
    "metrics_p3": "P3",         # [metrics]: Metrics/Home page queries over 10M metric rows
    "train_overhead": "P4",     # [training]: the job wrapper's overhead over a bare TRL script
    "metrics_p5": "P5",         # [metrics]: ROUGE/BLEU/chrF over 10k pairs, parallel vs one process
    "review_bt": "P6",          # [review]: Bradley-Terry with 1,000 bootstrap rounds
    "demo_p7": "P7",            # [proof]: `make demo`'s first run
    "load_server": "load",      # [proof]: 50 raters x 200 votes through the running app
    "trust_calibration": "trust",  # [trust]: false-positive rates and coverage by simulation against known truth
    "api_results": "api",       # [api]: GET of a pair set's results at 1M votes through the live server
    "api_votes": "api",         # [api]: 50 API clients voting at once: 0 lost, 0 double, vote->next p95
    "judge_throughput": "judge",  # [judge]: 200 demo pairs in both orders, batched vs one request at a time
    "judge_calibration": "judge",  # [judge]: agreement tables over 100k judged pairs, 10k expert votes
}


def _order(names: list[str]) -> list[str]:
    labelled = [n for n in LABELS if n in names]
    return labelled + sorted(n for n in names if n not in LABELS)


def _row(label: str, r: Result, seconds: float) -> str:
    return (f"{label:5} | {r.name:20} | {r.figure} | {r.comparison} | {r.ratio:.2f} | {r.goal} | "
            f"{'pass' if r.passed else 'FAIL'} | {seconds:.0f} s")


def main(argv: list[str]) -> int:
    found = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    names = _order([n.removeprefix("bench_") for n in argv] if argv else found)
    unknown = [n for n in names if n not in found]
    if unknown:
        print(f"no such benchmark: {', '.join(unknown)} (there are: {', '.join(_order(found))})", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        label = LABELS.get(name, "")
        print(f"== {label} {name}", flush=True)
        t0 = time.perf_counter()
        try:
            result = importlib.import_module(f"benchmarks.bench_{name}").run()
        except Exception as exc:  # noqa: BLE001 - a crashed benchmark is a failed row, the others still run
            traceback.print_exc()
            result = Result(name, f"crashed: {type(exc).__name__}: {exc}"[:200], "-", float("nan"), "-", False)
        rows.append((result.passed, _row(label, result, time.perf_counter() - t0)))
        print(rows[-1][1], flush=True)
    print("\nlabel | benchmark | figure | comparison | ratio | goal | result | time")
    for _, line in rows:
        print(line)
    return 0 if all(ok for ok, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
