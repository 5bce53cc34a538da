"""`make bench`'s runner: the issues' figures first, in order; an unknown name is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.__main__ import LABELS, _order

ROOT = Path(__file__).resolve().parents[1]


def test_every_labelled_benchmark_exists_and_comes_first_in_order():
    found = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))
    assert set(LABELS) <= set(found)
    ordered = _order(found)
    assert ordered[:len(LABELS)] == list(LABELS)
    assert [LABELS[n] for n in ordered[:7]] == [f"P{i}" for i in range(1, 8)]
    assert sorted(ordered) == found


def test_an_unknown_benchmark_is_refused_with_the_list():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "no_such"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "no such benchmark: no_such" in done.stderr and "demo_p7" in done.stderr
