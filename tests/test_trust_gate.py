"""benchmarks/trust_gate.py: the old rule as the benchmark applies it agrees with the old scalar
McNemar, and a small calibration run has the shape the report reads and tells old from new."""

from __future__ import annotations

import numpy as np

from benchmarks.trust_gate import calibrate, old_rule_fails
from core.regression.gate import mcnemar_exact

KEYS = {"part", "point", "studies", "fpr", "coverage", "power", "old_fpr", "old_coverage", "note"}


def test_the_old_rule_is_the_old_gates():
    b, c = np.meshgrid(np.arange(0, 25), np.arange(0, 25), indexing="ij")
    vectorised = old_rule_fails(b, c, 50)
    scalar = np.array([[100 * (x - y) > 5.0 * 50 and mcnemar_exact(int(x), int(y)) < 0.05 for y in range(25)]
                       for x in range(25)])
    assert np.array_equal(vectorised, scalar) and vectorised.any()


def test_a_small_calibration_run():
    rows = calibrate(studies=300, seed=1)
    assert len(rows) == 14 and all(set(r) == KEYS and r["part"] == "gate" and r["studies"] == 300 for r in rows)
    by = {r["point"]: r for r in rows}
    assert all(r["power"] is None for p, r in by.items() if " null: " in p and "at its limit" not in p)
    assert all(r["fpr"] <= 0.12 and 0.85 <= r["coverage"] <= 1.0 for r in rows)  # 300 studies: loose
    limit = by["7x200 null: every category at its limit"]
    assert limit["old_fpr"] > 0.8 and limit["fpr"] < 0.12  # the old rule fails a fine-tune sitting at the limit
    broad = by["7x200 alt: uniform 4.9-point drop"]
    assert broad["power"] > 0.9 and broad["fpr"] < 0.12
    assert calibrate(studies=300, seed=1) == rows  # seeded
