"""The offline demo: the real SmolLM2 conversion, the demo dataset, accounts; cached reruns."""

from __future__ import annotations

import json
import os

import pytest

from core.demo.tickets import CATEGORIES, PRIORITIES, TRIAGE_SCHEMA, make_dataset
from core.users import authenticate
from tests.conftest import ONE_THREAD


def test_demo_dataset_is_varied_valid_and_seeded():
    import jsonschema

    examples = make_dataset(1000, seed=7)
    assert make_dataset(1000, seed=7) == examples and make_dataset(1000, seed=8) != examples
    tickets = {e["messages"][1]["content"] for e in examples}
    assert len(tickets) == 1000
    labels = [json.loads(e["messages"][2]["content"]) for e in examples]
    for label in labels:
        jsonschema.validate(label, TRIAGE_SCHEMA)
    assert {lab["category"] for lab in labels} == set(CATEGORIES)
    assert all(e["tag"] == lab["category"] for e, lab in zip(examples, labels))  # each row tagged by its scenario
    assert {lab["priority"] for lab in labels} == set(PRIORITIES)


@pytest.mark.slow
def test_demo_builds_once_then_is_cached(tmp_path, monkeypatch):
    from core.config import load_settings
    from core.demo.setup import DEMO_DATASET, build_demo
    from core.store import open_store

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNEBOARD_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("TUNEBOARD_MODEL_BASE", raising=False)
    # Two optimizer steps keep the real SmolLM2 fine-tune of the demo short in the test suite.
    # Two test prompts through transformers keep its generations short; the demo itself uses vLLM.
    settings = load_settings(env={"TUNEBOARD_WORKSPACE": str(tmp_path / "ws"), "TUNEBOARD_TRAINING_DEMO_STEPS": "2",
                                  "TUNEBOARD_REVIEW_DEMO_PROMPTS": "2", "TUNEBOARD_SERVING_PATH": "transformers",
                                  "TUNEBOARD_REGRESSION_DEMO_ITEMS": "1",
                                  "TUNEBOARD_REGRESSION_DEMO_SWEEP_ITEMS": "0", **ONE_THREAD})
    store = open_store(settings)
    logs: list[str] = []
    first = build_demo(store, settings, examples=300, log=logs.append)
    weights = next(first.model_dir.glob("*.safetensors"))
    stamp = weights.stat().st_mtime_ns

    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(first.model_dir)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("llama", 30, 576)
    assert AutoTokenizer.from_pretrained(first.model_dir).chat_template

    version = store.row("SELECT * FROM dataset_versions WHERE dataset = ?", [DEMO_DATASET])
    report = json.loads(version["report"])
    assert version["n_examples"] == 300 and report["tokens"]["available"]
    assert report["tokens"]["tokenizer"] == "SmolLM2-135M-Instruct"
    roles = {username: role for username, role, _ in first.logins}
    assert roles == {"admin": "engineer", "lead": "lead", "rater": "rater", "rater2": "rater", "rater3": "rater"}
    for username, _, password in first.logins:
        authenticate(store, username, password)
    creds = tmp_path / "ws" / "demo-credentials.json"
    assert oct(os.stat(creds).st_mode & 0o777) == "0o600"

    run = store.row("SELECT r.*, j.status FROM runs r JOIN jobs j USING (job_id) WHERE r.job_id = ?", [first.run_id])
    assert run["status"] == "succeeded" and run["final_step"] == 2 and run["adapter_dir"]
    assert json.loads(run["lineage"])["host"]["torch_threads"] == settings.training.demo_threads == 1
    assert store.scalar("SELECT count(*) FROM model_variants WHERE kind = 'adapter'") == 1

    # The pair set of the demo: fine-tune vs base on the test prompts, three raters per pair.
    assert store.scalar("SELECT count(*) FROM generations WHERE set_id = ?", [first.generation_set_id]) == 4
    ps = store.row("SELECT * FROM pair_sets WHERE pair_set_id = ?", [first.pair_set_id])
    assert ps["generation_set_id"] == first.generation_set_id and ps["raters_per_pair"] == 3
    assert json.loads(ps["variants"]) == [f"adapter:{first.run_id}", "base"]
    assert {r["rater"] for r in store.rows("SELECT DISTINCT rater FROM assignments WHERE pair_set_id = ?",
                                           [first.pair_set_id])} == {"rater", "rater2", "rater3"}

    # Its task metrics: scored once, summarized with intervals, the fine-tune compared with the base.
    scored = store.rows("SELECT DISTINCT metric FROM metric_scores WHERE set_id = ?", [first.generation_set_id])
    assert {"json_valid", "field_accuracy"} <= {r["metric"] for r in scored}
    assert store.scalar("SELECT count(*) FROM metric_deltas WHERE set_id = ? AND variant_id = ?",
                        [first.generation_set_id, f"adapter:{first.run_id}"]) == len(scored)

    # While no output exists yet, a set's progress says what it waits on (the demo's lines show it).
    kinds = [(e["type"], e.get("stage")) for e in store.rows(
        "SELECT type, json_extract_string(payload, '$.stage') AS stage FROM job_events WHERE job_id = ? ORDER BY seq",
        [first.generation_set_id])]
    assert ("progress", "loading the model (transformers)") in kinds[:kinds.index(("generated", None))]

    # And the general-capability suite with its gate (one item per category here: inconclusive).
    suite_job = store.row("SELECT config FROM jobs j JOIN generation_sets g ON g.set_id = j.job_id "
                          "WHERE g.name LIKE 'general suite%'")
    assert json.loads(suite_job["config"])["serving"]["parity_sample"] == 0  # the demo's suite skips the parity check
    gate = store.row("SELECT * FROM regression_gates WHERE variant_id = ?", [f"adapter:{first.run_id}"])
    assert gate["verdict"] == "inconclusive" and gate["baseline"] == "base"
    assert store.scalar("SELECT count(*) FROM promotions") == 0  # only a passing gate is promoted by the demo

    # In the background, the base model judges the demo pairs in both orders (poorly: it is a 135M model).
    from core.auth import CLI_USER
    from core.jobs import Jobs
    from core.judge import judges

    [judge_run] = judges.runs(store, CLI_USER, first.pair_set_id)
    assert Jobs(store, settings.runs_dir).wait(judge_run["set_id"], timeout=300)["status"] == "succeeded"
    n_pairs = store.scalar("SELECT count(*) FROM pairs WHERE pair_set_id = ?", [first.pair_set_id])
    assert len(judges.verdicts(store, CLI_USER, judge_run["set_id"])) == n_pairs
    assert any("LLM judge" in line for line in logs)

    second = build_demo(store, settings, examples=300, log=logs.append)
    assert second.dataset_version == first.dataset_version and second.run_id == first.run_id
    assert (second.generation_set_id, second.pair_set_id) == (first.generation_set_id, first.pair_set_id)
    assert store.scalar("SELECT count(*) FROM runs") == 1
    assert weights.stat().st_mtime_ns == stamp  # not rebuilt
    assert second.logins == first.logins
    assert store.scalar("SELECT count(*) FROM dataset_versions") == 1
    assert any("cached" in line for line in logs)
    assert store.scalar("SELECT count(*) FROM jobs WHERE kind = 'score'") == 1  # not scored twice
    assert store.scalar("SELECT count(*) FROM regression_gates") == 1  # nor judged twice
    assert len(judges.runs(store, CLI_USER)) == 1  # nor the pair set judged twice
    store.close()
