"""`tuneboard promote`, `rollback`, `deploy`, `bundle`, `reproduce` and `retrain ...`: the promoted
version of each task, its deployment, run records, retraining pipelines and their schedules (through the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.context import api, csv_list, err, finish, follow_job, out
from core.errors import InvalidInput
from core.lifecycle.progress import readable_bytes

commands = typer.Typer()
retrain = typer.Typer(help="Retrain a task: now, or on a schedule; candidates and decisions.", no_args_is_help=True)


@commands.command("promote")
def promote(variant: str, reason: str = typer.Option(..., help="Why (kept on record; 15+ characters)."),
            override: bool = typer.Option(False, help="Promote although the newest gate did not pass."),
            task: str = typer.Option("", help="The task (dataset) it serves; default: the one it was trained on.")
            ) -> None:
    """Make a version the promoted one of its task: its newest gate must pass, or --override; always a --reason."""
    done = api().post("/promotions", json={"variant": variant, "reason": reason, "override": override,
                                           "task": task or None})
    out.print(f"promoted {variant} ({done['promotion_id']})", markup=False)


@commands.command("rollback")
def rollback(task: str, reason: str = typer.Option(..., help="Why (kept on record; 15+ characters).")) -> None:
    """Return a task to the version promoted before the current one."""
    done = api().post("/promotions/rollback", json={"task": task, "reason": reason})
    out.print(f"{task}: promoted version is now {done['current']}", markup=False)


def _options(test_prompts: int, suite_items: int, raters_per_pair: int, path: str) -> dict:
    return {"test_prompts": test_prompts, "suite_items": suite_items, "raters_per_pair": raters_per_pair, "path": path}


TEST_PROMPTS = typer.Option(0, help="Test-split prompts (0: all).")
SUITE_ITEMS = typer.Option(0, help="Suite items per category (0: all; a gate needs enough).")
RATERS = typer.Option(3, help="Raters per pair of the blind pair set.")
PATH = typer.Option("auto", help="Serving path: auto, vllm-lora, vllm-merged or transformers.")


@retrain.command("now")
def retrain_now(task: str, test_prompts: int = TEST_PROMPTS, suite_items: int = SUITE_ITEMS,
                raters_per_pair: int = RATERS, path: str = PATH,
                timeout: float = typer.Option(14400, help="Seconds to follow the pipeline.")) -> None:
    """Retrain a task now with its promoted config on its newest data, measure the candidate, and wait."""
    pid = api().post("/pipelines", json={"task": task, **_options(test_prompts, suite_items, raters_per_pair,
                                                                   path)})["id"]
    out.print(f"started {pid}", markup=False)
    _follow_pipeline(pid, timeout)
    _print_candidate(pid)


@retrain.command("follow")
def retrain_follow(pipeline: str, timeout: float = typer.Option(14400, help="Seconds to follow the pipeline.")) -> None:
    """Print a pipeline's progress until it ends, then its candidate beside the promoted version."""
    _follow_pipeline(pipeline, timeout)
    _print_candidate(pipeline)


def _follow_pipeline(pid: str, timeout: float) -> None:
    """A pipeline's progress, a line per change. A server's monitor drives it; a command on its own
    drives it each time it looks (cli/api.py), letting the database go in between."""
    import time

    from cli.context import POLL_S, connection

    c, last, deadline = connection(), "", time.monotonic() + timeout
    while True:
        p = c.client.get(f"/pipelines/{pid}")["pipeline"]
        if p["why"] != last:
            out.print(f"{pid}: {p['status']}: {p['why']}", markup=False)
            last = p["why"]
        if p["status"] != "running" or time.monotonic() > deadline:
            return
        c.release()
        time.sleep(POLL_S)
        if c.moved():
            out.print("a tuneboard server started for this workspace: following the pipeline through it",
                      markup=False)


@retrain.command("schedule")
def retrain_schedule(task: str, name: str = typer.Option("", help="A name (default: the task and when)."),
                     every_hours: Optional[float] = typer.Option(None, help="Fire every N hours (168: weekly)."),
                     cron: str = typer.Option("", help="Fire on a cron expression, UTC (e.g. '0 3 * * 1')."),
                     on_new_data: bool = typer.Option(False, help="Fire when a new data version is imported."),
                     test_prompts: int = TEST_PROMPTS, suite_items: int = SUITE_ITEMS,
                     raters_per_pair: int = RATERS, path: str = PATH) -> None:
    """Schedule unattended retraining of a task (fires on the server's monitor, no browser needed)."""
    chosen = [t for t, on in (("interval", every_hours is not None), ("cron", bool(cron)), ("new_data", on_new_data))
              if on]
    if len(chosen) != 1:
        raise InvalidInput("when: give exactly one of --every-hours N, --cron EXPR or --on-new-data.")
    spec = {"interval": str(every_hours), "cron": cron, "new_data": ""}[chosen[0]]
    s = api().post("/schedules", json={"task": task, "name": name or f"{task} ({chosen[0]})", "trigger": chosen[0],
                                       "spec": spec, **_options(test_prompts, suite_items, raters_per_pair, path)})
    nxt = f", next {_minute(s['next_run_at'])} UTC" if s["next_run_at"] else ""
    out.print(f"created {s['schedule_id']}: {task} {s['describe']}{nxt}", markup=False)


def _minute(stamp: str) -> str:
    """An ISO time of the API as the tables show it: 2026-12-06 16:40."""
    return stamp.replace("T", " ")[:16]


@retrain.command("schedules")
def retrain_schedules() -> None:
    """Schedules with their next firing, and the latest firings."""
    listed = api().get("/schedules")
    table = Table("schedule", "name", "task", "when", "next (UTC)", "enabled", "by")
    for s in listed["schedules"]:
        table.add_row(s["schedule_id"], s["name"], s["task"], s["describe"],
                      _minute(s["next_run_at"]) if s["next_run_at"] else "-", str(s["enabled"]), s["created_by"])
    out.print(table)
    for e in listed["events"][:10]:
        out.print(f"{_minute(e['fired_at'])} {e['schedule_id']} {e['outcome']} {e['pipeline_id'] or ''} "
                  f"{e['note']}", markup=False)


@retrain.command("pause")
def retrain_pause(schedule: str, resume: bool = typer.Option(False, help="Resume instead.")) -> None:
    """Pause (or --resume) a schedule."""
    api().post(f"/schedules/{schedule}/{'resume' if resume else 'pause'}")
    out.print(f"{schedule}: {'resumed' if resume else 'paused'}", markup=False)


@retrain.command("list")
def retrain_list() -> None:
    """Pipelines, newest first."""
    table = Table("pipeline", "task", "status", "candidate", "data version", "why")
    for p in api().get("/pipelines"):
        table.add_row(p["pipeline_id"], p["task"], p["status"], p["candidate"] or "-", p["dataset_version"], p["why"])
    out.print(table)


@retrain.command("show")
def retrain_show(pipeline: str) -> None:
    """A pipeline's candidate beside the promoted version: task metric, gate, blind pairs."""
    _print_candidate(pipeline)


@retrain.command("decide")
def retrain_decide(pipeline: str, reason: str = typer.Option(..., help="Why (kept on record; 15+ characters)."),
                   promote: bool = typer.Option(False, "--promote", help="Promote the candidate."),
                   dismiss: bool = typer.Option(False, "--dismiss", help="Dismiss the candidate."),
                   override: bool = typer.Option(False, help="Promote although its gate did not pass.")) -> None:
    """Promote or dismiss a pipeline's candidate."""
    if promote == dismiss:
        raise InvalidInput("decision: give exactly one of --promote or --dismiss.")
    api().post(f"/pipelines/{pipeline}/decision", json={"decision": "promoted" if promote else "dismissed",
                                                        "reason": reason, "override": override})
    out.print(f"{pipeline}: candidate {'promoted' if promote else 'dismissed'}", markup=False)


def _print_candidate(pipeline_id: str) -> None:
    shown = api().get(f"/pipelines/{pipeline_id}")
    p = shown["pipeline"]
    out.print(f"{p['pipeline_id']} ({p['task']}, data {p['dataset_version']}): {p['status']}: {p['why']}", markup=False)
    if p["status"] not in ("ready", "promoted", "dismissed") or not shown["summary"]:
        return
    shown = shown["summary"]
    table = Table("version", "role", shown["metric"] or "metric", "interval", "n")
    role = {p["candidate"]: "candidate", p["promoted"]: "promoted", "base": "base"}
    for s in shown["scores"]:
        table.add_row(s["variant"], role.get(s["variant"], "contender"), f"{s['mean']:.3f}",
                      f"[{s['lo']:.3f}, {s['hi']:.3f}]", str(s["n"]))
    out.print(table)
    if shown["gate"]:
        g = shown["gate"]
        out.print(f"gate {g['verdict']}: base {100 * g['base_acc']:.1f}% -> candidate {100 * g['tuned_acc']:.1f}%",
                  markup=False)
    out.print(f"pair set {p['pair_set']}: {shown['pairs']} pairs, {shown['votes']} votes", markup=False)


def _progress(ended: dict):
    """Prints a deploy or bundle job's progress (stage, bytes done of total); keeps its final event in `ended`."""
    def show(e: dict) -> None:
        if e["type"] == "progress":
            share = f" ({100 * e['done'] / e['total']:.0f}%)" if e["total"] else ""
            done, total = readable_bytes(e["done"]), readable_bytes(e["total"])
            out.print(f"{e['stage']}: {done} of {total}{share}", markup=False)
        elif e["type"] in ("finished", "failed", "cancelled"):
            ended.update(e)
    return show


def _followed(job_id: str, timeout: float) -> dict:
    """Follow a deploy or bundle job with its progress; its `finished` event, or exit 1 with why it did not
    finish (a job still running when `timeout` ran out goes on: `runs follow` picks it up again)."""
    ended: dict = {}
    job = follow_job(job_id, timeout, show=_progress(ended))
    if job["status"] in ("queued", "running"):
        raise typer.Exit(0)
    if job["status"] != "succeeded":
        err.print(f"error: {job_id} {job['status']}: {job['error'] or ended.get('note') or 'no reason given'}",
                  markup=False)
        raise typer.Exit(1)
    return ended


TIMEOUT = typer.Option(3600, help="Seconds to follow the job (it goes on after that).")
DETACH = typer.Option(False, help="Start the job and return at once (follow it with `tuneboard runs follow JOB`).")


@commands.command("deploy")
def deploy(folder: Path = typer.Option(Path("deployment"), "--out", help="Folder to write (replaced if it holds an "
                                     "earlier deployment)."),
           tasks: str = typer.Option("", help="Comma-separated tasks (default: every task with a promoted version)."),
           mode: str = typer.Option("adapters", help="adapters: the base + LoRA adapters on one multi-LoRA engine; "
                                    "merged: each version as a merged full model."),
           tensor_parallel: Optional[int] = typer.Option(None, help="GPUs of one node per engine (vLLM "
                                                         "--tensor-parallel-size)."),
           pipeline_parallel: Optional[int] = typer.Option(None, help="Nodes per engine (vLLM "
                                                           "--pipeline-parallel-size, over Ray)."),
           dry_run: bool = typer.Option(False, help="Print the plan and the vLLM command; write nothing."),
           no_copy: bool = typer.Option(False, help="Reference the weights where they are instead of copying."),
           detach: bool = DETACH, timeout: float = TIMEOUT) -> None:
    """Write what production needs for the promoted versions: weights, serve.sh (the vLLM command), a manifest.
    A job copies and hashes the weights (its progress is printed); the folder appears whole or not at all."""
    chosen = csv_list(tasks)
    query = {"tasks": chosen, "mode": mode, "tensor_parallel": tensor_parallel, "pipeline_parallel": pipeline_parallel}
    plan = api().get("/deploy/plan", **{k: v for k, v in query.items() if v not in (None, [])})
    for v in plan["versions"].values():
        out.print(f"{v['task']}: {v['variant_id']} (gate {v.get('gate_verdict') or 'none'}) served as "
                  f"'{v['served_name']}'", markup=False)
    for problem in plan["problems"]:
        out.print(f"problem: {problem}", markup=False)
    for c in plan["commands"]:
        out.print(c["shell"], markup=False)
    if dry_run or plan["problems"]:
        if plan["problems"]:
            raise InvalidInput("deploy: fix the problems above first; nothing was written.")
        return
    target = folder.expanduser().resolve()  # the server runs on this machine: the folder as this shell means it
    job_id = api().post("/deploy", json={"out_dir": str(target), "tasks": chosen, "mode": mode,
                                         "tensor_parallel": tensor_parallel, "pipeline_parallel": pipeline_parallel,
                                         "copy_weights": not no_copy})["job_id"]
    out.print(f"started {job_id}: writing the deployment to {folder}", markup=False)
    if detach:
        return
    _followed(job_id, timeout)
    done = api().get(f"/deploy/jobs/{job_id}")["result"]
    out.print(f"wrote {len(done['files'])} files to {done['out_dir']} (run {done['script']})", markup=False)


@commands.command("bundle")
def bundle(run: str, out_path: Path = typer.Option(Path("."), "--out", help="A .zip path or a folder."),
           no_data: bool = typer.Option(False, help="Leave the dataset version's rows out (the manifest stays)."),
           detach: bool = DETACH, timeout: float = TIMEOUT) -> None:
    """Export a run's complete record (config, data manifest and rows, packages, metrics, gates, review
    results, promotions) as one zip that `tuneboard reproduce` re-runs. A job writes it (its progress is
    printed); the zip appears whole or not at all."""
    target = out_path.expanduser().resolve()
    target = target / f"{run}.zip" if target.is_dir() else target
    there = next(p for p in target.parents if p.exists())
    if not there.is_dir():
        raise InvalidInput(f"--out: {there} is a file; give a folder, or a .zip path inside one.")
    job_id = api().post("/bundles", json={"run_id": run, "data": not no_data})["job_id"]
    out.print(f"started {job_id}: the run record of {run}", markup=False)
    if detach:
        out.print(f"download it when it is done: GET /api/v1/bundles/jobs/{job_id}/zip", markup=False)
        return
    _followed(job_id, timeout)
    target.parent.mkdir(parents=True, exist_ok=True)
    api().download(f"/bundles/jobs/{job_id}/zip", target)
    out.print(f"wrote {target} ({readable_bytes(target.stat().st_size)})", markup=False)


@commands.command("reproduce")
def reproduce(path: Path, detach: bool = typer.Option(False, help="Return once the run has started.")) -> None:
    """Re-run a run from its bundle: same data (imported if missing), base files, config and seed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror}).") from None
    job_id = api().post("/bundles/reproduce", content=data, params={"filename": path.name},
                        headers={"Content-Type": "application/zip"})["id"]
    notes = api().get(f"/runs/{job_id}")["lineage"].get("reproduced_from", {})
    for warning in notes.get("warnings", []):
        out.print(f"note: {warning}", markup=False)
    for name, versions in notes.get("package_differences", {}).items():
        out.print(f"note: {name} {versions['bundle']} in the bundle, {versions['here']} here", markup=False)
    out.print(f"started {job_id}", markup=False)
    if not detach:
        job = follow_job(job_id, 24 * 3600)
        finish(job_id, job)
