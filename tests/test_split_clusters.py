"""A big cluster of paraphrases must not swallow a held-out split."""

from __future__ import annotations

import json

from core.datasets import ImportOptions, validate

# Long enough that texts differing in one number share >= 80% of their word 3-grams.
LONG = ("my order number {} has not arrived yet and the tracking page has shown the same status for a week now "
        "so please help me find the package or send a replacement because I need it for work on monday morning "
        "thank you very much for looking into this for me")


def test_big_near_duplicate_cluster_goes_to_train_not_test():
    rows = [{"messages": [{"role": "user", "content": LONG.format(i)},
                          {"role": "assistant", "content": "ok"}]} for i in range(40)]
    words = ["apple", "river", "stone", "cloud", "piano", "tiger", "lemon", "chair", "ocean", "forest"]
    rows += [{"messages": [{"role": "user", "content": f"{w} question about {w} {i}"},
                           {"role": "assistant", "content": f"answer {i}"}]} for i, w in enumerate(words)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    checked = validate(data, "t.jsonl", ImportOptions())
    splits = checked.report.splits
    assert splits["train"] >= 40  # the 40 paraphrases stay together, in train
    assert splits["test"] <= 5 and splits["validation"] <= 5
    clustered = {ex.split for ex in checked.examples if "order number" in ex.messages[0]["content"]}
    assert clustered == {"train"}


def test_skewed_split_is_reported():
    rows = [{"messages": [{"role": "user", "content": LONG.format(i)},
                          {"role": "assistant", "content": "ok"}]} for i in range(30)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    report = validate(data, "t.jsonl", ImportOptions()).report
    assert report.splits == {"train": 30, "validation": 0, "test": 0}
    assert {p.code for p in report.warnings} >= {"split_skew"}
