"""`tuneboard regression ...`: the probe suite, its gates, checkpoint sweeps and the optional
lm-eval harness."""

from __future__ import annotations

import time
from typing import Optional

import typer
from rich.table import Table

from cli.context import csv_list, finish, follow, out, owner, served, settings, store
from core.auth import CLI_USER
from core.errors import InvalidInput

app = typer.Typer(help="General-capability regression suite, gates, checkpoint sweeps, lm-eval.",
                  no_args_is_help=True)


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
    from core.regression import runs

    o = owner()
    ids = csv_list(variants)
    set_id = runs.start_run(o.store, o.jobs, settings(), CLI_USER, ids, path=path, limit=items)
    out.print(f"started {set_id}", markup=False)
    job = follow(set_id, timeout)
    finish(set_id, job)
    if job["status"] == "succeeded":
        for variant in ids:
            _print_gate(set_id, variant)


@app.command("list")
def regression_list() -> None:
    """Suite runs with their versions, and each version's newest gate."""
    from core.regression import runs

    table = Table("run", "name", "status", "versions", "created")
    for r in runs.runs(store(), CLI_USER):
        table.add_row(r["set_id"], r["name"], r["status"], ", ".join(v["variant_id"] for v in r["variants"]),
                      f"{r['created_at']:%Y-%m-%d %H:%M}")
    out.print(table)
    for variant, gate in runs.latest_gates(store(), CLI_USER).items():
        out.print(f"{variant}: gate {gate['verdict']} (run {gate['set_id']})", markup=False)


@app.command("gate")
def regression_gate(run: str, variant: str = typer.Option(..., help="The fine-tuned variant id.")) -> None:
    """The gate of a fine-tune against the base in a finished suite run, per category."""
    _print_gate(run, variant)


def _p(p) -> str:
    return "-" if p is None else f"{p:.3g}"


def _print_gate(set_id: str, variant: str) -> None:
    from core.regression import gate as gates
    from core.regression import runs

    gate = runs.judge(store(), CLI_USER, set_id, variant, settings().regression)
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
    for line in gates.headline(detail):
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
    from core.regression import sweep

    o = owner()
    try:
        chosen = [int(s) for s in csv_list(steps)]
    except ValueError:
        raise InvalidInput(f"--steps: {steps!r} must be comma-separated whole numbers, e.g. 20,40") from None
    sweep_id = sweep.start_sweep(o.store, o.jobs, settings(), CLI_USER, run, chosen or None, items, prompts, path)
    record = sweep.get_sweep(o.store, CLI_USER, sweep_id)
    out.print(f"started {sweep_id}: {', '.join(record['variants'])} (suite {record['suite_set']}, test split "
              f"{record['task_set']})", markup=False)
    deadline = time.monotonic() + timeout
    for job_id in (record["suite_set"], record["task_set"]):
        if follow(job_id, timeout)["status"] != "succeeded":
            break
    # Then its scoring: inside the server the owner's monitor starts it on its next pass; alone,
    # this command does (follow() let the database go: owner() opens it again).
    while True:
        if not served():
            sweep.advance(owner().store, owner().jobs, settings())
        record = sweep.get_sweep(store(), CLI_USER, sweep_id)
        if record["status"] != "scoring" or record["score_job"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    if record["score_job"]:
        follow(record["score_job"], max(1.0, deadline - time.monotonic()))
    _print_sweep(sweep_id)


@app.command("sweeps")
def regression_sweeps() -> None:
    """Checkpoint sweeps with their status."""
    from core.regression import sweep

    table = Table("sweep", "run", "checkpoints", "status", "created")
    for s in sweep.sweeps(store(), CLI_USER):
        table.add_row(s["sweep_id"], s["run_id"], ", ".join(v.rsplit("@", 1)[-1] for v in s["variants"]),
                      s["status"] + (f" ({s['why']})" if s["why"] else ""), f"{s['created_at']:%Y-%m-%d %H:%M}")
    out.print(table)


@app.command("sweep-show")
def regression_sweep_show(sweep_id: str) -> None:
    """A finished sweep's table: per checkpoint, task metric and suite accuracy with intervals, and the gate."""
    _print_sweep(sweep_id)


def _print_sweep(sweep_id: str) -> None:
    from core.regression import sweep

    frame = sweep.table(store(), CLI_USER, settings(), sweep_id)
    metric = frame["metric"].iloc[0]
    table = Table("version", "step", metric, "interval", "general", "interval", "items", "gate")
    for r in frame.itertuples():
        task = "-" if r.task is None else f"{r.task:.3f}"
        spread = "-" if r.task_lo is None else f"[{r.task_lo:.3f}, {r.task_hi:.3f}]"
        table.add_row(r.variant_id, str(r.step or "-") + (" (best)" if r.best else ""), task, spread,
                      f"{100 * r.general:.1f}%", f"[{100 * r.general_lo:.1f}, {100 * r.general_hi:.1f}]",
                      str(r.items), r.gate or "-")
    out.print(table)
    line = sweep.advice(frame)
    if line:
        out.print(line, markup=False)


@app.command("harness")
def regression_harness(variant: str = typer.Option(..., help="The variant: base, adapter:RUN or merged:RUN."),
                       tasks: str = typer.Option(..., help="Comma-separated lm-eval task names, e.g. arc_easy."),
                       limit: Optional[int] = typer.Option(None, help="Examples per task (default: all)."),
                       path: str = typer.Option("transformers", help="lm-eval backend: transformers or vllm."),
                       timeout: float = typer.Option(7200, help="Seconds to follow the job.")) -> None:
    """Optional: lm-evaluation-harness tasks on one variant (needs lm-eval and the hub for its data)."""
    from core.regression import harness

    o = owner()
    job_id = harness.start_harness(o.store, o.jobs, settings(), CLI_USER, variant, csv_list(tasks), limit, path)
    out.print(f"started {job_id}", markup=False)
    job = follow(job_id, timeout)
    finish(job_id, job)
    frame = harness.results(store(), CLI_USER, variant)  # follow() let the database go: open it again
    table = Table("task", "metric", "value", "stderr", "n")
    for r in frame[frame["job_id"] == job_id].itertuples():
        table.add_row(r.task, r.metric, f"{r.value:.4f}", "-" if r.stderr != r.stderr or r.stderr is None
                      else f"{r.stderr:.4f}", str(r.n_samples))
    out.print(table)
