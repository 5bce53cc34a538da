"""The `harness` job's worker: lm-evaluation-harness tasks on one variant, results as events.

    python -m core.regression.harness_worker RUN_DIR

The model is built once (transformers + PEFT, or vLLM with LoRA) and each task is evaluated
on its own, so a task's results are reported (and stored by the owner) as soon as it is done,
a failure names the task that failed, and a resumed job skips the tasks it already reported.
lm-eval's built-in tasks download their data from the Hugging Face hub: offline, loading it
fails, and the worker says so instead of leaving a bare ConnectionError. Tasks of the job's
`task_folder` (YAML files with local data) need no hub.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path

from core.jobs.events import EVENTS_FILE
from core.jobs.worker import Stopped, WorkerRun, failure, run_worker

# Errors that mean "the hub could not be reached", by name: importing huggingface_hub or
# requests just to name their classes is not worth it, and their names are stable.
OFFLINE_ERRORS = {"OfflineModeIsEnabled", "LocalEntryNotFoundError", "ConnectionError", "ConnectTimeout",
                  "ConnectError", "ReadTimeout", "Timeout", "MaxRetryError", "NameResolutionError"}


def model_spec(config: dict) -> tuple[str, str]:
    """lm-eval's model type and its `model_args` string for the job's variant and path."""
    base, variant = config["base_model"], config["variant"]
    if config.get("path", "transformers").startswith("vllm"):
        if variant["kind"] == "merged":
            return "vllm", f"pretrained={variant['path']}"
        if variant["kind"] == "adapter":
            rank = json.loads(Path(variant["path"], "adapter_config.json").read_text()).get("r", 16)
            return "vllm", f"pretrained={base},enable_lora=True,max_lora_rank={rank},lora_local_path={variant['path']}"
        return "vllm", f"pretrained={base}"
    if variant["kind"] == "merged":
        return "hf", f"pretrained={variant['path']}"
    if variant["kind"] == "adapter":
        return "hf", f"pretrained={base},peft={variant['path']}"
    return "hf", f"pretrained={base}"


def _number(value) -> float | None:
    """A metric value as a float; lm-eval writes "N/A" where it has no standard error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def result_rows(output: dict) -> list[dict]:
    """One row per (task, metric) of `simple_evaluate`'s return value.

    Its `results` maps each task (and group) to keys "METRIC,FILTER" and "METRIC_stderr,FILTER"
    besides "alias" (and, in newer releases, "name" and "sample_len"); "n-samples" gives each
    task's {"original", "effective"} example counts. The filter "none" is dropped from the name."""
    rows = []
    for task, values in output.get("results", {}).items():
        counts = output.get("n-samples", {}).get(task) or {}
        n = counts.get("effective", values.get("sample_len"))
        for key, value in values.items():
            name, sep, filter_ = key.partition(",")
            if not sep or name.endswith("_stderr") or _number(value) is None:
                continue  # alias/name/sample_len, a stderr (read with its metric), or a non-numeric value
            rows.append({"task": task, "metric": name if filter_ == "none" else f"{name},{filter_}",
                         "value": _number(value), "stderr": _number(values.get(f"{name}_stderr,{filter_}")),
                         "n_samples": None if n is None else int(n)})
    return rows


def is_offline_error(exc: BaseException) -> bool:
    """Whether an exception (or one it was raised from) says the hub could not be reached."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__name__ in OFFLINE_ERRORS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def reported_tasks(run_dir: Path) -> set[str]:
    """Tasks whose results an earlier attempt of this job already reported."""
    path = run_dir / EVENTS_FILE
    if not path.exists():
        return set()
    done = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if record.get("type") == "result":
            done.add(record["task"])
    return done


def evaluate(run: WorkerRun, current: dict) -> None:
    """Each task not reported yet, one at a time; `current["task"]` names the one under way."""
    config, events = run.config, run.events
    version = metadata.version("lm_eval") if _installed() else None
    todo = [t for t in config["tasks"] if t not in reported_tasks(run.folder)]
    events.emit("started", pid=os.getpid(), lm_eval_version=version, tasks=todo)
    model, model_args = model_spec(config)
    if version is None:
        raise RuntimeError("lm-eval is not installed in the worker's environment; "
                           "install it with pip install -e '.[harness]'.")
    import lm_eval
    import torch
    from lm_eval.api.registry import get_model

    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)  # small CPUs under load: one thread is stable (STACK.md)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # vLLM's CPU worker refuses to start without it
    device = "cuda" if torch.cuda.is_available() else "cpu"
    extra = {"batch_size": config.get("batch_size") or ("auto" if device == "cuda" else 8), "device": device}
    lm = get_model(model).create_from_arg_string(model_args, extra)
    task_manager = None
    if config.get("task_folder"):
        from lm_eval.tasks import TaskManager

        task_manager = TaskManager(include_path=config["task_folder"])
    for done, task in enumerate(todo, 1):
        current["task"] = task
        if run.should_stop():
            raise Stopped(done=done - 1)
        output = lm_eval.simple_evaluate(model=lm, tasks=[task], limit=config.get("limit"), task_manager=task_manager)
        events.emit("result", task=task, lm_eval_version=version, rows=result_rows(output or {}))
        events.emit("progress", done=done, total=len(todo))
    events.emit("finished", tasks=len(config["tasks"]))


def failure_of(exc: Exception, task: str | None) -> str:
    """The `failed` event's error: which task failed, and whether the hub could not be reached."""
    detail = failure(exc)
    if task is not None and is_offline_error(exc):
        return (f"task data for {task} could not be downloaded (offline?): {detail}; lm-eval needs the "
                "Hugging Face hub for its datasets.")
    return f"task {task}: {detail}" if task is not None else detail


def main(run_dir: str) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    current: dict = {"task": None}
    return run_worker(run_dir, lambda run: evaluate(run, current),
                      error=lambda run, exc: failure_of(exc, current["task"]), interrupted=lambda run: {})


def _installed() -> bool:
    from importlib.util import find_spec

    return find_spec("lm_eval") is not None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
