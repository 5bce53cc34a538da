"""The trivial worker: counts to `steps`, one event per tick. It exercises the whole job
contract (config from the run folder, events, cancel, resume, crash) without a model.

    python -m core.jobs.ticker RUN_DIR
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from core.jobs.events import EventWriter, cancel_requested, read_config


def main(run_dir: str) -> int:
    config = read_config(run_dir)
    steps, interval = int(config.get("steps", 10)), float(config.get("interval", 0.05))
    fail_at = config.get("fail_at")
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    done = (Path(run_dir) / "progress.txt")
    start = int(done.read_text()) if done.exists() else 0
    with EventWriter(run_dir) as events:
        events.emit("started", resumed_from=start)
        for step in range(start + 1, steps + 1):
            if stop["now"] or cancel_requested(run_dir):
                events.emit("cancelled", step=step - 1)
                return 0
            if fail_at is not None and step == int(fail_at):
                print(f"ticker: failing on purpose at step {step}", file=sys.stderr, flush=True)
                raise SystemExit(3)
            time.sleep(interval)
            events.emit("tick", step=step, total=steps)
            done.write_text(str(step))
        events.emit("finished", steps=steps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
