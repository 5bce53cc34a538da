"""`tuneboard regression ...`: the probe suite, its gates, checkpoint sweeps and the optional
lm-eval harness, through the API."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Optional
from urllib.parse import quote

import typer
from rich.table import Table

from cli.context import api, connection, csv_list, finish, follow_job, local_path, out
from core.errors import InvalidInput

app = typer.Typer(help="General-capability regression suite, gates, checkpoint sweeps, lm-eval.",
                  no_args_is_help=True)


def _part(value: str) -> str:
    """An id the user typed, as one segment of a path."""
    return quote(value, safe="")


def _when(value: str) -> str:
    return f"{datetime.fromisoformat(value):%Y-%m-%d %H:%M}"


@app.command("run")
def regression_run(variants: str = typer.Option(..., help="Comma-separated fine-tuned variant ids to compare with "
                                                "the base, e.g. adapter:RUN."),
                   items: Optional[int] = typer.Option(None, min=1, help="Suite items per category (default: "
                                                       "all; fewer is a quick look and the gates read "
                                                       "inconclusive)."),
                   path: str = typer.Option("auto", help="Serving path: auto, vllm-lora, vllm-merged or "
                                            "transformers."),
                   timeout: float = typer.Option(7200, help="Seconds to follow the run.")) -> None:
    """Generate the probe suite with the base and the fine-tunes (greedy), then print each gate."""
    ids = csv_list(variants)
    set_id = api().post("/regression/runs", json={"variants": ids, "items": items, "path": path})["id"]
    out.print(f"started {set_id}", markup=False)
    job = follow_job(set_id, timeout)
    finish(set_id, job)
    if job["status"] == "succeeded":
        for variant in ids:
            _print_gate(set_id, variant)


@app.command("list")
def regression_list() -> None:
    """Suite runs with their versions, and each version's newest gate."""
    listed = api().get("/regression/runs")
    table = Table("run", "name", "status", "versions", "created")
    for r in listed["runs"]:
        table.add_row(r["set_id"], r["name"], r["status"], ", ".join(v["variant_id"] for v in r["variants"]),
                      _when(r["created_at"]))
    out.print(table)
    for variant, gate in listed["latest_gates"].items():
        out.print(f"{variant}: gate {gate['verdict']} (run {gate['set_id']})", markup=False)


@app.command("gate")
def regression_gate(run: str, variant: str = typer.Option(..., help="The fine-tuned variant id.")) -> None:
    """The gate of a fine-tune against the base in a finished suite run, per category."""
    _print_gate(run, variant)


def _p(p) -> str:
    return "-" if p is None else f"{p:.3g}"


def _print_gate(set_id: str, variant: str) -> None:
    gate = api().get(f"/regression/runs/{_part(set_id)}/gate", variant=variant)
    detail = gate["detail"]
    table = Table("category", "n", "base", "fine-tune", "drop (points)", "limit", "right->wrong", "wrong->right",
                  "p (drop > limit)", "p (Holm)", "detectable drop", "verdict")
    for c in detail["categories"] + [detail["overall"]]:
        table.add_row(c["category"], str(c["n"]), f"{c['base_acc']:.3f}", f"{c['tuned_acc']:.3f}",
                      f"{c['drop_points']:+.1f}", f"{c['max_drop_points']:g}", str(c["right_to_wrong"]),
                      str(c["wrong_to_right"]), _p(c.get("p")), _p(c.get("p_adjusted")),
                      "-" if c.get("detectable_drop_points") is None else f"{c['detectable_drop_points']:.1f}",
                      c["verdict"])
    out.print(table)
    out.print(f"gate for {variant}: {gate['verdict']}", markup=False)
    for line in gate["headline"]:
        out.print(f"  {line}", markup=False)
    for line in detail["reasons"]:
        out.print(f"  {line}", markup=False)
    if detail["advice"]:
        out.print("What usually helps: " + "; ".join(detail["advice"]) + ".", markup=False)


@app.command("sweep")
def regression_sweep(run: str,
                     steps: str = typer.Option("", help="Comma-separated checkpoint steps (default: every kept one)."),
                     items: Optional[int] = typer.Option(None, help="Suite items per category (default: all; fewer "
                                                         "is quicker but the gates read inconclusive)."),
                     prompts: Optional[int] = typer.Option(None, help="Test-split prompts (default: all)."),
                     path: str = typer.Option("auto", help="Serving path: auto, vllm-lora, vllm-merged or "
                                              "transformers."),
                     timeout: float = typer.Option(7200, help="Seconds to follow the sweep.")) -> None:
    """Task score vs general score for each kept checkpoint of a run: generate, score, print the table."""
    try:
        chosen = [int(s) for s in csv_list(steps)]
    except ValueError:
        raise InvalidInput(f"--steps: {steps!r} must be comma-separated whole numbers, e.g. 20,40") from None
    record = api().post("/regression/sweeps", json={"run_id": run, "steps": chosen, "items": items,
                                                    "prompts": prompts, "path": path})
    sweep_id = record["sweep_id"]
    out.print(f"started {sweep_id}: {', '.join(record['variants'])} (suite {record['suite_set']}, test split "
              f"{record['task_set']})", markup=False)
    deadline = time.monotonic() + timeout
    for job_id in (record["suite_set"], record["task_set"]):
        if follow_job(job_id, timeout)["status"] != "succeeded":
            break
    # Then its scoring: a server's monitor starts it on its next pass; with no server, the API in this
    # process starts it when the sweep is looked at.
    while True:
        record = api().get(f"/regression/sweeps/{_part(sweep_id)}")
        if record["status"] != "scoring" or record["score_job"] or time.monotonic() > deadline:
            break
        connection().release()  # a server may start meanwhile: the next look then goes to it
        time.sleep(1)
        connection().moved()
    if record["score_job"]:
        follow_job(record["score_job"], max(1.0, deadline - time.monotonic()))
    _print_sweep(sweep_id)


@app.command("sweeps")
def regression_sweeps() -> None:
    """Checkpoint sweeps with their status."""
    table = Table("sweep", "run", "checkpoints", "status", "created")
    for s in api().get("/regression/sweeps"):
        table.add_row(s["sweep_id"], s["run_id"], ", ".join(v.rsplit("@", 1)[-1] for v in s["variants"]),
                      s["status"] + (f" ({s['why']})" if s["why"] else ""), _when(s["created_at"]))
    out.print(table)


@app.command("sweep-show")
def regression_sweep_show(sweep_id: str) -> None:
    """A finished sweep's table: per checkpoint, task metric and suite accuracy with intervals, and the gate."""
    _print_sweep(sweep_id)


def _percent(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _print_sweep(sweep_id: str) -> None:
    shown = api().get(f"/regression/sweeps/{_part(sweep_id)}/table")
    table = Table("version", "step", shown["metric"], "interval", "general", "interval", "items", "gate")
    for r in shown["rows"]:
        task = "-" if r["task"] is None else f"{r['task']:.3f}"
        spread = "-" if r["task_lo"] is None else f"[{r['task_lo']:.3f}, {r['task_hi']:.3f}]"
        general = "-" if r["general"] is None else f"{_percent(r['general'])}%"
        table.add_row(r["variant_id"], str(r["step"] or "-") + (" (best)" if r["best"] else ""), task, spread,
                      general, f"[{_percent(r['general_lo'])}, {_percent(r['general_hi'])}]", str(r["items"]),
                      r["gate"] or "-")
    out.print(table)
    if shown["advice"]:
        out.print(shown["advice"], markup=False)


@app.command("harness")
def regression_harness(variant: str = typer.Option(..., help="The variant: base, adapter:RUN or merged:RUN."),
                       tasks: str = typer.Option(..., help="Comma-separated lm-eval task names, e.g. arc_easy."),
                       limit: Optional[int] = typer.Option(None, help="Examples per task (default: all)."),
                       path: str = typer.Option("transformers", help="lm-eval backend: transformers or vllm."),
                       task_folder: Optional[Path] = typer.Option(None, help="A folder with lm-eval task YAML files "
                                                                  "of your own and their data (runs offline)."),
                       timeout: float = typer.Option(7200, help="Seconds to follow the job.")) -> None:
    """Optional: lm-evaluation-harness tasks on one variant (needs lm-eval; built-in tasks need the hub)."""
    job_id = api().post("/regression/harness", json={
        "variant": variant, "tasks": csv_list(tasks), "limit": limit, "path": path,
        "task_folder": str(local_path(task_folder).resolve()) if task_folder else None})["id"]
    out.print(f"started {job_id}", markup=False)
    job = follow_job(job_id, timeout)
    finish(job_id, job)
    table = Table("task", "metric", "value", "stderr", "n")
    for r in api().get("/regression/harness", variant=variant, job_id=job_id):
        table.add_row(r["task"], r["metric"], f"{r['value']:.4f}", "-" if r["stderr"] is None else f"{r['stderr']:.4f}",
                      str(r["n_samples"]))
    out.print(table)
