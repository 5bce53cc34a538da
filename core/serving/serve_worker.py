"""The model-server worker: `python -m core.serving.serve_worker RUN_DIR`.

Runs vLLM's OpenAI-compatible server over the base and its adapters (core.serving.server)
as a supervised job: it reports `ready` with the URL and served models once /health
answers, keeps watching, and stops the server when the job is cancelled. A server that
dies makes the job fail with the end of its log. Never opens the database.
"""

from __future__ import annotations

import os
import sys
import time

from core.errors import JobError
from core.jobs.worker import WorkerRun, failure, run_worker

SERVER_LOG = "vllm-server.log"


def serve(run: WorkerRun) -> None:
    from core.serving.server import VLLMServer

    folder, config, events = run.folder, run.config, run.events
    events.emit("started", pid=os.getpid())
    server = None
    try:
        server = VLLMServer(config["base_model"], config["adapters"], host=config.get("host", "127.0.0.1"),
                            port=config.get("port"), max_model_len=int(config.get("max_model_len", 2048)),
                            log_path=folder / SERVER_LOG).start()
        events.emit("progress", stage="starting vLLM's OpenAI server (about a minute on a small CPU)")
        t0 = time.monotonic()
        while not run.should_stop():
            try:
                server.wait_ready(timeout=2)
                break
            except JobError:
                if not server.alive():
                    raise
        if run.should_stop():
            server.stop()
            events.emit("cancelled", stage="stopped before it was ready")
            return
        events.emit("ready", url=server.url, models=server.models(), max_lora_rank=server.max_lora_rank,
                    start_s=round(time.monotonic() - t0, 1))
        while not run.should_stop():
            if not server.alive():
                raise JobError(f"The vLLM server exited (code {server.process.returncode}). "
                               f"See {folder / SERVER_LOG}.")
            time.sleep(1)
        server.stop()
        events.emit("cancelled", stage="stopped")
    except Exception:
        if server is not None:
            server.stop()
        raise


def main(run_dir: str) -> int:
    return run_worker(run_dir, serve, error=lambda run, exc: failure(exc, 1500))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
