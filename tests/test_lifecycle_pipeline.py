"""A retraining pipeline on the tiny model, through the real workers: retrain with the promoted
config on the newest data, generate, score, gate, pair set; then a person decides."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from core.auth import CLI_USER
from core.datasets import ImportOptions, import_dataset
from core.demo.tiny import build_tiny_model
from core.errors import InvalidInput, PermissionDenied
from core.lifecycle import contenders, pipelines, promotion, schedules
from core.lifecycle.pipelines import PipelineOptions
from core.regression import runs
from core.review import results
from core.review.desk import RatingDesk
from core.training import start_training
from core.training.config import TrainConfig
from tests.apptest import assert_clean, goto
from tests.test_app import app, fast_password_hashing  # noqa: F401  (the dashboard's fixtures)

pytestmark = pytest.mark.slow
T0 = datetime(2026, 11, 29, 5, 0)


def _drive(owner, pipeline_id: str, timeout: float = 900) -> dict:
    """What the owner's monitor does every second (and `tuneboard retrain now` while it waits):
    ingest, then advance."""
    for p in pipelines.follow(owner.store, owner.jobs, owner.settings, CLI_USER, pipeline_id, timeout, poll=0.5):
        if p["status"] != "running":
            return p
    raise AssertionError(f"{pipeline_id} still running")


def test_a_retrain_pipeline_puts_a_measured_candidate_beside_the_promoted_version(app, owner, accounts, tiny_model,
                                                                                  demo_files, tmp_path):
    eng, lead = accounts["engineer"], accounts["lead"]
    good, _ = demo_files
    version = import_dataset(owner.store, eng, good.read_bytes(), good.name,
                             ImportOptions(name="tickets", metrics=["exact_match", "chrf"])).version_id
    config = TrainConfig(base_model=tiny_model, dataset_version=version, learning_rate=3e-3, max_steps=4,
                         batch_size=8, eval_every=4, lora_rank=8, lora_alpha=16, modules_to_save=["lm_head"],
                         max_seq_len=256, early_stopping_patience=0)
    first = start_training(owner.store, owner.jobs, eng, config)
    assert owner.jobs.wait(first, timeout=300, poll=0.3)["status"] == "succeeded"
    promotion.promote(owner.store, eng, f"adapter:{first}", "the first version, before any gate existed",
                      override=True)

    rival = contenders.register(owner.store, eng, "prompted", tiny_model, system_prompt="Reply in JSON.")
    # A newer base of another family: its own tokenizer, special tokens and chat template.
    other = str(build_tiny_model(tmp_path / "other-family", seed=3, vocab_size=768, style="turns"))
    newer = contenders.register(owner.store, eng, "newer", tiny_model, model=other, tasks=["tickets"])
    # The schedule fires on a fake clock and the pipeline runs through the real workers.
    options = PipelineOptions(test_prompts=3, suite_items=1, path="transformers")
    sid = schedules.create_schedule(owner.store, eng, "nightly", "tickets", "interval", "24", options, now=T0)
    assert schedules.tick(owner.store, owner.jobs, owner.settings, T0 + timedelta(hours=23)) == []
    [pid] = schedules.tick(owner.store, owner.jobs, owner.settings, T0 + timedelta(hours=24))
    p = _drive(owner, pid)
    assert p["status"] == "ready", p["why"]
    assert p["promoted"] == f"adapter:{first}" and "the promoted version" in p["config"]["_origin"]
    assert p["config"]["max_steps"] == 4 and p["candidate"] == f"adapter:{p['train_job']}"
    # The test split was answered by the base, the promoted version and the candidate, and scored.
    gen = owner.store.row("SELECT variants, n_prompts FROM generation_sets WHERE set_id = ?", [p["task_set"]])
    assert [v["variant_id"] for v in json.loads(gen["variants"])][:3] == ["base", f"adapter:{first}", p["candidate"]]
    assert {v["variant_id"] for v in json.loads(gen["variants"])[3:]} == {rival, newer} and gen["n_prompts"] == 3
    # The newer base read each prompt through its own template and tokenizer.
    tokens = {(r["variant_id"], r["prompt_idx"]): r for r in owner.store.rows(
        "SELECT variant_id, prompt_idx, tokens_in, output FROM generations WHERE set_id = ?", [p["task_set"]])}
    assert all(tokens[(newer, i)]["tokens_in"] != tokens[("base", i)]["tokens_in"] for i in range(3))
    shown = pipelines.summary(owner.store, lead, owner.settings, p)
    assert shown["metric"] == "exact_match"
    assert {s["variant"] for s in shown["scores"]} == {"base", f"adapter:{first}", p["candidate"], rival, newer}
    assert shown["gate"]["verdict"] == "inconclusive"  # one suite item per category
    suite = owner.store.row("SELECT variants FROM generation_sets WHERE set_id = ?", [p["suite_set"]])
    assert [v["variant_id"] for v in json.loads(suite["variants"])][:3] == ["base", p["candidate"], f"adapter:{first}"]
    # The candidate's gate is against the base; each contender's against the promoted version it would replace.
    gates = runs.latest_gates(owner.store, lead)
    assert gates[p["candidate"]]["baseline"] == "base"
    assert gates[rival]["baseline"] == gates[newer]["baseline"] == f"adapter:{first}"
    assert {gates[v]["set_id"] for v in (rival, newer)} == {p["suite_set"]}
    # The pair set: every two of candidate, promoted version and contenders meet (a Bradley-Terry ladder).
    ps = owner.store.row("SELECT * FROM pair_sets WHERE pair_set_id = ?", [p["pair_set"]])
    assert ps["generation_set_id"] == p["task_set"] and ps["design"] == "all-pairs"
    assert sorted(json.loads(ps["variants"])) == sorted([p["candidate"], f"adapter:{first}", rival, newer])
    assert shown["pairs"] >= 18  # 3 prompts x 6 comparisons (and gold pairs)
    desk = RatingDesk(owner.store, min_vote_seconds=0)
    while (view := desk.next_pair(accounts["rater"], p["pair_set"])) is not None:
        desk.vote(accounts["rater"], p["pair_set"], view.ticket, "1" if view.done % 2 else "2")
    ladder = results.latest(owner.store, lead, p["pair_set"], owner.settings.review).ladder
    assert set(ladder["variant"]) == {p["candidate"], f"adapter:{first}", rival, newer}
    assert [e["outcome"] for e in schedules.events(owner.store, lead, sid)] == ["started"]
    assert owner.store.scalar("SELECT count(DISTINCT rater) FROM assignments WHERE pair_set_id = ?",
                              [p["pair_set"]]) == 1  # the one rater account
    assert pipelines.advance(owner.store, owner.jobs, owner.settings) == []  # nothing starts twice

    with pytest.raises(PermissionDenied):
        pipelines.decide(owner.store, lead, pid, "promoted", "the candidate reads better")
    with pytest.raises(InvalidInput, match="inconclusive"):
        pipelines.decide(owner.store, eng, pid, "promoted", "the candidate reads better")
    # The engineer decides on the Models page, where the candidate sits beside the promoted version.
    at = goto(app("eve"), "Models")
    assert_clean(at)
    versions = at.tabs[0]
    assert any(m.value.startswith(f"**tickets**: candidate `{p['candidate']}`") for m in versions.markdown)
    [table] = [d.value for d in versions.dataframe if "role" in d.value.columns]
    assert set(table["role"]) == {"base", "promoted", "candidate", "contender"}
    assert any("Regression gate of the candidate: **inconclusive**" in w.value for w in versions.warning)
    at.text_input(key=f"decide_reason_{pid}").set_value("the candidate reads better on new data")
    at.checkbox(key=f"decide_override_{pid}").check()
    next(b for b in at.button if b.label == "Promote candidate").click().run()
    assert_clean(at)
    assert promotion.current(owner.store, lead, "tickets") == p["candidate"]
    assert pipelines.get_pipeline(owner.store, lead, pid)["status"] == "promoted"
    with pytest.raises(InvalidInput, match="already promoted"):
        pipelines.decide(owner.store, eng, pid, "dismissed", "changed my mind about it")
    promotion.rollback(owner.store, eng, "tickets", "the candidate broke refunds in production")
    assert promotion.current(owner.store, lead, "tickets") == f"adapter:{first}"
