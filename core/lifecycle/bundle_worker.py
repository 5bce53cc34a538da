"""The `bundle` job's worker: zip a run's record; never opens the database.

    python -m core.lifecycle.bundle_worker RUN_DIR

Reads `config.json` and the record the owner staged in the run folder (`record/`: bundle.json
without its data hashes, config.toml, the data rows), hashes the data files into the manifest
and writes the zip with `progress` events in bytes ("hashing", "zipping"), to a temporary file
renamed into place (core.lifecycle.bundle, `write_zip`). The zip goes where the person asked
(`out_path`) or into the run folder as RUN_ID.zip. Its final event is `finished` (the zip's path
and size), `failed` (with a message a person can act on) or `cancelled`; in the last two no zip
is there. The staged record is removed once the zip is whole.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from core.errors import TuneboardError
from core.jobs.worker import Stopped, WorkerRun, run_worker
from core.lifecycle.bundle import STAGED, write_zip
from core.lifecycle.progress import ByteProgress, Cancelled


def bundle_run(run: WorkerRun) -> None:
    config, events = run.config, run.events
    out_path = _out_path(run)
    events.emit("started", run_id=config["run_id"], path=str(out_path), data=config["include_data"])
    progress = ByteProgress(events, run.should_stop)
    try:
        path, manifest = write_zip(run.folder / STAGED, out_path, progress)
        events.emit("finished", path=str(path), bytes=path.stat().st_size,
                    data_files=sorted(manifest["data"]["files"]))
        shutil.rmtree(run.folder / STAGED, ignore_errors=True)
    except Cancelled:
        raise Stopped(note=f"no run record was written to {out_path}") from None
    except TuneboardError as exc:
        events.emit("failed", error=str(exc))
    except OSError as exc:  # a full disk, a folder that cannot be written
        events.emit("failed", error=f"{out_path}: the run record could not be written ({exc.strerror or exc}: "
                    f"{exc.filename or out_path}); no zip was left there.")


def _out_path(run: WorkerRun) -> Path:
    """Where the person asked for the zip, else RUN_ID.zip in the run folder."""
    return Path(run.config["out_path"] or run.folder / f"{run.config['run_id']}.zip")


def main(run_dir: str) -> int:
    return run_worker(run_dir, bundle_run, error=lambda run, exc: f"{_out_path(run)}: the run record could not be "
                      f"written: {type(exc).__name__}: {exc}; no zip was left there.")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
