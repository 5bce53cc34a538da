"""Near-duplicate detection on 3,000 demo examples: MinHash LSH (what the validator uses)
against exact all-pairs Jaccard over the same shingles. Reports the speed-up and the recall
of the LSH on the pairs the exact method finds."""

from __future__ import annotations

import time

from benchmarks.result import Result
from core.datasets.validate import Example, _shingles, example_hash, minhashes, near_duplicate_pairs
from core.demo.tickets import make_dataset

THRESHOLD = 0.8


def run(n: int = 3000) -> Result:
    examples = [Example(i + 1, e["messages"], None, example_hash(e["messages"])) for i, e in
                enumerate(make_dataset(n, seed=11))]
    t0 = time.perf_counter()
    hashes = minhashes(examples)
    lsh_pairs = {(i, j) for i, j, _ in near_duplicate_pairs(hashes, THRESHOLD)}
    t_lsh = time.perf_counter() - t0

    t0 = time.perf_counter()
    sets = [_shingles(e.messages) for e in examples]
    exact = set()
    for i in range(len(sets)):
        a = sets[i]
        for j in range(i + 1, len(sets)):
            b = sets[j]
            if len(a & b) / len(a | b) >= THRESHOLD:
                exact.add((i, j))
    t_exact = time.perf_counter() - t0
    recall = len(lsh_pairs & exact) / len(exact) if exact else 1.0
    ratio = t_exact / t_lsh
    return Result("near_duplicates_3k", f"LSH {t_lsh:.2f} s, recall {recall:.2f} of {len(exact)} pairs",
                  f"exact all-pairs {t_exact:.1f} s / MinHash LSH", ratio, "ratio>1, recall>=0.8",
                  ratio > 1 and recall >= 0.8)
