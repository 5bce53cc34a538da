"""The model-server worker: `python -m core.serving.serve_worker RUN_DIR`.

Runs vLLM's OpenAI-compatible server over the base and its adapters (core.serving.server)
as a supervised job: it reports `ready` with the URL and served models once /health
answers, keeps watching, and stops the server when the job is cancelled. A server that
dies makes the job fail with the end of its log. Never opens the database.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path

from core.errors import JobError
from core.jobs.events import EventWriter, cancel_requested, read_config

SERVER_LOG = "vllm-server.log"


def main(run_dir: str) -> int:
    from core.serving.server import VLLMServer

    folder = Path(run_dir)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    stopping = lambda: stop["now"] or cancel_requested(folder)  # noqa: E731
    with EventWriter(folder) as events:
        events.emit("started", pid=os.getpid())
        server = None
        try:
            config = read_config(folder)
            server = VLLMServer(config["base_model"], config["adapters"], host=config.get("host", "127.0.0.1"),
                                port=config.get("port"), max_model_len=int(config.get("max_model_len", 2048)),
                                log_path=folder / SERVER_LOG).start()
            events.emit("progress", stage="starting vLLM's OpenAI server (about a minute on a small CPU)")
            t0 = time.monotonic()
            while not stopping():
                try:
                    server.wait_ready(timeout=2)
                    break
                except JobError:
                    if not server.alive():
                        raise
            if stopping():
                server.stop()
                events.emit("cancelled", stage="stopped before it was ready")
                return 0
            events.emit("ready", url=server.url, models=server.models(), max_lora_rank=server.max_lora_rank,
                        start_s=round(time.monotonic() - t0, 1))
            while not stopping():
                if not server.alive():
                    raise JobError(f"The vLLM server exited (code {server.process.returncode}). "
                                   f"See {folder / SERVER_LOG}.")
                time.sleep(1)
            server.stop()
            events.emit("cancelled", stage="stopped")
        except Exception as exc:
            print("".join(traceback.format_exception(exc))[-4000:], file=sys.stderr, flush=True)
            if server is not None:
                server.stop()
            events.emit("failed", error=f"{type(exc).__name__}: {str(exc)[:1500]}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
