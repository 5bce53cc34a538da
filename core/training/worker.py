"""The training worker: `python -m core.training.worker RUN_DIR`.

Reads `config.json` ({"train": TrainConfig, "lineage": ...}) and the data snapshot from the
run folder, trains or resumes from the last checkpoint, and reports through events. It
never opens the database. SIGTERM or the cancel file stops it after the current step with
a checkpoint saved.
"""

from __future__ import annotations

import os
import sys

from core.jobs.worker import WorkerRun, run_worker


def train_run(run: WorkerRun) -> None:
    from core.training.config import TrainConfig
    from core.training.sft import device, last_checkpoint, train

    config = TrainConfig.from_dict(run.config["train"])
    import torch

    if run.config.get("threads"):
        torch.set_num_threads(int(run.config["threads"]))
    elif not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)  # small CPUs under load: one thread is stable (STACK.md)
    run.events.emit("started", resumed_from=last_checkpoint(run.folder), device=device(), pid=os.getpid())
    outcome = train(config, run.folder, run.events, should_stop=run.should_stop,
                    trackers=run.config.get("tracking"), lineage=run.config.get("lineage"))
    if outcome.status == "cancelled":
        run.events.emit("cancelled", step=outcome.global_step, checkpoint=last_checkpoint(run.folder))
    else:
        run.events.emit("finished", step=outcome.global_step, best_checkpoint=outcome.best_checkpoint,
                        best_eval_loss=outcome.best_eval_loss, adapter_dir=outcome.adapter_dir)


def main(run_dir: str) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run_worker(run_dir, train_run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
