"""The optional lm-evaluation-harness: chosen lm-eval tasks on one variant, as a job.

lm-eval is an extra (`pip install -e '.[harness]'`, pinned). Its built-in tasks fetch their data
from the Hugging Face hub; tasks of your own (task YAML files and their local data in a task
folder) run offline. The probe suite (core.regression.runs) needs neither and stays the gate. A harness job runs `core.regression.harness_worker`, which
evaluates through lm-eval's own transformers or vLLM backend with the same base and adapter
files as every other path; its `result` events land in `harness_results` once (the ingest
transaction). This module imports neither lm_eval nor torch.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pandas as pd

from core.auth import Action, User, require
from core.config import Settings
from core.errors import InvalidInput
from core.jobs import Jobs
from core.store import Store

HARNESS_PATHS = ("transformers", "vllm")
TASK_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def missing() -> str | None:
    """Why the harness cannot run here, or None when lm-eval is installed."""
    if importlib.util.find_spec("lm_eval") is not None:
        return None
    return ("lm-eval (lm-evaluation-harness) is not installed: install it with pip install -e '.[harness]'. "
            "Its built-in tasks download their data from the Hugging Face hub (tasks of your own, in a task folder "
            "with their data, run offline). The project's own probe suite (the Regression page, `tuneboard regression "
            "run`) needs neither and is what the promotion gate uses.")


def start_harness(store: Store, jobs: Jobs, settings: Settings, actor: User, variant_id: str, tasks: list[str],
                  limit: int | None = None, path: str = "transformers", task_folder: str | None = None) -> str:
    """Run lm-eval `tasks` on one variant (the base, an adapter or a merged copy); returns the job id.
    `limit` caps the examples per task (quick looks, not comparable numbers); `task_folder` is a folder on
    this machine with task YAML files of your own (lm-eval's include path), found beside the built-in ones."""
    from core.serving import resolve_variants

    require(actor, Action.GENERATE)
    reason = missing()
    if reason:
        raise InvalidInput(reason)
    problems = []
    tasks = [t.strip() for t in tasks if t and t.strip()] if isinstance(tasks, (list, tuple)) else []
    if not tasks:
        problems.append("tasks: choose at least one lm-eval task, e.g. arc_easy, hellaswag")
    bad = [t for t in tasks if not TASK_NAME.fullmatch(t)]
    if bad:
        problems.append(f"tasks: {', '.join(map(repr, bad))} are not task names (letters, digits, '_', '.', '-')")
    if len(set(tasks)) != len(tasks):
        problems.append("tasks: a task is listed twice")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        problems.append(f"limit: {limit!r} examples per task; give a whole number of at least 1, or none for all")
    if path not in HARNESS_PATHS:
        problems.append(f"path: {path!r} is not one of {', '.join(HARNESS_PATHS)}")
    if task_folder:
        folder = Path(task_folder).expanduser()
        if not folder.is_dir():
            problems.append(f"task_folder: {task_folder} is not a folder on this machine")
        elif not any(folder.rglob("*.yaml")):
            problems.append(f"task_folder: {task_folder} holds no task YAML file (*.yaml)")
        task_folder = str(folder.resolve())
    if problems:
        raise InvalidInput("lm-eval harness: " + "; ".join(problems) + ".")
    [variant] = resolve_variants(store, actor, [variant_id], settings.base_model)
    if variant.kind == "external":
        raise InvalidInput(f"variant: {variant_id} is an external endpoint; lm-eval's tasks need the model's "
                           "weights (log-likelihoods), so run the harness on the base, an adapter or a merged copy.")
    config = {"base_model": settings.base_model, "variant": variant.to_dict(), "tasks": tasks, "limit": limit,
              "path": path, "task_folder": task_folder or None}
    return jobs.submit(actor, "harness", config)


def _on_harness_event(cur, job: dict, type_: str, payload: dict) -> None:
    """Runs in the ingest transaction: exactly once per event; a rerun task replaces its rows."""
    if type_ != "result" or not payload.get("rows"):
        return  # a task that reported no numeric metric leaves no rows (DuckDB refuses an empty batch)
    variant_id = json.loads(job["config"])["variant"]["variant_id"]
    cur.executemany("INSERT OR REPLACE INTO harness_results (job_id, variant_id, task, metric, value, stderr, "
                    "n_samples, lm_eval_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [[job["job_id"], variant_id, r["task"], r["metric"], r["value"], r["stderr"], r["n_samples"],
                      payload.get("lm_eval_version")] for r in payload["rows"]])


def results(store: Store, actor: User, variant_id: str | None = None) -> pd.DataFrame:
    """Stored harness results, newest first (optionally one variant's)."""
    require(actor, Action.METRICS_VIEW)
    where, params = ("WHERE variant_id = ?", [variant_id]) if variant_id else ("", [])
    return store.df(f"""SELECT job_id, variant_id, task, metric, value, stderr, n_samples, lm_eval_version, created_at
                         FROM harness_results {where} ORDER BY created_at DESC, job_id, task, metric""", params)
