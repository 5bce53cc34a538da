"""Experiment trackers, for real and offline: a tiny training run reports to MLflow (a file store in a
temp folder) and to Weights & Biases (offline mode, into the run folder); what they logged is read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import TrackingSettings
from core.errors import InvalidInput
from core.training import start_training, tracking
from core.training.config import TrainConfig
from tests.test_training import tickets  # noqa: F401  (a fixture: the demo tickets imported)

pytestmark = pytest.mark.slow


def _config(tiny_model: str, version: str) -> TrainConfig:
    return TrainConfig(base_model=tiny_model, dataset_version=version, learning_rate=3e-3, max_steps=6, batch_size=8,
                       eval_every=3, lora_rank=8, lora_alpha=16, max_seq_len=256, early_stopping_patience=0)


def test_a_run_reports_its_curve_config_and_lineage_to_mlflow_and_wandb(owner, accounts, tickets,  # noqa: F811
                                                                         tiny_model,
                                                                         tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the tracking extra (dev installs it)")
    pytest.importorskip("wandb", reason="the tracking extra (dev installs it)")
    from mlflow.tracking import MlflowClient

    store_uri = (tmp_path / "mlruns").as_uri()
    trackers = TrackingSettings(mlflow_tracking_uri=store_uri, mlflow_experiment="tickets-tuning",
                                wandb_project="tuneboard-tests", wandb_mode="offline")
    job_id = start_training(owner.store, owner.jobs, accounts["engineer"], _config(tiny_model, tickets),
                            trackers=trackers)
    job = owner.jobs.wait(job_id, timeout=300, poll=0.3)
    assert job["status"] == "succeeded", owner.jobs.log_tail(job_id, 40)
    lineage = json.loads(owner.store.scalar("SELECT lineage FROM runs WHERE job_id = ?", [job_id]))

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # reading the file store back, as the worker wrote it
    client = MlflowClient(store_uri)
    [run] = client.search_runs([client.get_experiment_by_name("tickets-tuning").experiment_id])
    assert run.info.run_name == job_id and run.info.status == "FINISHED"
    assert run.data.params["tuneboard.learning_rate"] == "0.003" and run.data.params["tuneboard.max_steps"] == "6"
    assert run.data.tags["tuneboard.lineage.dataset.version_id"] == tickets
    assert run.data.tags["tuneboard.lineage.dataset.content_hash"] == lineage["dataset"]["content_hash"]
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == [1, 2, 3, 4, 5, 6]
    evals = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "eval_loss")}
    assert set(evals) == {3, 6}
    stored = {e["step"]: e["eval_loss"] for e in owner.jobs.events(job_id, "eval")}
    assert evals == pytest.approx(stored)  # the tracker shows the run's own numbers

    [offline] = list(Path(job["run_dir"], "wandb").glob("offline-run-*"))
    assert offline.name.endswith(job_id)  # the W&B run id is the job id: a resume goes on in it
    records = _wandb_records(next(offline.glob("run-*.wandb")))
    steps = [h["train/global_step"] for h in records["history"] if "train/loss" in h]
    assert steps == [1, 2, 3, 4, 5, 6]
    logged_evals = {h["train/global_step"]: h["eval/loss"] for h in records["history"] if "eval/loss" in h}
    assert logged_evals == pytest.approx(stored)
    assert records["config"]["tuneboard"]["learning_rate"] == 0.003
    assert records["config"]["lineage"]["dataset"]["version_id"] == tickets
    assert records["exit"] == [0]  # the run was finished, not left open


def _wandb_records(path: Path) -> dict:
    """What a W&B offline run file holds: its history rows, config and exit code. The file is W&B's record
    log (a 7-byte header, then 32 KiB blocks of records each with a 7-byte header: crc, length, type)
    of `wandb_internal_pb2.Record` messages."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, raw, part = 7, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length == 0 and kind == 0):
            pos += left  # a block's padding
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        part = chunk if kind in (1, 2) else part + chunk
        if kind in (1, 4):  # a whole record, or a record's last piece
            raw.append(part)
    out: dict = {"history": [], "config": {}, "exit": []}
    for item in raw:
        record = pb.Record()
        record.ParseFromString(item)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({"/".join(i.nested_key) or i.key: json.loads(i.value_json)
                                   for i in record.history.item})
        elif kind == "config":
            out["config"].update({"/".join(i.nested_key) or i.key: json.loads(i.value_json)
                                  for i in record.config.update})
        elif kind == "exit":
            out["exit"].append(record.exit.exit_code)
    return out


def test_a_tracker_set_without_its_package_is_refused_before_a_run_starts(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(InvalidInput, match=r"tracking.mlflow_tracking_uri is set but MLflow is not installed"):
        tracking.plan(TrackingSettings(mlflow_tracking_uri="http://mlflow:5000"))
    assert tracking.plan(TrackingSettings()) is None  # off by default
    assert tracking.report_to(tracking.plan(TrackingSettings(wandb_project="p"))) == ["wandb"]
