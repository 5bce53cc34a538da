"""Run bundles: a training run's whole record in one zip, and a new run reproduced from it.

A bundle holds `bundle.json` (the run row with its config and lineage, the dataset version's
manifest, the training losses, every model version of the run, the metric summaries, gates,
review results and promotions that judged those versions), `config.toml` (the config as the
CLI's `[train]` table) and, unless left out, the dataset version's rows (`data/SPLIT.jsonl`,
exactly as stored, so the content hash can be checked anywhere).

Writing one is a `bundle` job (`start_bundle`): the owner reads the record from the database at
once and stages it in the job's run folder; the worker (core.lifecycle.bundle_worker) hashes the
data and writes the zip with progress in bytes, whole or not at all.

Reproducing one in another workspace refuses, before writing anything, when the data or the
base model's files differ from the run's (naming both hashes); differing library versions are
only recorded on the new run (`lineage.reproduced_from`): they may move the numbers a little,
and the person decides whether that matters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import tempfile
import time
import zipfile
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from core import audit, variants
from core.auth import Action, User, require
from core.errors import InvalidInput, JobError, NotFound, TuneboardError
from core.jobs.events import TERMINAL
from core.lifecycle.progress import BLOCK, ByteProgress
from core.store import Store

if TYPE_CHECKING:
    from core.config import Settings
    from core.jobs import Jobs

KIND = "bundle"
FORMAT = "tuneboard-run-bundle"
FORMAT_VERSION = 1
MANIFEST = "bundle.json"
CONFIG_TOML = "config.toml"
SPLITS = ("train", "validation", "test")
DATA_FILES = {s: f"data/{s}.jsonl" for s in SPLITS}
MEMBERS = {MANIFEST, CONFIG_TOML, *DATA_FILES.values()}
STAGED = "record"  # the record as the owner read it, in the job's run folder, until the zip is written
MAX_MEMBER_BYTES = 4 * 2**30  # a larger member is a zip bomb, not a dataset
SECTIONS = {"run": dict, "dataset": dict, "training": dict, "versions": list, "generation_sets": list,
            "gates": list, "pair_sets": list, "promotions": list, "data": dict}


# ---- JSON and TOML -----------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A JSON-safe copy: timestamps as ISO text, NaN/inf as null, numpy scalars as numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame: one dict per row
        return _plain(value.to_dict("records"))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy / pandas scalars
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        import pandas as pd

        if pd.isna(value):  # NaT, pd.NA
            return None
    except (TypeError, ValueError, ImportError):
        pass
    return str(value)


def _toml_value(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # finite (TrainConfig refuses inf/nan); repr is a valid TOML float
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v, key) for v in value) + "]"
    raise InvalidInput(f"config {key}: {value!r} cannot be written as TOML.")


def config_toml(config: dict[str, Any], note: str = "") -> str:
    """The training config as the `[train]` table `tuneboard train --config` reads (TrainConfig.from_toml)."""
    head = "".join(f"# {line}\n" for line in note.splitlines())
    return head + "[train]\n" + "".join(f"{k} = {_toml_value(v, k)}\n" for k, v in config.items())


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()


# ---- export ------------------------------------------------------------------------------
def _json_cols(row: dict, *cols: str) -> dict:
    for c in cols:
        if isinstance(row.get(c), str):
            try:
                row[c] = json.loads(row[c])
            except json.JSONDecodeError:
                pass  # free text stored in a JSON column stays text
    return row


def _training_summary(store: Store, run_id: str) -> dict[str, Any]:
    """Per-step train and validation losses: what a reproduction is compared against."""
    events = store.rows("SELECT type, payload FROM job_events WHERE job_id = ? AND type IN ('train', 'eval') "
                        "ORDER BY seq", [run_id])
    losses, evals = [], []
    for e in events:
        p = json.loads(e["payload"])
        if e["type"] == "train":
            losses.append({"step": p.get("step"), "loss": p.get("loss"), "learning_rate": p.get("learning_rate")})
        else:
            evals.append({"step": p.get("step"), "eval_loss": p.get("eval_loss")})
    return {"steps": losses[-1]["step"] if losses else None,
            "final_train_loss": losses[-1]["loss"] if losses else None,
            "final_eval_loss": evals[-1]["eval_loss"] if evals else None,
            "train_losses": losses, "eval_losses": evals}


def _judgements(store: Store, actor: User, settings: Settings, version_ids: set[str]) -> dict[str, list]:
    """Generation sets answered by one of the versions, with their metrics, gates, pair sets and
    review results; and the promotions of the versions."""
    from core.metrics import results as metric_results
    from core.review import results as review_results

    sets = []
    for row in store.rows("SELECT * FROM generation_sets ORDER BY created_at, set_id"):
        answered_by = json.loads(row["variants"] or "[]")
        if not version_ids & {v.get("variant_id") for v in answered_by}:
            continue
        row = _json_cols(row, "source", "variants", "decoding", "plan")
        scored = metric_results.latest(store, actor, row["set_id"], settings.metrics)
        row["metrics"] = None if scored is None else {
            "computed_at": scored.computed_at, "settings": scored.settings, "metrics": scored.metrics,
            "summary": scored.summary, "deltas": scored.deltas}
        sets.append(row)
    set_ids = [s["set_id"] for s in sets]
    gates = [_json_cols(g, "detail", "settings") for g in store.rows(
        "SELECT * FROM regression_gates ORDER BY computed_at, gate_id")
        if g["set_id"] in set_ids and g["variant_id"] in version_ids]
    pair_sets = []
    for ps in store.rows("SELECT * FROM pair_sets ORDER BY created_at, pair_set_id"):
        if ps["generation_set_id"] not in set_ids:
            continue
        ps = _json_cols(ps, "variants", "comparisons", "design")
        res = review_results.latest(store, actor, ps["pair_set_id"], settings.review)
        ps["review"] = None if res is None else dataclasses.asdict(res)
        pair_sets.append(ps)
    promotions = [p for p in store.rows("SELECT * FROM promotions ORDER BY seq") if p["variant_id"] in version_ids]
    return {"generation_sets": sets, "gates": gates, "pair_sets": pair_sets, "promotions": promotions}


def _record(store: Store, actor: User, settings: Settings, run_id: str, include_data: bool
            ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """What the database knows of run `run_id`, read now by the owner: the manifest (its data files'
    sha256 and row counts are left for the worker, which hashes them) and the members' bytes (the
    config as TOML, each split's rows). Metric and review results are read as the pages read them
    (recomputed first if their inputs changed), so the bundle holds the numbers a person sees now."""
    from core import __version__
    from core.datasets import get_version
    from core.training import get_run

    run = get_run(store, actor, run_id)
    version = get_version(store, actor, run["dataset_version"])
    versions = [_json_cols(v, "detail") for v in variants.rows_of_run(store, run_id)]
    judged = _judgements(store, actor, settings, {v["variant_id"] for v in versions})
    files: dict[str, bytes] = {}
    if include_data:
        for split, name in DATA_FILES.items():
            rows = store.rows("SELECT idx, source_line, messages, n_tokens, example_hash, tests, tag FROM examples "
                              "WHERE version_id = ? AND split = ? ORDER BY idx", [version["version_id"], split])
            files[name] = _jsonl([{**{k: v for k, v in r.items() if k not in ("tests", "tag") or v is not None},
                                   "messages": json.loads(r["messages"])} for r in rows])
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(), "created_by": actor.username,
        "tuneboard_version": __version__,
        "run": run,
        "dataset": {"version_id": version["version_id"], "dataset": version["dataset"],
                    "content_hash": version["content_hash"], "split_spec": version["split_spec"],
                    "counts": {"examples": version["n_examples"], "train": version["n_train"],
                               "validation": version["n_validation"], "test": version["n_test"]},
                    "metrics": version["metrics"], "source_name": version["source_name"],
                    "source_format": version["source_format"], "tokenizer": version["tokenizer"],
                    "created_at": version["created_at"], "report": version["report"].to_dict()},
        "training": _training_summary(store, run_id),
        "versions": versions,
        **judged,
        "data": {"included": include_data, "files": {}},
    }
    files[CONFIG_TOML] = config_toml(run["config"], f"Training config of run {run_id} (tuneboard bundle).\n"
                                     "Start it again with: tuneboard train --config config.toml").encode()
    return _plain(manifest), files


def start_bundle(store: Store, jobs: Jobs, actor: User, settings: Settings, run_id: str,
                 out_path: Path | None = None, include_data: bool = True) -> str:
    """Start a job that writes run `run_id`'s complete record as one zip; returns the job id.

    The owner reads the record now (quick: rows of the database) and puts it in the job's run folder;
    the worker (core.lifecycle.bundle_worker) hashes the data and writes the zip, with progress in
    bytes. The zip lands at `out_path` (a folder: RUN_ID.zip inside) or, without one, in the job's run
    folder (`bundle_file` finds it). It is written to a temporary file beside the target and renamed
    into place, so a reader never sees half a bundle. Follow it with `bundle_status`; the audit entry
    `bundle.export` is written when the finished zip is taken in."""
    require(actor, Action.JOBS_VIEW)
    manifest, files = _record(store, actor, settings, run_id, include_data)
    target = ""
    if out_path is not None:
        out = Path(out_path).expanduser().resolve()
        out = out / f"{run_id}.zip" if out.is_dir() else out
        there = next(p for p in out.parents if p.exists())
        if not there.is_dir():
            raise InvalidInput(f"out_path: {there} is a file; give a folder, or a .zip path inside one.")
        target = str(out)
    config = {"run_id": run_id, "include_data": include_data, "out_path": target,
              "bytes": sum(len(b) for b in files.values()), "door": audit.door()}

    def stage(run_dir: Path) -> None:
        record = run_dir / STAGED
        for name, data in files.items():
            (record / name).parent.mkdir(parents=True, exist_ok=True)
            (record / name).write_bytes(data)
        (record / MANIFEST).write_text(json.dumps(manifest, sort_keys=True, allow_nan=False, ensure_ascii=False),
                                       encoding="utf-8")

    return jobs.submit(actor, KIND, config, prepare=stage)


def _on_bundle_event(cur, job: dict, type_: str, payload: dict) -> None:
    """Runs in the ingest transaction, exactly once: a finished zip is audited as it was when it was
    written in the request (`bundle.export`, the run, where the zip is), by the person who asked."""
    if type_ != "finished":
        return
    config = json.loads(job["config"])
    with audit.through(config.get("door") or "server"):
        audit.record(cur, job["created_by"], "bundle.export", config["run_id"],
                     {"path": payload["path"], "data": config["include_data"]})


def _bundle_job(jobs: Jobs, job_id: str) -> dict:
    job = jobs.get(job_id)
    if job["kind"] != KIND:
        hint = " (that is a training run: start a bundle job for it first)" if job["kind"] == "train" else ""
        raise NotFound(f"No bundle job {job_id!r}{hint}.")
    return job


def bundle_status(store: Store, jobs: Jobs, actor: User, job_id: str) -> dict:
    """A bundle job for a person who may read runs: status, the latest progress (stage, bytes done and
    total) and, once it finished, the zip (path, file name, size)."""
    require(actor, Action.JOBS_VIEW)
    job = _bundle_job(jobs, job_id)
    config = json.loads(job["config"])
    progress, finished = jobs.progress_of(job_id)
    result = finished and {"path": finished["path"], "file": Path(finished["path"]).name,
                           "bytes": finished.get("bytes")}
    return {"job_id": job_id, "status": job["status"], "error": job["error"], "run_id": config["run_id"],
            "include_data": config["include_data"], "created_by": job["created_by"],
            "created_at": job["created_at"], "finished_at": job["finished_at"],
            "done": job["status"] in TERMINAL.values(), "progress": progress, "result": result}


def bundle_file(store: Store, jobs: Jobs, actor: User, job_id: str) -> Path:
    """The finished zip of a bundle job, to download; a job that has not finished is a JobError that
    says what it is doing, a zip removed since is NotFound."""
    status = bundle_status(store, jobs, actor, job_id)
    if status["status"] != "succeeded" or status["result"] is None:
        said = {"queued": "has not started yet", "running": "is still being written"}.get(
            status["status"], f"{status['status']}" + (f": {status['error']}" if status["error"] else ""))
        raise JobError(f"The run record of {status['run_id']} ({job_id}) {said}; download it once the job has "
                       "finished.")
    path = Path(status["result"]["path"])
    if not path.is_file():
        raise NotFound(f"{path}: the run record of {status['run_id']} is no longer there; prepare it again.")
    return path


# ---- writing the zip, in the worker (no database) ------------------------------------------
def write_zip(record: Path, out_path: Path, progress: ByteProgress) -> tuple[Path, dict]:
    """The zip of a staged record (the owner's `start_bundle` wrote it) at `out_path`, whole or not at
    all: the data files are hashed into the manifest ("hashing"), then every member is written to a
    temporary file beside the target ("zipping"), which is renamed into place. A cancel (progress
    raises Cancelled) or any error removes the temporary file. Returns the path and the manifest."""
    manifest = json.loads((record / MANIFEST).read_text(encoding="utf-8"))
    data = [n for n in sorted(DATA_FILES.values()) if manifest["data"]["included"]]
    missing = [n for n in data if not (record / n).is_file()]
    if missing:
        raise InvalidInput(f"{record}: {', '.join(missing)} is missing from the staged record; start the bundle "
                           "again.")
    progress.start("hashing", sum((record / n).stat().st_size for n in data))
    listed = {}
    for name in data:
        digest, rows = hashlib.sha256(), 0
        with open(record / name, "rb") as fh:
            for block in iter(lambda: fh.read(BLOCK), b""):
                digest.update(block)
                rows += block.count(b"\n")
                progress.advance(len(block))
        listed[name] = {"sha256": digest.hexdigest(), "rows": rows}
    manifest["data"]["files"] = listed
    head = json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False, ensure_ascii=False).encode()
    members = [CONFIG_TOML, *data]
    progress.start("zipping", len(head) + sum((record / n).stat().st_size for n in members))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".partial", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, head)
            progress.advance(len(head))
            for name in members:
                size = (record / name).stat().st_size
                info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])  # as writestr dates and marks them
                info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o600 << 16
                with open(record / name, "rb") as src, zf.open(info, "w", force_zip64=size > 2**31) as dst:
                    for block in iter(lambda: src.read(BLOCK), b""):
                        dst.write(block)
                        progress.advance(len(block))
        progress.check()
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path, manifest


# ---- reading -----------------------------------------------------------------------------
def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return not ("\\" in name or p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]))


def _load(path: Path) -> tuple[dict, dict[str, list[dict]] | None]:
    """The validated manifest and, when the bundle carries data, the rows of each split."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise InvalidInput(f"{where}: no such bundle file.")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"{where}: not a tuneboard run bundle (not a readable zip file: {exc}). "
                           "Export the run again (`tuneboard bundle RUN`).") from None
    with zf:
        infos = zf.infolist()
        unsafe = [i.filename for i in infos if not _safe_name(i.filename)]
        if unsafe:
            raise InvalidInput(f"{where}: refused: member {unsafe[0]!r} points outside the bundle (absolute path "
                               "or '..'); this file was not written by tuneboard.")
        names = [i.filename for i in infos]
        foreign = sorted(set(names) - MEMBERS)
        if foreign:
            raise InvalidInput(f"{where}: unexpected member(s) {', '.join(foreign)}; a run bundle holds only "
                               f"{', '.join(sorted(MEMBERS))}.")
        if MANIFEST not in names:
            raise InvalidInput(f"{where}: not a tuneboard run bundle ({MANIFEST} is missing).")
        big = [i.filename for i in infos if i.file_size > MAX_MEMBER_BYTES]
        if big:
            raise InvalidInput(f"{where}: {big[0]} would unpack to more than {MAX_MEMBER_BYTES >> 30} GiB; refused.")
        try:
            raw = {n: zf.read(n) for n in names}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # CRC errors, truncated members
            raise InvalidInput(f"{where}: the bundle is damaged ({exc}); export the run again.") from None
    try:
        manifest = json.loads(raw[MANIFEST])
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"{where}: {MANIFEST} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"{where}: {MANIFEST} is not a tuneboard run bundle (its 'format' is not {FORMAT!r}).")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidInput(f"{where}: {MANIFEST} format_version {version!r} must be a whole number.")
    if version > FORMAT_VERSION:
        raise InvalidInput(f"{where}: bundle format {version} was written by a newer tuneboard; this one reads up to "
                           f"format {FORMAT_VERSION}. Upgrade tuneboard to read it.")
    problems = [f"'{k}' must be {t.__name__ if t is not dict else 'an object'}" for k, t in SECTIONS.items()
                if not isinstance(manifest.get(k), t)]
    run, ds = manifest.get("run"), manifest.get("dataset")
    if isinstance(run, dict):
        problems += [f"run.{k} is missing" for k in ("job_id", "config", "lineage") if not isinstance(run.get(k), (
            str if k == "job_id" else dict))]
    if isinstance(ds, dict):
        problems += [f"dataset.{k} is missing" for k in ("version_id", "dataset", "content_hash", "split_spec",
                                                         "counts") if not ds.get(k)]
    if problems:
        raise InvalidInput(f"{where}: {MANIFEST} is damaged:\n" + "\n".join(f"  - {p}" for p in problems))
    from core.training.config import TrainConfig

    TrainConfig.from_dict(run["config"], f"{where}: run.config")  # names the bad field
    if CONFIG_TOML in raw:
        import tomllib

        try:
            toml = tomllib.loads(raw[CONFIG_TOML].decode("utf-8")).get("train")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{where}: {CONFIG_TOML} is not valid TOML ({exc}).") from None
        if toml != run["config"]:
            raise InvalidInput(f"{where}: {CONFIG_TOML} differs from the run config in {MANIFEST}; the bundle was "
                               "edited. Export the run again.")
    return manifest, _check_data(where, manifest, raw)


def _check_data(where: str, manifest: dict, raw: dict[str, bytes]) -> dict[str, list[dict]] | None:
    """Each data file as listed (sha256, rows), its rows valid, the whole matching the content hash."""
    from core.datasets.validate import content_hash, example_hash, example_key

    data, ds = manifest["data"], manifest["dataset"]
    if not data.get("included"):
        return None
    rows: dict[str, list[dict]] = {}
    for split, name in DATA_FILES.items():
        listed = (data.get("files") or {}).get(name)
        if name not in raw or not isinstance(listed, dict):
            raise InvalidInput(f"{where}: the bundle says it carries data but {name} is missing.")
        if hashlib.sha256(raw[name]).hexdigest() != listed.get("sha256"):
            raise InvalidInput(f"{where}: {name} does not match the sha256 recorded in {MANIFEST}: the data was "
                               "changed or damaged.")
        rows[split] = []
        for number, line in enumerate(raw[name].decode("utf-8").splitlines(), start=1):
            try:
                row = json.loads(line)
                row["example_hash"] = example_hash(row["messages"], row.get("tests"))
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{where}: {name} line {number}: not an example row ({exc}).") from None
            rows[split].append(row)
        if len(rows[split]) != ds["counts"].get(split):
            raise InvalidInput(f"{where}: {name} holds {len(rows[split])} rows; the dataset version has "
                               f"{ds['counts'].get(split)} {split} examples.")
    content = content_hash(example_key(r["example_hash"], r.get("tag")) for s in rows.values() for r in s)
    if content != ds["content_hash"]:
        raise InvalidInput(f"{where}: the data's content hash {content} is not the dataset version's "
                           f"{ds['content_hash']}.")
    return rows


def read_bundle(path: Path) -> dict:
    """The bundle's record (`bundle.json`), after checking it is a whole, unedited tuneboard bundle:
    InvalidInput names what is wrong (not a zip, foreign or damaged member, unsafe path, bad data)."""
    return _load(path)[0]


# ---- reproduce ---------------------------------------------------------------------------
def _differences(recorded: dict[str, str], here: dict[str, str]) -> dict[str, dict[str, str | None]]:
    return {name: {"bundle": recorded.get(name), "here": here.get(name)}
            for name in sorted(set(recorded) | set(here)) if recorded.get(name) != here.get(name)}


def _check_base(config: Any, recorded: dict) -> list[str]:
    """Refuse when the base model's files differ; a hub id has no file hash, so only ids compare."""
    from core.training import model_fingerprint

    here = model_fingerprint(config.base_model)
    if recorded.get("files_sha256"):
        if here.get("files_sha256") != recorded["files_sha256"]:
            found = (f"files sha256 {here['files_sha256']}" if here.get("files_sha256")
                     else "no local model folder there")
            raise InvalidInput(f"base_model {config.base_model}: the run trained on files with sha256 "
                               f"{recorded['files_sha256']}, but here it has {found}. Put the same model files at "
                               "that path to reproduce the run.")
        return []
    if recorded.get("id") != config.base_model:
        raise InvalidInput(f"base_model: the run's lineage names {recorded.get('id')!r}, its config "
                           f"{config.base_model!r}; the bundle is inconsistent.")
    note = (f"base_model {config.base_model} is a hub id: only the id was compared (no file hash was recorded; "
            "the hub revision is resolved when the model loads, so a newer revision may differ).")
    if here.get("files_sha256"):
        note += f" Here it is a local folder (files sha256 {here['files_sha256']}), which will be loaded instead."
    return [note]


def _plan_import(where: str, manifest: dict, rows: dict[str, list[dict]], settings: Settings
                 ) -> tuple[Any, bytes, str, Any, str]:
    """Import options and file that land on the bundle's exact version (same id, same split of every
    example). A seeded split is re-derived from the same seed and fractions; if that would not give
    the same assignment, the rows carry their split explicitly (then only the content hash, not the
    version id, can match). Checked with `validate`, which writes nothing."""
    from core.datasets import ImportOptions, validate, version_id

    ds = manifest["dataset"]
    ordered = sorted((r for split in SPLITS for r in rows[split]), key=lambda r: r["idx"])
    split_of = {r["example_hash"]: s for s in SPLITS for r in rows[s]}
    tokens = {json.dumps(r["messages"], sort_keys=True): r.get("n_tokens") for r in ordered}
    count = None if any(v is None for v in tokens.values()) else (
        lambda msgs: tokens[json.dumps(msgs, sort_keys=True)])
    spec = ds["split_spec"]
    max_seq_len = (ds.get("report") or {}).get("tokens", {}).get("max_seq_len") or settings.data.max_seq_len
    common = dict(name=ds["dataset"], format="jsonl", metrics=ds.get("metrics"), max_seq_len=max_seq_len)
    attempts = []
    if spec.get("mode") == "seeded":
        attempts.append((ImportOptions(split=tuple(spec["fractions"]), seed=spec["seed"],
                                       near_duplicate_threshold=spec["near_duplicate_threshold"], **common), False))
    attempts.append((ImportOptions(**common), True))
    for options, explicit in attempts:
        body = [{"messages": r["messages"], **({"tests": r["tests"]} if r.get("tests") is not None else {}),
                 **({"tag": r["tag"]} if r.get("tag") is not None else {}),
                 **({"split": split_of[r["example_hash"]]} if explicit else {})} for r in ordered]
        data = _jsonl(body)
        options.max_bytes = max(options.max_bytes, len(data) + 1)
        file = f"{Path(where).name} (data of {ds['source_name']})"
        checked = validate(data, file, options, count, ds.get("tokenizer"))
        if not checked.report.ok:
            raise InvalidInput(f"{where}: the bundle's data does not import here: "
                               + "; ".join(p.message for p in checked.report.errors[:5]))
        vid, content = version_id(checked.examples, checked.split_spec)
        same_split = {ex.hash: ex.split for ex in checked.examples} == split_of
        if content == ds["content_hash"] and same_split and (explicit or vid == ds["version_id"]):
            return options, data, file, count, vid
    raise InvalidInput(f"{where}: the bundle's data cannot be imported here with the same splits and content hash "
                       f"{ds['content_hash']}; import dataset version {ds['version_id']} by hand first.")


def reproduce_bundle(store: Store, jobs: Jobs, actor: User, settings: Settings, path: Path) -> str:
    """Start a new training run from a bundle's exact config (same seed); returns its job id.

    Refused, with nothing written, when the base model's files or the dataset's content differ
    from the run's. A dataset version missing here is imported from the bundle's data so that it
    lands on the same content hash and split. Library version differences do not refuse: they are
    recorded on the new run as lineage.reproduced_from."""
    from core.datasets import get_version, import_dataset
    from core.errors import NotFound
    from core.training import package_versions, start_training
    from core.training.config import TrainConfig

    require(actor, Action.JOBS_RUN)
    where = str(path)
    manifest, rows = _load(Path(path))
    run, ds = manifest["run"], manifest["dataset"]
    config = TrainConfig.from_dict(run["config"], f"{where}: run.config")
    warnings = _check_base(config, run["lineage"].get("base_model") or {})

    plan = None
    try:
        here = get_version(store, actor, ds["version_id"])
    except NotFound:
        here = None
    if here is not None and here["version_id"] != ds["version_id"]:
        here = None  # a prefix match on another version is not this one
    if here is not None:
        if here["content_hash"] != ds["content_hash"]:
            raise InvalidInput(f"dataset version {ds['version_id']}: its content hash here is {here['content_hash']}, "
                               f"the bundle's is {ds['content_hash']}; the data differs, so the run cannot be "
                               "reproduced on it.")
    elif rows is None:
        raise InvalidInput(f"dataset version {ds['version_id']} ({ds['dataset']}, content hash {ds['content_hash']}) "
                           "is not in this workspace and the bundle carries no data: export the run with its data, "
                           "or import that dataset version here first.")
    else:
        plan = _plan_import(where, manifest, rows, settings)

    recorded = run["lineage"]
    packages = _differences(recorded.get("packages") or {}, package_versions())
    if packages:
        warnings.append("package versions differ from the run's: " + ", ".join(
            f"{n} {d['bundle'] or '-'} -> {d['here'] or '-'}" for n, d in packages.items()))
    if plan is not None:
        options, data, file, count, vid = plan
        result = import_dataset(store, actor, data, file, options, count, ds.get("tokenizer"),
                                description=f"imported from the bundle of run {run['job_id']}")
        if result.version_id != vid:
            raise TuneboardError(f"dataset import landed on {result.version_id}, not the planned {vid}.")
        if vid != ds["version_id"]:
            warnings.append(f"dataset version {ds['version_id']}'s seeded split could not be re-derived here; it "
                            f"was imported with its splits fixed as {vid} (same content hash {ds['content_hash']}, "
                            "same examples in each split).")
            config = TrainConfig.from_dict({**config.to_dict(), "dataset_version": vid})
    job_id = start_training(store, jobs, actor, config, trackers=settings.tracking)
    lineage = json.loads(store.scalar("SELECT lineage FROM runs WHERE job_id = ?", [job_id]))
    lineage["reproduced_from"] = {"run_id": run["job_id"], "bundle": Path(path).name,
                                  "bundle_created_at": manifest.get("created_at"),
                                  "code": recorded.get("code"), "package_differences": packages,
                                  "dataset_imported": plan is not None, "warnings": warnings}
    with store.transaction() as cur:
        cur.execute("UPDATE runs SET lineage = ? WHERE job_id = ?", [json.dumps(lineage, sort_keys=True), job_id])
        audit.record(cur, actor, "bundle.reproduce", job_id, {"run": run["job_id"], "bundle": Path(path).name,
                                                               "dataset_imported": plan is not None})
    return job_id
