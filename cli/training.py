"""`tuneboard train` and `tuneboard runs ...`: fine-tunes and what became of them, through the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.context import api, err, finish, follow_job, out, settings
from core.errors import InvalidInput

commands = typer.Typer()
runs = typer.Typer(help="Training runs: list, show, cancel, resume, merge.", no_args_is_help=True)


@commands.command()
def train(config: Path = typer.Option(..., "--config", "-c", help="TOML file with a [train] table "
                                      "(the fields of the Train page; `tuneboard runs show` prints one)."),
          preset: Optional[str] = typer.Option(None, help="Start from a preset; the file's values override it."),
          detach: bool = typer.Option(False, help="Start the worker and return at once."),
          timeout: float = typer.Option(24 * 3600, help="Stop following after this many seconds.")) -> None:
    """Start a fine-tune from a config file and follow it (the same config the Train page builds)."""
    from core.training.config import PRESETS, TrainConfig

    if preset and preset not in PRESETS:
        raise InvalidInput(f"--preset {preset!r}: choose one of {', '.join(PRESETS)}.")
    # The file is read and checked here (its errors name the file); the server checks the values again.
    defaults = {"base_model": settings().base_model, **(PRESETS[preset].values if preset else {})}
    cfg = TrainConfig.from_toml(config, defaults)
    started = api().post("/runs", json=cfg.to_dict())
    for note in started["advice"]:
        err.print(f"note: {note}", markup=False)
    job_id = started["run_id"]
    out.print(f"started {job_id}: {started['estimate']['summary']}", markup=False)
    if detach:
        return
    job = follow_job(job_id, timeout)
    finish(job_id, job)


@runs.command("list")
def runs_list() -> None:
    """Training runs with status, best validation loss and adapter."""
    table = Table("run", "status", "method", "dataset", "best val loss", "steps", "adapter")
    for r in api().get("/runs"):
        table.add_row(r["job_id"], r["status"], r["method"], r["dataset_version"],
                      "" if r["best_eval_loss"] is None else f"{r['best_eval_loss']:.4f}",
                      "" if r["final_step"] is None else str(r["final_step"]), r["adapter_dir"] or "")
    out.print(table)


@runs.command("show")
def runs_show(run_id: str) -> None:
    """A run's status, config (as TOML for `tuneboard train`), lineage and last events."""
    run = api().get(f"/runs/{run_id}")
    out.print(f"{run_id}: {run['status']}" + (f"\n{run['error']}" if run["error"] else ""), markup=False)
    if run.get("warning"):
        out.print(f"warning: {run['warning']}", markup=False)
    out.print("[train]", markup=False)
    for key, value in run["config"].items():
        out.print(f"{key} = {json.dumps(value)}", markup=False)
    out.print("# lineage: " + json.dumps(run["lineage"], sort_keys=True), markup=False)
    last = api().get(f"/jobs/{run_id}")["last_seq"] or 0
    for e in api().get(f"/runs/{run_id}/events", after=max(0, last - 5)):
        out.print(f"# event {e['seq']} {e['type']}: " + json.dumps({k: v for k, v in e.items()
                                                                       if k not in ("seq", "at", "type")}),
                  markup=False)


@runs.command("follow")
def runs_follow(job_id: str, after: int = typer.Option(0, help="Print only events after this sequence number."),
                timeout: float = typer.Option(24 * 3600, help="Stop following after this many seconds.")) -> None:
    """Print a job's progress (training, generation, scoring) until it ends; the job is not touched."""
    finish(job_id, follow_job(job_id, timeout, after))


@runs.command("cancel")
def runs_cancel(run_id: str) -> None:
    """Stop a run after its current step, saving a checkpoint."""
    api().post(f"/runs/{run_id}/cancel")
    job = follow_job(run_id, 600)
    out.print(f"{run_id}: {job['status']}", markup=False)


@runs.command("resume")
def runs_resume(run_id: str, detach: bool = typer.Option(False, help="Return at once.")) -> None:
    """Continue a cancelled or failed run from its last checkpoint, same config."""
    api().post(f"/runs/{run_id}/resume")
    if not detach:
        job = follow_job(run_id, 24 * 3600)
        out.print(f"{run_id}: {job['status']}", markup=False)


@runs.command("merge")
def runs_merge(run_id: str, prompts: int = typer.Option(8, min=1, help="Validation prompts for the parity check.")) -> None:
    """Merge a run's adapter into a full-precision base copy, export it and check parity."""
    job_id = api().post(f"/runs/{run_id}/merge", json={"prompts": prompts})["job_id"]
    job = follow_job(job_id, 3600)
    parity = api().get(f"/jobs/{job_id}/events", type="parity")
    if job["status"] != "succeeded" or not parity:
        raise InvalidInput(f"merge {job_id} {job['status']}: {job['error'] or 'no parity result'}")
    p = parity[-1]
    verdict = "good" if p["ok"] else "FAILED parity: do not use this export"
    out.print(f"exported {job['config']['output_dir']}: {verdict} ({p['identical_greedy']}/"
              f"{p['prompts']} identical greedy outputs, max logit diff {p['max_logit_diff']:.2e})", markup=False)
    if not p["ok"]:
        raise typer.Exit(1)
