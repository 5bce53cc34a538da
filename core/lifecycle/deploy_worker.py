"""The `deploy` job's worker: write a deployment folder from a plan; never opens the database.

    python -m core.lifecycle.deploy_worker RUN_DIR

Reads `config.json` from the run folder (the plan the owner made and checked when the job was
started, the target folder, whether to copy the weights), copies the weights and hashes the
copies with `progress` events in bytes ("copying weights", "hashing"), writes serve.sh,
deployment.json and README.md, and puts the folder in place whole (core.lifecycle.deploy,
`write_folder`). Its final event is `finished` (the folder and the files in it), `failed` (with
a message a person can act on) or `cancelled`; in the last two the target is as it was before.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.errors import TuneboardError
from core.jobs.worker import Stopped, WorkerRun, run_worker
from core.lifecycle.deploy import SCRIPT, DeployPlan, write_folder
from core.lifecycle.progress import ByteProgress, Cancelled


def deploy_run(run: WorkerRun) -> None:
    config, events = run.config, run.events
    out_dir = Path(config["out_dir"])
    events.emit("started", out_dir=str(out_dir), mode=config["mode"], copy_weights=config["copy_weights"])
    progress = ByteProgress(events, run.should_stop)
    try:
        written = write_folder(DeployPlan(**config["plan"]), out_dir, config["copy_weights"],
                               config.get("created_by") or "tuneboard", progress)
        events.emit("finished", out_dir=str(out_dir), files=[str(f.relative_to(out_dir)) for f in written],
                    bytes=sum(f.stat().st_size for f in written), script=str(out_dir / SCRIPT))
    except Cancelled:
        raise Stopped(note=f"nothing was written to {out_dir}") from None
    except TuneboardError as exc:  # the target changed since the job started: said, not a traceback
        events.emit("failed", error=f"{exc} Nothing was written.")
    except OSError as exc:  # a full disk, a source folder removed meanwhile, no permission
        events.emit("failed", error=f"{out_dir}: could not write the deployment ({exc.strerror or exc}: "
                    f"{exc.filename or out_dir}); nothing was written, an earlier deployment there is unchanged.")


def main(run_dir: str) -> int:
    return run_worker(run_dir, deploy_run, error=lambda run, exc: f"{run.config.get('out_dir')}: the deployment "
                      f"could not be written: {type(exc).__name__}: {exc}; nothing was written.")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
