"""`python -m benchmarks [NAME ...]`: run every benchmarks/bench_*.py (or the named ones).

Each module has `run() -> Result`; the runner prints one line per benchmark:
`name | figure | comparison | ratio | goal | pass/fail`.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    failed = 0
    print(f"{'benchmark':28} | {'figure':38} | {'comparison':44} | {'ratio':>8} | goal | result")
    for name in names:
        module = importlib.import_module(f"benchmarks.{name if name.startswith('bench_') else 'bench_' + name}")
        result = module.run()
        ok = result.passed
        failed += not ok
        print(f"{result.name:28} | {result.figure:38} | {result.comparison:44} | {result.ratio:8.2f} | "
              f"{result.goal} | {'pass' if ok else 'FAIL'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
