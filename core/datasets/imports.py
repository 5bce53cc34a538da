"""Importing a dataset as a job (owner side): the upload goes to the job's run folder, a worker
(core.datasets.import_worker) validates and parses it and writes the rows to a Parquet file, and
the owner inserts the version when it ingests the worker's `finished` event: in the ingest
transaction, with the same code as `import_dataset` (`save_version`), so an import is all or
nothing and happens exactly once, also if the worker or the owner is killed half-way (a dead
worker's job is marked failed by reconcile; a restarted owner ingests from its committed offset).

A file with errors ends the job `failed`; its report stays in the run folder (`import_status`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq

from core import audit
from core.auth import Action, User, require
from core.datasets import ImportOptions, dataset_name, save_version
from core.datasets.import_worker import EXAMPLES_FILE, REPORT_FILE, UPLOAD_FILE
from core.datasets.validate import Report
from core.errors import DatasetError, NotFound, Problem
from core.jobs import Jobs
from core.jobs.events import TERMINAL
from core.store import Store

KIND = "import"
# The one rule for where an upload is imported: up to this size within the request (the Data page, the API's
# `wait=true`, the CLI), above it by a job with progress (a large file must not hold a page or a request).
JOB_ABOVE_BYTES = 5 * 2**20


def needs_job(size: int) -> bool:
    """Whether a file of `size` bytes is imported (or checked) by a job rather than within the request."""
    return size > JOB_ABOVE_BYTES


def start_import(store: Store, jobs: Jobs, actor: User, data: bytes, file: str, options: ImportOptions,
                 description: str = "", base_model: str = "", check_only: bool = False) -> str:
    """Start an import job for the bytes of `file`; returns the job id. `base_model` names the tokenizer
    of the token statistics (empty: none). `check_only`: validate a (large) file without importing it;
    the job then ends `succeeded` with its report whatever the report says. Follow it with
    `import_status` (or the job's events)."""
    require(actor, Action.DATA_IMPORT)
    name = dataset_name(options, file)
    if len(data) > options.max_bytes:
        raise DatasetError(f"{file}: nothing was imported.", [Problem(
            "too_large", f"file is {len(data) / 2**20:.1f} MiB; the limit is {options.max_bytes / 2**20:.0f} MiB "
            "(data.max_upload_mb). Split the file or raise the limit", file)])
    config = {"file": file, "name": name, "description": description, "options": asdict(options),
              "base_model": base_model or "", "bytes": len(data), "door": audit.door(), "check_only": check_only}

    def save_upload(run_dir: Path) -> None:
        (run_dir / UPLOAD_FILE).write_bytes(data)

    return jobs.submit(actor, KIND, config, prepare=save_upload)


def _on_import_event(cur, job: dict, type_: str, payload: dict) -> None:
    """Runs in the ingest transaction, exactly once: the worker's `finished` event becomes the version.
    The stored event then also says what the owner made of it (dataset, created, metrics_updated)."""
    if type_ != "finished":
        return
    config = json.loads(job["config"])
    if config.get("check_only"):
        return  # a validation: nothing to take in but its report, which stays in the run folder
    run = Path(job["run_dir"])
    report = json.loads((run / REPORT_FILE).read_text(encoding="utf-8"))
    vid = payload["version_id"]

    def examples():
        table = pq.read_table(run / EXAMPLES_FILE)
        if table.num_rows != payload["examples"] or set(table.column("version_id").to_pylist()) != {vid}:
            raise ValueError(f"{EXAMPLES_FILE} does not hold the {payload['examples']} rows of version {vid}")
        return table

    with audit.through(config.get("door") or "server"):
        dataset, created, updated = save_version(
            cur, job["created_by"], vid, payload["content_hash"], config["name"], config["description"],
            config["file"], payload["format"], report, payload["split_spec"], payload.get("tokenizer"),
            config["options"].get("metrics"), examples, config["options"].get("metric_options"))
    stored = {k: v for k, v in payload.items() if k not in ("seq", "at")}
    stored.update(dataset=dataset, created=created, metrics_updated=updated)
    cur.execute("UPDATE job_events SET payload = ? WHERE job_id = ? AND seq = ?",
                [json.dumps(stored, default=str), job["job_id"], payload["seq"]])


def import_status(store: Store, jobs: Jobs, actor: User, job_id: str) -> dict:
    """An import job for a person who may import: status, latest progress, the result once it ended
    (dataset, version_id, created, metrics_updated) and the validation report once there is one."""
    require(actor, Action.DATA_IMPORT)
    job = jobs.get(job_id)
    if job["kind"] != KIND:
        raise NotFound(f"No import job {job_id!r}.")
    config = json.loads(job["config"])
    progress, finished = jobs.progress_of(job_id)
    shown = ("ok", "examples", "errors", "warnings") if config.get("check_only") else (
        "dataset", "version_id", "created", "metrics_updated")
    result = {k: finished[k] for k in shown} if finished and all(k in finished for k in shown) else None
    path = Path(job["run_dir"], REPORT_FILE)
    report = Report.from_dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None
    return {"job_id": job_id, "status": job["status"], "error": job["error"], "file": config["file"],
            "dataset": config["name"], "created_by": job["created_by"], "created_at": job["created_at"],
            "finished_at": job["finished_at"], "done": job["status"] in TERMINAL.values(), "progress": progress,
            "check_only": bool(config.get("check_only")),
            "result": result, "metrics": config["options"].get("metrics"), "report": report}
