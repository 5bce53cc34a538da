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
import signal
import sys
from pathlib import Path

from core.errors import TuneboardError
from core.jobs.events import EventWriter, cancel_requested, read_config
from core.lifecycle.bundle import STAGED, write_zip
from core.lifecycle.progress import ByteProgress, Cancelled


def main(run_dir: str) -> int:
    run = Path(run_dir)
    config = read_config(run)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    out_path = Path(config["out_path"] or run / f"{config['run_id']}.zip")
    with EventWriter(run) as events:
        events.emit("started", run_id=config["run_id"], path=str(out_path), data=config["include_data"])
        progress = ByteProgress(events, lambda: stop["now"] or cancel_requested(run))
        try:
            path, manifest = write_zip(run / STAGED, out_path, progress)
            events.emit("finished", path=str(path), bytes=path.stat().st_size,
                        data_files=sorted(manifest["data"]["files"]))
            shutil.rmtree(run / STAGED, ignore_errors=True)
        except Cancelled:
            events.emit("cancelled", note=f"no run record was written to {out_path}")
        except TuneboardError as exc:
            events.emit("failed", error=str(exc))
        except OSError as exc:  # a full disk, a folder that cannot be written
            events.emit("failed", error=f"{out_path}: the run record could not be written ({exc.strerror or exc}: "
                        f"{exc.filename or out_path}); no zip was left there.")
        except Exception as exc:  # noqa: BLE001 - the job says why; the owner keeps serving
            events.emit("failed", error=f"{out_path}: the run record could not be written: {type(exc).__name__}: "
                        f"{exc}; no zip was left there.")
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
