"""Wrapper overhead of training: the same LoRA config on the tiny model trained through
tuneboard's job (worker process, data snapshot, events, ingestion, lineage) against a bare
TRL script on the same data. Both wall times include process start-up and imports.
Goal: tuneboard / bare <= 1.05."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.result import Result

STEPS = 120


def run() -> Result:
    from core.auth import CLI_USER
    from core.config import load_settings
    from core.datasets import ImportOptions, import_dataset
    from core.demo.tickets import write_demo_files
    from core.demo.tiny import build_tiny_model
    from core.owner import Owner
    from core.training import start_training
    from core.training.config import TrainConfig

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiny = str(build_tiny_model(tmp / "tiny"))
        settings = load_settings(env={"TUNEBOARD_WORKSPACE": str(tmp / "ws")})
        owner = Owner.open(settings, monitor=False, env={"TUNEBOARD_ADMIN_PASSWORD": "bench-password"})
        good, _ = write_demo_files(tmp / "data", n=400)
        version = import_dataset(owner.store, CLI_USER, good.read_bytes(), good.name,
                                 ImportOptions(name="bench")).version_id
        config = TrainConfig(base_model=tiny, dataset_version=version, learning_rate=3e-3, max_steps=STEPS,
                             batch_size=8, eval_every=40, lora_rank=8, lora_alpha=16, lora_dropout=0.0,
                             modules_to_save=["lm_head"], max_seq_len=256, early_stopping_patience=0)
        t0 = time.perf_counter()
        job_id = start_training(owner.store, owner.jobs, CLI_USER, config)
        job = owner.jobs.wait(job_id, timeout=1800, poll=0.1)
        t_ours = time.perf_counter() - t0
        assert job["status"] == "succeeded", owner.jobs.log_tail(job_id)

        (tmp / "bare.json").write_text(json.dumps(config.to_dict()))
        t0 = time.perf_counter()
        bare = subprocess.run([sys.executable, str(Path(__file__).with_name("bare_sft.py")), str(tmp / "bare.json"),
                               str(Path(job["run_dir"]) / "data"), str(tmp / "bare")], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        t_bare = time.perf_counter() - t0
        assert bare.returncode == 0, bare.stderr[-2000:]
        owner.close()
    ratio = t_ours / t_bare
    return Result("train_overhead_tiny", f"{STEPS} steps: tuneboard {t_ours:.1f} s", f"tuneboard job / bare TRL "
                  f"{t_bare:.1f} s", ratio, "ratio<=1.05", ratio <= 1.05)
