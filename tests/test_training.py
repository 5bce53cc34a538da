"""Training on the tiny seeded model: real TRL + PEFT runs in worker processes.

The tiny model has random weights, so tests assert that loss falls, files and records
appear and the job contract holds (STACK.md: on a random base LoRA learns the format, not
the values); `modules_to_save=["lm_head"]` lets it learn in a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from core.datasets import ImportOptions, import_dataset
from core.errors import InvalidInput, PermissionDenied
from core.jobs.events import EVENTS_FILE
from core.jobs.launchers import job_processes
from core.training import get_run, list_runs, list_variants, reproduce, start_training
from core.training.config import PRESETS, TrainConfig, from_preset

pytestmark = pytest.mark.slow


def _config(tiny_model: str, version: str, **over) -> TrainConfig:
    values = dict(base_model=tiny_model, dataset_version=version, learning_rate=3e-3, max_steps=30,
                  batch_size=8, eval_every=10, lora_rank=8, lora_alpha=16, modules_to_save=["lm_head"],
                  max_seq_len=256, early_stopping_patience=0)
    values.update(over)
    return TrainConfig(**values)


@pytest.fixture
def tickets(owner, accounts, demo_files) -> str:
    good, _ = demo_files
    return import_dataset(owner.store, accounts["engineer"], good.read_bytes(), good.name,
                          ImportOptions(name="tickets")).version_id


def _evals(owner, job_id):
    return [e["eval_loss"] for e in owner.jobs.events(job_id, "eval")]


def _train_steps(owner, job_id):
    return [e["step"] for e in owner.jobs.events(job_id, "train")]


def test_run_finishes_with_falling_validation_loss_and_an_adapter(owner, accounts, tickets, tiny_model):
    job_id = start_training(owner.store, owner.jobs, accounts["engineer"], _config(tiny_model, tickets))
    job = owner.jobs.wait(job_id, timeout=300, poll=0.3)
    assert job["status"] == "succeeded", owner.jobs.log_tail(job_id)
    evals = _evals(owner, job_id)
    assert len(evals) == 3 and evals[-1] < evals[0]
    assert _train_steps(owner, job_id) == list(range(1, 31))
    train_events = owner.jobs.events(job_id, "train")
    assert all(e["tokens_per_s"] > 0 and e["eta_s"] >= 0 and e["grad_norm"] > 0 for e in train_events)
    rates = [e["learning_rate"] for e in train_events]
    peak = rates.index(max(rates))
    assert max(rates) <= 3e-3 and rates[peak:] == sorted(rates[peak:], reverse=True)  # warm-up, then cosine down
    run = get_run(owner.store, accounts["lead"], job_id)
    assert run["final_step"] == 30 and run["best_eval_loss"] == pytest.approx(min(evals))
    assert run["best_checkpoint"].endswith(f"checkpoint-{10 * (evals.index(min(evals)) + 1)}")
    adapter = Path(run["adapter_dir"])
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    variants = list_variants(owner.store, accounts["lead"])
    assert [(v["kind"], v["path"]) for v in variants] == [("adapter", str(adapter))]
    lineage = run["lineage"]
    assert lineage["dataset"]["version_id"] == tickets and lineage["base_model"]["files_sha256"]
    assert {"torch", "transformers", "peft", "trl"} <= set(lineage["packages"])
    assert lineage["seed"] == 13 and lineage["code"]["commit"]
    snapshot = Path(job["run_dir"], "data", "train.jsonl").read_text().splitlines()
    assert len(snapshot) == owner.store.scalar(
        "SELECT count(*) FROM examples WHERE version_id = ? AND split = 'train'", [tickets])


def test_early_stopping_fires_when_validation_diverges(owner, accounts, tiny_model):
    """Train answers 'alpha', validation answers 'beta' for the same kind of prompt: the better
    the model fits train, the worse validation gets, so early stopping must end the run."""
    rows = []
    for i in range(64):
        rows.append({"messages": [{"role": "user", "content": f"Item {i}: which word?"},
                                  {"role": "assistant", "content": "alpha alpha alpha"}], "split": "train"})
    for i in range(16):
        rows.append({"messages": [{"role": "user", "content": f"Entry {i}: which word?"},
                                  {"role": "assistant", "content": "beta beta beta"}], "split": "validation"})
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    version = import_dataset(owner.store, accounts["engineer"], data, "diverge.jsonl",
                             ImportOptions(name="diverge")).version_id
    config = _config(tiny_model, version, max_steps=200, eval_every=4, early_stopping_patience=2,
                     learning_rate=5e-3, warmup_ratio=0.0)
    job_id = start_training(owner.store, owner.jobs, accounts["engineer"], config)
    job = owner.jobs.wait(job_id, timeout=300, poll=0.3)
    assert job["status"] == "succeeded", owner.jobs.log_tail(job_id)
    steps = _train_steps(owner, job_id)
    evals = _evals(owner, job_id)
    assert steps[-1] < 200  # stopped early
    best = evals.index(min(evals))
    assert len(evals) - 1 - best == 2  # exactly `patience` evaluations without improvement
    warnings = owner.jobs.events(job_id, "warning")
    assert any(w["kind"] == "overfitting" for w in warnings)
    run = get_run(owner.store, accounts["engineer"], job_id)
    assert run["best_checkpoint"].endswith(f"checkpoint-{4 * (best + 1)}")


def test_cancel_then_resume_continues_from_the_checkpoint(owner, accounts, tickets, tiny_model):
    config = _config(tiny_model, tickets, max_steps=400, eval_every=10)
    job_id = start_training(owner.store, owner.jobs, accounts["engineer"], config)
    deadline = time.time() + 240
    while time.time() < deadline:
        owner.jobs.reconcile()
        if len(_train_steps(owner, job_id)) >= 12:
            break
        time.sleep(0.2)
    owner.jobs.cancel(accounts["engineer"], job_id)
    job = owner.jobs.wait(job_id, timeout=120, poll=0.3)
    assert job["status"] == "cancelled"
    stopped_at = owner.jobs.events(job_id, "cancelled")[-1]["step"]
    checkpoint = owner.jobs.events(job_id, "cancelled")[-1]["checkpoint"]
    assert checkpoint.endswith(f"checkpoint-{stopped_at}")  # saved on cancel, not only every 10 steps
    assert stopped_at < 400

    owner.jobs.resume(accounts["engineer"], job_id)
    time.sleep(1.0)
    owner.jobs.cancel(accounts["engineer"], job_id)  # stop the long run again after it resumed
    owner.jobs.wait(job_id, timeout=120, poll=0.3)
    started = owner.jobs.events(job_id, "started")
    assert started[-1]["resumed_from"] == checkpoint
    begin = owner.jobs.events(job_id, "train_begin")
    assert begin[-1]["start_step"] == stopped_at
    steps = _train_steps(owner, job_id)
    assert steps == list(range(1, len(steps) + 1))  # continues, no step twice
    lines = Path(job["run_dir"], EVENTS_FILE).read_text().splitlines()
    stored = owner.store.scalar("SELECT count(*) FROM job_events WHERE job_id = ?", [job_id])
    assert stored == len(lines) and len({json.loads(x)["seq"] for x in lines}) == len(lines)


def test_killed_worker_is_failed_with_its_log_tail(owner, accounts, tickets, tiny_model):
    job_id = start_training(owner.store, owner.jobs, accounts["engineer"],
                            _config(tiny_model, tickets, max_steps=400))
    deadline = time.time() + 240
    while time.time() < deadline and len(_train_steps(owner, job_id)) < 3:
        owner.jobs.reconcile()
        time.sleep(0.2)
    os.kill(owner.jobs.get(job_id)["pid"], signal.SIGKILL)
    job = owner.jobs.wait(job_id, timeout=60, poll=0.3)
    assert job["status"] == "failed" and "exited without finishing" in job["error"]
    assert job_processes(job_id) == []  # nothing it started outlives it
    assert "loss" in job["error"]  # the tail of the worker's log is in the record


def test_bad_requests_are_refused_before_anything_runs(owner, accounts, tickets, tiny_model):
    with pytest.raises(PermissionDenied):
        start_training(owner.store, owner.jobs, accounts["lead"], _config(tiny_model, tickets))
    with pytest.raises(InvalidInput, match="not a model folder"):
        start_training(owner.store, owner.jobs, accounts["engineer"], _config("/nonexistent/model", tickets))
    assert owner.store.scalar("SELECT count(*) FROM jobs") == 0
    assert list_runs(owner.store, accounts["lead"]) == []


def test_reproduce_starts_a_new_run_with_the_same_config(owner, accounts, tickets, tiny_model):
    first = start_training(owner.store, owner.jobs, accounts["engineer"], _config(tiny_model, tickets, max_steps=2))
    owner.jobs.wait(first, timeout=300, poll=0.3)
    second = reproduce(owner.store, owner.jobs, accounts["engineer"], first)
    owner.jobs.wait(second, timeout=300, poll=0.3)
    a, b = get_run(owner.store, accounts["engineer"], first), get_run(owner.store, accounts["engineer"], second)
    assert second != first and a["config"] == b["config"]
    assert a["lineage"]["base_model"] == b["lineage"]["base_model"]
    # Same seed, data and code: the same losses.
    assert [e["loss"] for e in owner.jobs.events(first, "train")] == \
        pytest.approx([e["loss"] for e in owner.jobs.events(second, "train")], rel=1e-5)


def test_merge_and_export_passes_parity(owner, accounts, tickets, tiny_model):
    from core.training import start_merge

    run_id = start_training(owner.store, owner.jobs, accounts["engineer"], _config(tiny_model, tickets, max_steps=20))
    assert owner.jobs.wait(run_id, timeout=300, poll=0.3)["status"] == "succeeded"
    with pytest.raises(PermissionDenied):
        start_merge(owner.store, owner.jobs, accounts["lead"], run_id, owner.settings.exports_dir)
    merge_id = start_merge(owner.store, owner.jobs, accounts["engineer"], run_id, owner.settings.exports_dir,
                           prompts=4, max_new_tokens=16)
    job = owner.jobs.wait(merge_id, timeout=300, poll=0.3)
    assert job["status"] == "succeeded", owner.jobs.log_tail(merge_id)
    parity = owner.jobs.events(merge_id, "parity")[-1]
    assert parity["ok"] and parity["identical_greedy"] == parity["prompts"] == 4
    assert parity["max_logit_diff"] < 1e-3 and parity["dtype"] == "float32"
    merged = [v for v in list_variants(owner.store, accounts["lead"]) if v["kind"] == "merged"]
    assert len(merged) == 1 and json.loads(merged[0]["detail"])["ok"] is True
    folder = Path(merged[0]["path"])
    assert (folder / "config.json").exists() and not (folder / "adapter_config.json").exists()

    # The exported folder is a plain model: it loads without PEFT and differs from the base.
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    exported = AutoModelForCausalLM.from_pretrained(folder)
    assert not torch.equal(base.lm_head.weight, exported.lm_head.weight)


def test_accelerate_launcher_runs_the_same_worker(owner, accounts, tickets, tiny_model):
    """`accelerate launch --cpu` with one process (STACK.md): the seam used for several GPUs."""
    from core.jobs.launchers import LocalLauncher, accelerate_command

    owner.jobs.launchers["train"] = LocalLauncher(accelerate_command("cpu", 1))
    job_id = start_training(owner.store, owner.jobs, accounts["engineer"], _config(tiny_model, tickets, max_steps=5))
    job = owner.jobs.wait(job_id, timeout=300, poll=0.3)
    assert job["status"] == "succeeded", owner.jobs.log_tail(job_id)
    assert "distributed_type: NO" in Path(job["run_dir"], "accelerate.yaml").read_text()
    assert _train_steps(owner, job_id) == [1, 2, 3, 4, 5]


def test_ddp_on_two_cpu_processes_trains_stops_on_one_step_and_resumes(owner, accounts, tickets, tiny_model):
    """`accelerate launch` with 2 CPU processes (gloo): both ranks train; a cancel seen by the ranks at
    different moments still stops them on the same step (the agreed flag) with a checkpoint, and the
    run resumes from it to the end."""
    from core.jobs.launchers import LocalLauncher, accelerate_command

    owner.jobs.launchers["train"] = LocalLauncher(accelerate_command("cpu", 2))
    eng = accounts["engineer"]
    job_id = start_training(owner.store, owner.jobs, eng, _config(tiny_model, tickets, max_steps=60, eval_every=5,
                                                                  batch_size=4))
    deadline = time.monotonic() + 300
    while len(_train_steps(owner, job_id)) < 7 and time.monotonic() < deadline:  # past the checkpoint at 5
        owner.jobs.reconcile()
        time.sleep(0.2)
    assert owner.jobs.events(job_id, "train_begin")[0]["world_size"] == 2, owner.jobs.log_tail(job_id)
    run_dir = Path(owner.jobs.get(job_id)["run_dir"])
    assert "use_cpu: true\n" in (run_dir / "accelerate.yaml").read_text()
    # Rank 1 sees the stop first (SIGTERM to it alone); rank 0 only learns of it through the agreed flag.
    ranks = [p for p in job_processes(job_id) if b"\0RANK=1\0" in b"\0" + Path(f"/proc/{p}/environ").read_bytes()]
    assert ranks, "rank 1 runs in a process of its own"
    os.kill(ranks[0], signal.SIGTERM)
    job = owner.jobs.wait(job_id, timeout=120, poll=0.3)
    assert job["status"] == "cancelled", owner.jobs.log_tail(job_id, 40)
    stopped_at = owner.jobs.events(job_id, "cancelled")[-1]["step"]
    assert 5 <= stopped_at < 60 and (run_dir / "checkpoints" / f"checkpoint-{stopped_at}").exists()
    deadline = time.monotonic() + 30
    while job_processes(job_id) and time.monotonic() < deadline:  # both ranks leave
        owner.jobs.reconcile()
        time.sleep(0.2)
    assert job_processes(job_id) == []
    owner.jobs.resume(eng, job_id)
    job = owner.jobs.wait(job_id, timeout=600, poll=0.3)
    assert job["status"] == "succeeded", owner.jobs.log_tail(job_id, 40)
    steps = _train_steps(owner, job_id)
    assert steps[-1] == 60 and set(steps) == set(range(1, 61))
    assert owner.jobs.events(job_id, "started")[-1]["resumed_from"].endswith(f"checkpoint-{stopped_at}")


def test_qlora_on_cpu_trains_with_the_workaround(owner, accounts, tickets, tiny_model):
    pytest.importorskip("bitsandbytes")
    job_id = start_training(owner.store, owner.jobs, accounts["engineer"],
                            _config(tiny_model, tickets, method="qlora", max_steps=10, modules_to_save=[]))
    job = owner.jobs.wait(job_id, timeout=300, poll=0.3)
    assert job["status"] == "succeeded", owner.jobs.log_tail(job_id)
    losses = [e["loss"] for e in owner.jobs.events(job_id, "train")]
    assert len(losses) == 10 and all(loss == loss for loss in losses)  # ran, no NaN
    assert Path(get_run(owner.store, accounts["engineer"], job_id)["adapter_dir"], "adapter_config.json").exists()


def test_owner_restart_mid_run_ingests_every_event_once(settings, env, owner, accounts, tickets, tiny_model):
    from core.owner import Owner

    job_id = start_training(owner.store, owner.jobs, accounts["engineer"],
                            _config(tiny_model, tickets, max_steps=60, eval_every=10))
    deadline = time.time() + 240
    while time.time() < deadline and len(_train_steps(owner, job_id)) < 5:
        owner.jobs.reconcile()
        time.sleep(0.2)
    run_dir = Path(owner.jobs.get(job_id)["run_dir"])
    owner.close()  # the dashboard goes away mid-run; the worker keeps training
    deadline = time.time() + 240
    while time.time() < deadline and '"type": "finished"' not in (run_dir / EVENTS_FILE).read_text():
        time.sleep(0.3)
    reopened = Owner.open(settings, monitor=False, env=env)
    try:
        job = reopened.jobs.wait(job_id, timeout=60, poll=0.3)
        assert job["status"] == "succeeded"
        assert _train_steps(reopened, job_id) == list(range(1, 61))
        lines = (run_dir / EVENTS_FILE).read_text().splitlines()
        assert reopened.store.scalar("SELECT count(*) FROM job_events WHERE job_id = ?", [job_id]) == len(lines)
        assert reopened.store.scalar("SELECT count(*) FROM model_variants WHERE job_id = ?", [job_id]) == 1
    finally:
        reopened.close()
