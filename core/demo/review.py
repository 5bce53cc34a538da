"""Seeded review fixtures: a finished generation set without running a model, rater accounts,
and simulated raters. Used by tests and benchmarks (the demo generates for real).

The generation set is written as a finished `generate` job with outputs built from the demo
tickets: the "tuned" variant mostly answers with the reference, the "base" variant with a
worse answer. That is a stand-in for a model, said so here, and only ever used where the
thing under test is the review, not the generation.
"""

from __future__ import annotations

import json
import random
import uuid

import numpy as np

from core.auth import CLI_USER
from core.demo.tickets import make_dataset
from core.store import Store, insert_rows
from core.users import create_user


def seed_generation_set(store: Store, n_prompts: int = 40, variants: tuple[str, ...] = ("base", "adapter:tuned"),
                        seed: int = 0, base_model: str = "demo-base") -> str:
    """A finished generation set of n_prompts demo tickets answered by each variant."""
    rng = random.Random(seed)
    examples = make_dataset(n_prompts, seed=seed + 101)
    set_id = f"generate-fixture-{uuid.uuid4().hex[:8]}"
    variant_records = [{"variant_id": v, "kind": v.split(":")[0], "name": v.split(":")[-1], "path": "", "model": "",
                        "api_key_env": ""} for v in variants]
    with store.transaction() as cur:
        cur.execute("""INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by, started_at, finished_at)
                       VALUES (?, 'generate', 'succeeded', '', '{}', 'fixture', current_timestamp, current_timestamp)""",
                    [set_id])
        cur.execute("""INSERT INTO generation_sets (set_id, name, source, base_model, variants, decoding, requested_path,
                       chosen_path, n_prompts) VALUES (?, ?, ?, ?, ?, '{}', 'transformers', 'transformers', ?)""",
                    [set_id, f"fixture of {n_prompts} tickets", json.dumps({"kind": "fixture", "seed": seed}),
                     base_model, json.dumps(variant_records), n_prompts])
        prompts, outputs = [], []
        for i, ex in enumerate(examples):
            messages = [m for m in ex["messages"] if m["role"] != "assistant"]
            reference = next(m["content"] for m in ex["messages"] if m["role"] == "assistant")
            prompts.append([set_id, i, json.dumps(messages), reference, f"fixture:{i}"])
            for rank, v in enumerate(variants):
                good = rng.random() < 0.55 + 0.3 * rank / max(1, len(variants) - 1)  # later variants answer better
                text = reference if good else json.dumps({"answer": "I am not sure how to help with that."})
                outputs.append([set_id, i, v, text, 20, len(text.split()), "stop", 1.0, "fixture", "{}"])
        insert_rows(cur, "generation_prompts", ["set_id", "prompt_idx", "messages", "reference", "source_ref"], prompts)
        insert_rows(cur, "generations", ["set_id", "prompt_idx", "variant_id", "output", "tokens_in", "tokens_out",
                                         "finish_reason", "latency_ms", "backend", "decoding"], outputs)
    return set_id


def rater_accounts(store: Store, names: list[str], password: str) -> list[str]:
    existing = {r["username"] for r in store.rows("SELECT username FROM users")}
    for name in names:
        if name not in existing:
            create_user(store, CLI_USER, name, password, "rater")
    return names


def simulated_choice(pair: dict, skill: float, rng: np.random.Generator, first_bias: float = 0.0) -> str:
    """A rater's click on a revealed pair row: with probability `skill` the better side by the
    fixture's truth (the reference text), else a random click (leaning to Response 1 by first_bias)."""
    a_good = pair["a_text"] == pair.get("reference") or pair.get("gold_better") == "a"
    b_good = pair["b_text"] == pair.get("reference") or pair.get("gold_better") == "b"
    if rng.random() < skill:
        if a_good == b_good:
            return "tie" if a_good else "both_bad"
        better_left = a_good == bool(pair["left_is_a"])
        return "1" if better_left else "2"
    if rng.random() < first_bias:
        return "1"
    return str(rng.choice(["1", "2", "tie", "both_bad"], p=[0.4, 0.4, 0.1, 0.1]))
