"""The training worker: `python -m core.training.worker RUN_DIR`.

Reads `config.json` ({"train": TrainConfig, "lineage": ...}) and the data snapshot from the
run folder, trains or resumes from the last checkpoint, and reports through events. It
never opens the database. SIGTERM or the cancel file stops it after the current step with
a checkpoint saved.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path

from core.jobs.events import EventWriter, NullEvents, cancel_requested, is_main_process, read_config


def main(run_dir: str) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    folder = Path(run_dir)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    with (EventWriter(folder) if is_main_process() else NullEvents()) as events:
        try:
            from core.training.config import TrainConfig
            from core.training.sft import device, last_checkpoint, train

            record = read_config(folder)
            config = TrainConfig.from_dict(record["train"])
            import torch

            if record.get("threads"):
                torch.set_num_threads(int(record["threads"]))
            elif not os.environ.get("OMP_NUM_THREADS"):
                torch.set_num_threads(1)  # small CPUs under load: one thread is stable (STACK.md)
            events.emit("started", resumed_from=last_checkpoint(folder), device=device(), pid=os.getpid())
            outcome = train(config, folder, events, should_stop=lambda: stop["now"] or cancel_requested(folder))
        except Exception as exc:  # report, then exit non-zero; the owner marks the job failed
            tail = "".join(traceback.format_exception(exc))[-4000:]
            print(tail, file=sys.stderr, flush=True)
            events.emit("failed", error=f"{type(exc).__name__}: {str(exc)[:500]}")
            return 1
        if outcome.status == "cancelled":
            events.emit("cancelled", step=outcome.global_step, checkpoint=last_checkpoint(folder))
        else:
            events.emit("finished", step=outcome.global_step, best_checkpoint=outcome.best_checkpoint,
                        best_eval_loss=outcome.best_eval_loss, adapter_dir=outcome.adapter_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
