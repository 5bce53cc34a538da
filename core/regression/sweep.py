"""Checkpoint sweep: task score vs general score for each kept checkpoint of one run.

Fine-tuning longer usually buys task skill with general skill. A sweep registers each
checkpoint the run kept (`keep_checkpoints` in the training config) as a variant
(`adapter:RUN@STEP`), then starts two ordinary generation sets over the base and those
checkpoints: the probe suite (core.regression.runs) and the run's own test split. The owner
advances the sweep (`advance`, called on its monitor's tick and by the CLI's wait): once the
test-split set has finished it is scored with the dataset's metrics. `table` joins, per
checkpoint, the task's primary metric with its interval, the suite accuracy with its Wilson
interval and the checkpoint's gate against the base, so an engineer can pick an earlier
checkpoint that keeps general skills (and promote it: it is a variant like any other).
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pandas as pd

from core import audit, variants
from core.auth import Action, User, require
from core.config import Settings
from core.errors import InvalidInput, NotFound, TuneboardError
from core.jobs import ACTIVE, Jobs
from core.regression import gate as gates
from core.regression import runs as suite_runs
from core.store import Store
from core.training import get_run
from core.training.config import CHECKPOINTS

PREFIX = "checkpoint-"
_ADVANCING = threading.Lock()  # the monitor and a page may advance at once; one owner per database


def checkpoints(store: Store, actor: User, run_id: str) -> list[dict]:
    """The checkpoints a run kept on disk, by step: {step, path, best}."""
    run = get_run(store, actor, run_id)
    folder = Path(run["run_dir"], CHECKPOINTS)
    best = Path(run["best_checkpoint"]).name if run["best_checkpoint"] else None
    found = []
    for path in folder.glob(PREFIX + "*") if folder.exists() else []:
        step = path.name[len(PREFIX):]
        weights = (path / "adapter_config.json").exists() or (path / "config.json").exists()
        if step.isdigit() and weights:
            found.append({"step": int(step), "path": str(path), "best": path.name == best})
    return sorted(found, key=lambda c: c["step"])


def variant_id(run: dict, step: int) -> str:
    return f"{'merged' if run['method'] == 'full' else 'adapter'}:{run['job_id']}@{step}"


def checkpoint_variants(store: Store, actor: User, run_id: str, steps: list[int] | None = None) -> list[str]:
    """Register the run's kept checkpoints (those of `steps`, else all) as variants; returns their ids."""
    require(actor, Action.GENERATE)
    run = get_run(store, actor, run_id)
    if run["status"] in ACTIVE:
        raise InvalidInput(f"Run {run_id} is still {run['status']}: training rotates its checkpoints "
                           "(keep_checkpoints), so sweep them once it has stopped.")
    kept = checkpoints(store, actor, run_id)
    if steps:
        missing = sorted(set(steps) - {c["step"] for c in kept})
        if missing:
            raise InvalidInput(f"steps: run {run_id} kept no checkpoint at step {', '.join(map(str, missing))}; it "
                               f"kept {', '.join(str(c['step']) for c in kept) or 'none'}.")
        kept = [c for c in kept if c["step"] in steps]
    if not kept:
        raise InvalidInput(f"Run {run_id} kept no checkpoints (each is saved every eval_every steps; "
                           "keep_checkpoints says how many stay). Train with a validation split and keep_checkpoints "
                           "of 3 or more to sweep.")
    kind = "merged" if run["method"] == "full" else "adapter"
    ids = []
    with store.transaction() as cur:
        for c in kept:
            vid = variant_id(run, c["step"])
            detail = {"run_id": run_id, "step": c["step"], "checkpoint": True, "best": c["best"],
                      "dataset_version": run["dataset_version"]}
            variants.register(cur, vid, kind, f"{run_id} @ step {c['step']}", c["path"], run["base_model"],
                              job_id=run_id, detail=detail)
            ids.append(vid)
    return ids


def start_sweep(store: Store, jobs: Jobs, settings: Settings, actor: User, run_id: str,
                steps: list[int] | None = None, items_per_category: int | None = None,
                task_prompts: int | None = None, path: str = "auto") -> str:
    """The suite and the run's test split, answered by the base and the run's checkpoints; returns the sweep id.
    `items_per_category` keeps the suite short (gates then read inconclusive); `task_prompts` caps the split."""
    from core.serving import GenerationSpec, generate, prompts_from_version

    require(actor, Action.GENERATE)
    run = get_run(store, actor, run_id)
    if run["base_model"] != settings.base_model:
        raise InvalidInput(f"Run {run_id} fine-tuned {run['base_model']}, but the dashboard serves "
                           f"{settings.base_model}; sweep it with that base configured.")
    for name, value in (("items_per_category", items_per_category), ("task_prompts", task_prompts)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidInput(f"{name}: {value!r} must be a whole number of at least 1 (or empty for all).")
    prompts, source = prompts_from_version(store, actor, run["dataset_version"], "test", limit=task_prompts)
    variants = checkpoint_variants(store, actor, run_id, steps)
    sweep_id = f"sweep-{uuid.uuid4().hex[:10]}"
    suite_set = suite_runs.start_run(store, jobs, settings, actor, variants, name=f"sweep of {run_id}: suite",
                                     path=path, limit=items_per_category)
    try:
        task_set = generate(store, jobs, settings, actor,
                            GenerationSpec(f"sweep of {run_id}: test split", ["base"] + variants, prompts,
                                           {**source, "sweep": sweep_id}, path=path))
    except Exception:
        jobs.cancel(actor, suite_set)  # nothing half-started
        raise
    with store.transaction() as cur:
        cur.execute("INSERT INTO checkpoint_sweeps (sweep_id, run_id, variants, suite_set, task_set, created_by) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [sweep_id, run_id, json.dumps(variants), suite_set, task_set,
                                                  actor.username])
        audit.record(cur, actor, "sweep.start", sweep_id, {"run": run_id, "variants": variants})
    return sweep_id


def advance(store: Store, jobs: Jobs, settings: Settings) -> list[str]:
    """Score each sweep's finished test-split set, once (the owner calls this on its tick). Returns the
    score jobs started."""
    with _ADVANCING:
        return _advance(store, jobs, settings)


def _advance(store: Store, jobs: Jobs, settings: Settings) -> list[str]:
    from core.metrics.scoring import start_scoring
    from core.users import acting_user

    started = []
    for sweep in store.rows("""SELECT s.* FROM checkpoint_sweeps s JOIN jobs j ON j.job_id = s.task_set
                               WHERE s.score_job IS NULL AND s.error IS NULL AND j.status = 'succeeded'"""):
        actor = acting_user(store, sweep["created_by"])
        try:
            if actor is None:
                raise InvalidInput(f"{sweep['created_by']} (who started the sweep) no longer has an active account")
            job_id = start_scoring(store, jobs, actor, sweep["task_set"], settings=settings.metrics)
        except TuneboardError as exc:  # a person must act (e.g. declare metrics that fit): kept on the sweep
            store.execute("UPDATE checkpoint_sweeps SET error = ? WHERE sweep_id = ?",
                          [f"scoring the test split could not start: {exc}", sweep["sweep_id"]])
            continue
        store.execute("UPDATE checkpoint_sweeps SET score_job = ? WHERE sweep_id = ?", [job_id, sweep["sweep_id"]])
        started.append(job_id)
    return started


def retry_scoring(store: Store, jobs: Jobs, settings: Settings, actor: User, sweep_id: str) -> str:
    """Score a sweep's finished test split now, as `actor` (after scoring failed or could not start)."""
    from core.metrics.scoring import start_scoring

    sweep = get_sweep(store, actor, sweep_id)
    if sweep["task_status"] != "succeeded":
        raise InvalidInput(f"Sweep {sweep_id}: its test split is {sweep['task_status']}; resume it on the "
                           "Generations page first.")
    if sweep["score_status"] in ACTIVE:
        raise InvalidInput(f"Sweep {sweep_id} is being scored ({sweep['score_job']}).")
    job_id = start_scoring(store, jobs, actor, sweep["task_set"], settings=settings.metrics)
    store.execute("UPDATE checkpoint_sweeps SET score_job = ?, error = NULL WHERE sweep_id = ?", [job_id, sweep_id])
    return job_id


def sweeps(store: Store, actor: User, run_id: str | None = None) -> list[dict]:
    """Sweeps, newest first, each with a `status`: running, scoring, ready, failed (and why)."""
    require(actor, Action.METRICS_VIEW)
    rows = store.rows("""SELECT s.*, a.status AS suite_status, b.status AS task_status, c.status AS score_status
                         FROM checkpoint_sweeps s JOIN jobs a ON a.job_id = s.suite_set
                         JOIN jobs b ON b.job_id = s.task_set LEFT JOIN jobs c ON c.job_id = s.score_job
                         WHERE ? IS NULL OR s.run_id = ? ORDER BY s.created_at DESC""", [run_id, run_id])
    for r in rows:
        r["variants"] = json.loads(r["variants"])
        states = [r["suite_status"], r["task_status"], r["score_status"]]
        broken = [s for s in states if s in ("failed", "cancelled")]
        if r["error"] or broken:
            r["status"] = "failed"
            r["why"] = r["error"] or (f"a job {broken[0]}: resume it on the Generations page (or the score on the "
                                      "Metrics page)")
        elif r["suite_status"] in ACTIVE or r["task_status"] in ACTIVE:
            r["status"], r["why"] = "running", "generating the suite and the test split"
        elif r["score_status"] in ACTIVE or r["score_status"] is None:
            r["status"], r["why"] = "scoring", "scoring the test split"
        else:
            r["status"], r["why"] = "ready", ""
    return rows


def get_sweep(store: Store, actor: User, sweep_id: str) -> dict:
    found = [s for s in sweeps(store, actor) if s["sweep_id"] == sweep_id]
    if not found:
        raise NotFound(f"No checkpoint sweep {sweep_id!r}; see `tuneboard regression sweeps`.")
    return found[0]


def table(store: Store, actor: User, settings: Settings, sweep_id: str) -> pd.DataFrame:
    """One row per version (base first, then checkpoints by step): task metric with its interval,
    suite accuracy with its Wilson interval, and each checkpoint's gate against the base."""
    from core.metrics import results

    sweep = get_sweep(store, actor, sweep_id)
    if sweep["status"] != "ready":
        raise InvalidInput(f"Sweep {sweep_id} is {sweep['status']}" + (f": {sweep['why']}" if sweep["why"] else "")
                           + ".")
    res = results.latest(store, actor, sweep["task_set"], settings.metrics)
    if res is None:
        raise InvalidInput(f"Sweep {sweep_id}: its test split has no scores yet.")
    metric = res.primary
    task = res.summary[res.summary["metric"] == metric].set_index("variant")
    frame = suite_runs.outcomes(store, actor, sweep["suite_set"])
    general = frame.groupby("variant_id")["correct"].agg(["sum", "count"])
    details = {v["variant_id"]: variants.detail(v) for v in variants.rows_by_id(store, sweep["variants"])}
    level = settings.regression.confidence
    out = []
    for vid in ["base"] + sweep["variants"]:
        right, n = (int(general.loc[vid, "sum"]), int(general.loc[vid, "count"])) if vid in general.index else (0, 0)
        lo, hi = gates.wilson(right, n, level)
        gate = None if vid == "base" else suite_runs.judge(store, actor, sweep["suite_set"], vid, settings.regression)
        info = details.get(vid, {})
        out.append({"variant_id": vid, "step": info.get("step", 0), "best": bool(info.get("best")),
                    "metric": metric, "task": task.loc[vid, "mean"] if vid in task.index else None,
                    "task_lo": task.loc[vid, "lo"] if vid in task.index else None,
                    "task_hi": task.loc[vid, "hi"] if vid in task.index else None,
                    "general": right / n if n else None, "general_lo": lo, "general_hi": hi, "items": n,
                    "gate": gate["verdict"] if gate else "", "gate_id": gate["gate_id"] if gate else None})
    return pd.DataFrame(out)


def advice(frame: pd.DataFrame) -> str:
    """Which checkpoint keeps general skills best among those the gate lets through, in one sentence."""
    tuned = frame[frame["variant_id"] != "base"]
    if tuned.empty:
        return ""
    passing = tuned[tuned["gate"] == "pass"]
    if passing.empty and (tuned["gate"] == "fail").all():
        return ("No checkpoint passes the gate against the base: an earlier checkpoint does not help here; try a "
                "lower rank, fewer epochs or mixing general data into training.")
    if passing.empty:
        general = tuned.sort_values("general", ascending=False, na_position="last").iloc[0]
        task = tuned.sort_values("task", ascending=False, na_position="last").iloc[0]
        return (f"No gate is conclusive yet ({int(general['items'])} suite items per version: too few, or drops "
                f"that are not significant). Step {general['step']} keeps the most general skill "
                f"({100 * general['general']:.1f}%)"
                + (" and" if task["step"] == general["step"] else f", step {task['step']}")
                + f" has the best task score ({task['metric']} {task['task']:.3f}); sweep the whole suite to decide.")
    top = passing.sort_values(["task", "general"], ascending=False, na_position="last").iloc[0]
    return (f"Step {top['step']} has the best task score ({top['metric']} {top['task']:.3f}) of the checkpoints "
            f"that pass the gate (general {100 * top['general']:.1f}%); promote {top['variant_id']} to use it.")
