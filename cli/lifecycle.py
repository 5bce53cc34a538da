"""`tuneboard promote`, `rollback`, `deploy`, `bundle`, `reproduce` and `retrain ...`: the promoted
version of each task, its deployment, run records, retraining pipelines and their schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.context import (POLL_S, csv_list, finish, follow, hand_over, out, owner, release, served, settings,
                         store)
from core.auth import CLI_USER
from core.errors import InvalidInput

commands = typer.Typer()
retrain = typer.Typer(help="Retrain a task: now, or on a schedule; candidates and decisions.", no_args_is_help=True)


@commands.command("promote")
def promote(variant: str, reason: str = typer.Option(..., help="Why (kept on record; 15+ characters)."),
            override: bool = typer.Option(False, help="Promote although the newest gate did not pass."),
            task: str = typer.Option("", help="The task (dataset) it serves; default: the one it was trained on.")
            ) -> None:
    """Make a version the promoted one of its task: its newest gate must pass, or --override; always a --reason."""
    from core.lifecycle import promotion

    promotion_id = promotion.promote(store(), CLI_USER, variant, reason, override, task=task or None)
    out.print(f"promoted {variant} ({promotion_id})", markup=False)


@commands.command("rollback")
def rollback(task: str, reason: str = typer.Option(..., help="Why (kept on record; 15+ characters).")) -> None:
    """Return a task to the version promoted before the current one."""
    from core.lifecycle import promotion

    promotion.rollback(store(), CLI_USER, task, reason)
    out.print(f"{task}: promoted version is now {promotion.current(store(), CLI_USER, task)}", markup=False)


def _options(test_prompts: int, suite_items: int, raters_per_pair: int, path: str):
    from core.lifecycle.pipelines import PipelineOptions

    return PipelineOptions(test_prompts=test_prompts, suite_items=suite_items, raters_per_pair=raters_per_pair,
                           path=path)


TEST_PROMPTS = typer.Option(0, help="Test-split prompts (0: all).")
SUITE_ITEMS = typer.Option(0, help="Suite items per category (0: all; a gate needs enough).")
RATERS = typer.Option(3, help="Raters per pair of the blind pair set.")
PATH = typer.Option("auto", help="Serving path: auto, vllm-lora, vllm-merged or transformers.")


@retrain.command("now")
def retrain_now(task: str, test_prompts: int = TEST_PROMPTS, suite_items: int = SUITE_ITEMS,
                raters_per_pair: int = RATERS, path: str = PATH,
                timeout: float = typer.Option(14400, help="Seconds to follow the pipeline.")) -> None:
    """Retrain a task now with its promoted config on its newest data, measure the candidate, and wait."""
    from core.lifecycle import pipelines

    o = owner()
    pid = pipelines.start_pipeline(o.store, o.jobs, settings(), CLI_USER, task,
                                   _options(test_prompts, suite_items, raters_per_pair, path))
    out.print(f"started {pid}", markup=False)
    _follow_pipeline(pid, timeout)
    _print_candidate(pid)


@retrain.command("follow")
def retrain_follow(pipeline: str, timeout: float = typer.Option(14400, help="Seconds to follow the pipeline.")) -> None:
    """Print a pipeline's progress until it ends, then its candidate beside the promoted version."""
    _follow_pipeline(pipeline, timeout)
    _print_candidate(pipeline)


def _follow_pipeline(pid: str, timeout: float) -> None:
    """A pipeline's progress, a line per change. Inside the server only watched (its monitor drives
    it). Alone, this command drives it (ingest, advance) holding the database a moment every
    POLL_S seconds, so `serve` can start meanwhile; then the rest is followed through the server."""
    import time

    from core.jobs import Jobs
    from core.lifecycle import pipelines
    from core.owner import training_launchers
    from core.store import open_store

    last = [""]

    def show(p: dict) -> None:
        if p["why"] != last[0]:
            out.print(f"{pid}: {p['status']}: {p['why']}", markup=False)
            last[0] = p["why"]

    if served():
        o = owner()
        for p in pipelines.follow(o.store, o.jobs, settings(), CLI_USER, pid, timeout, drive=False):
            show(p)
        return
    release()
    deadline = time.monotonic() + timeout
    while True:
        s = open_store(settings())
        try:
            jobs = Jobs(s, settings().runs_dir, launchers=training_launchers(settings()))
            jobs.reconcile()
            pipelines.advance(s, jobs, settings())
            p = pipelines.get_pipeline(s, CLI_USER, pid)
        finally:
            s.close()
        show(p)
        if p["status"] != "running" or time.monotonic() > deadline:
            return
        time.sleep(POLL_S)
        hand_over(["retrain", "follow", pid, "--timeout", str(max(1.0, deadline - time.monotonic()))],
                  "the pipeline")


@retrain.command("schedule")
def retrain_schedule(task: str, name: str = typer.Option("", help="A name (default: the task and when)."),
                     every_hours: Optional[float] = typer.Option(None, help="Fire every N hours (168: weekly)."),
                     cron: str = typer.Option("", help="Fire on a cron expression, UTC (e.g. '0 3 * * 1')."),
                     on_new_data: bool = typer.Option(False, help="Fire when a new data version is imported."),
                     test_prompts: int = TEST_PROMPTS, suite_items: int = SUITE_ITEMS,
                     raters_per_pair: int = RATERS, path: str = PATH) -> None:
    """Schedule unattended retraining of a task (fires on the server's monitor, no browser needed)."""
    from core.lifecycle import schedules

    chosen = [t for t, on in (("interval", every_hours is not None), ("cron", bool(cron)), ("new_data", on_new_data))
              if on]
    if len(chosen) != 1:
        raise InvalidInput("when: give exactly one of --every-hours N, --cron EXPR or --on-new-data.")
    spec = {"interval": str(every_hours), "cron": cron, "new_data": ""}[chosen[0]]
    sid = schedules.create_schedule(store(), CLI_USER, name or f"{task} ({chosen[0]})", task, chosen[0], spec,
                                    _options(test_prompts, suite_items, raters_per_pair, path))
    s = schedules.get_schedule(store(), CLI_USER, sid)
    nxt = f", next {s['next_run_at']:%Y-%m-%d %H:%M} UTC" if s["next_run_at"] else ""
    out.print(f"created {sid}: {task} {s['describe']}{nxt}", markup=False)


@retrain.command("schedules")
def retrain_schedules() -> None:
    """Schedules with their next firing, and the latest firings."""
    from core.lifecycle import schedules

    table = Table("schedule", "name", "task", "when", "next (UTC)", "enabled", "by")
    for s in schedules.schedules(store(), CLI_USER):
        table.add_row(s["schedule_id"], s["name"], s["task"], s["describe"],
                      f"{s['next_run_at']:%Y-%m-%d %H:%M}" if s["next_run_at"] else "-", str(s["enabled"]),
                      s["created_by"])
    out.print(table)
    for e in schedules.events(store(), CLI_USER, limit=10):
        out.print(f"{e['fired_at']:%Y-%m-%d %H:%M} {e['schedule_id']} {e['outcome']} {e['pipeline_id'] or ''} "
                  f"{e['note']}", markup=False)


@retrain.command("pause")
def retrain_pause(schedule: str, resume: bool = typer.Option(False, help="Resume instead.")) -> None:
    """Pause (or --resume) a schedule."""
    from core.lifecycle import schedules

    schedules.set_enabled(store(), CLI_USER, schedule, resume)
    out.print(f"{schedule}: {'resumed' if resume else 'paused'}", markup=False)


@retrain.command("list")
def retrain_list() -> None:
    """Pipelines, newest first."""
    from core.lifecycle import pipelines

    table = Table("pipeline", "task", "status", "candidate", "data version", "why")
    for p in pipelines.pipelines(store(), CLI_USER):
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
    from core.lifecycle import pipelines

    if promote == dismiss:
        raise InvalidInput("decision: give exactly one of --promote or --dismiss.")
    pipelines.decide(store(), CLI_USER, pipeline, "promoted" if promote else "dismissed", reason, override)
    out.print(f"{pipeline}: candidate {'promoted' if promote else 'dismissed'}", markup=False)


def _print_candidate(pipeline_id: str) -> None:
    from core.lifecycle import pipelines

    p = pipelines.get_pipeline(store(), CLI_USER, pipeline_id)
    out.print(f"{p['pipeline_id']} ({p['task']}, data {p['dataset_version']}): {p['status']}: {p['why']}", markup=False)
    if p["status"] not in ("ready", "promoted", "dismissed"):
        return
    shown = pipelines.summary(store(), CLI_USER, settings(), p)
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
           no_copy: bool = typer.Option(False, help="Reference the weights where they are instead of copying.")) -> None:
    """Write what production needs for the promoted versions: weights, serve.sh (the vLLM command), a manifest."""
    from core.lifecycle import deploy as deployment

    chosen = csv_list(tasks) or None
    plan = deployment.plan(store(), CLI_USER, settings(), chosen, mode, tensor_parallel, pipeline_parallel)
    for v in plan.versions.values():
        out.print(f"{v['task']}: {v['variant_id']} (gate {v.get('gate_verdict') or 'none'}) served as "
                  f"'{v['served_name']}'", markup=False)
    for problem in plan.problems:
        out.print(f"problem: {problem}", markup=False)
    for c in plan.commands:
        out.print(c["shell"], markup=False)
    if dry_run or plan.problems:
        if plan.problems:
            raise InvalidInput("deploy: fix the problems above first; nothing was written.")
        return
    written = deployment.write(store(), CLI_USER, settings(), folder, chosen, mode, not no_copy, tensor_parallel,
                               pipeline_parallel)
    out.print(f"wrote {len(written)} files to {folder} (run {folder / 'serve.sh'})", markup=False)


@commands.command("bundle")
def bundle(run: str, out_path: Path = typer.Option(Path("."), "--out", help="A .zip path or a folder."),
           no_data: bool = typer.Option(False, help="Leave the dataset version's rows out (the manifest stays).")
           ) -> None:
    """Export a run's complete record (config, data manifest and rows, packages, metrics, gates, review
    results, promotions) as one zip that `tuneboard reproduce` re-runs."""
    from core.lifecycle.bundle import export_bundle

    path = export_bundle(store(), CLI_USER, settings(), run, out_path, include_data=not no_data)
    out.print(f"wrote {path}", markup=False)


@commands.command("reproduce")
def reproduce(path: Path, detach: bool = typer.Option(False, help="Return once the run has started.")) -> None:
    """Re-run a run from its bundle: same data (imported if missing), base files, config and seed."""
    from core.lifecycle.bundle import reproduce_bundle
    from core.training import get_run

    o = owner()
    job_id = reproduce_bundle(o.store, o.jobs, CLI_USER, settings(), path)
    notes = get_run(o.store, CLI_USER, job_id)["lineage"].get("reproduced_from", {})
    for warning in notes.get("warnings", []):
        out.print(f"note: {warning}", markup=False)
    for name, versions in notes.get("package_differences", {}).items():
        out.print(f"note: {name} {versions['bundle']} in the bundle, {versions['here']} here", markup=False)
    out.print(f"started {job_id}", markup=False)
    if not detach:
        job = follow(job_id, 24 * 3600)
        finish(job_id, job)
