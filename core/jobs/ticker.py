"""The trivial worker: counts to `steps`, one event per tick. It exercises the whole job
contract (config from the run folder, events, cancel, resume, crash) without a model.

With `child` it first starts a helper process that leaves its session and ignores SIGTERM, as
vLLM's engine processes outlive a killed worker; with `deaf` it never looks at a cancel request,
as a worker stuck in a long call would not.

    python -m core.jobs.ticker RUN_DIR
"""

from __future__ import annotations

import subprocess
import sys
import time

from core.jobs.worker import Stopped, WorkerRun, run_worker


# A process that only leaves when killed (SIGTERM ignored), like an engine left behind by its worker.
_HELPER = "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\nwhile True: time.sleep(1)"


def tick(run: WorkerRun) -> None:
    steps, interval = int(run.config.get("steps", 10)), float(run.config.get("interval", 0.05))
    fail_at = run.config.get("fail_at")
    done = run.folder / "progress.txt"
    start = int(done.read_text()) if done.exists() else 0
    if run.config.get("child"):
        helper = subprocess.Popen([sys.executable, "-c", _HELPER], start_new_session=True,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        run.events.emit("child", pid=helper.pid)
    run.events.emit("started", resumed_from=start)
    for step in range(start + 1, steps + 1):
        if run.should_stop() and not run.config.get("deaf"):
            raise Stopped(step=step - 1)
        if fail_at is not None and step == int(fail_at):
            print(f"ticker: failing on purpose at step {step}", file=sys.stderr, flush=True)
            raise SystemExit(3)
        time.sleep(interval)
        run.events.emit("tick", step=step, total=steps)
        done.write_text(str(step))
    run.events.emit("finished", steps=steps)


def main(run_dir: str) -> int:
    return run_worker(run_dir, tick)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
