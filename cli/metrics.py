"""`tuneboard metrics ...`: task metrics of generation sets, with intervals and deltas vs the base."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.context import csv_list, follow, finish, out, owner, settings, store
from core.auth import CLI_USER
from core.errors import InvalidInput

app = typer.Typer(help="Task metrics of generation sets: score, show.", no_args_is_help=True)


@app.command("score")
def metrics_score(generation_set: str,
                  metrics: str = typer.Option("", help="Comma-separated metric names (default: what fits the "
                                              "references; see `tuneboard metrics show --help`)."),
                  timeout: float = typer.Option(3600, help="Seconds to follow the job.")) -> None:
    """Score every output of a generation set as a job (parallel over cores), then show the summary."""
    from core.metrics.scoring import start_scoring

    o = owner()
    job_id = start_scoring(o.store, o.jobs, CLI_USER, generation_set, csv_list(metrics) or None, settings().metrics)
    out.print(f"started {job_id}", markup=False)
    job = follow(job_id, timeout)
    finish(job_id, job)
    if job["status"] == "succeeded":
        _print_metrics(generation_set)


@app.command("show")
def metrics_show(generation_set: str,
                 export: Optional[str] = typer.Option(None, help="csv, parquet or html: write a file instead of "
                                                      "printing."),
                 table: str = typer.Option("summary", help="With csv/parquet: summary, deltas or scores (every "
                                           "per-example score)."),
                 out_dir: Path = typer.Option(Path("."), help="Folder for --export.")) -> None:
    """Means with CIs per variant and metric, and deltas vs the base with adjusted p-values
    (the stored summary; computed now if the scores changed).

    Metrics: exact_match, rouge1, rouge2, rougeL, bleu, chrf, ter, json_valid, field_accuracy, words,
    tests_pass (shown as pass@k: metrics.pass_k, each k up to the samples per prompt).
    """
    from core.metrics import results

    res = results.latest(store(), CLI_USER, generation_set, settings().metrics)
    if res is None:
        raise InvalidInput(f"{generation_set} has no scores yet: run `tuneboard metrics score {generation_set}`.")
    if export:
        data, name, _ = results.export(store(), CLI_USER, res, export, table)
        target = out_dir / name
        target.write_bytes(data)
        out.print(f"wrote {target}", markup=False)
        return
    _print_metrics(generation_set)


def _print_metrics(generation_set: str) -> None:
    from core.metrics import results

    cfg = settings().metrics
    res = results.latest(store(), CLI_USER, generation_set, cfg)
    if res is None:
        raise InvalidInput(f"{generation_set} has no scores yet: run `tuneboard metrics score {generation_set}`.")
    ci = f"{cfg.confidence:.0%} CI"
    table = Table("variant", "metric", "mean", ci, "n")
    for m in res.summary.to_dict("records"):
        table.add_row(m["variant"], m["metric"], f"{m['mean']:.3f}", f"{m['lo']:.3f}-{m['hi']:.3f}", str(m["n"]))
    out.print(table)
    if len(res.deltas):
        table = Table("variant", "metric", "delta vs base", "interval", "p", "p (adjusted)", "verdict")
        for d in res.deltas.to_dict("records"):
            table.add_row(d["variant"], d["metric"], f"{d['delta']:+.3f}", f"{d['lo']:+.3f}..{d['hi']:+.3f}",
                          _p(d["p"]), _p(d["p_holm"]),
                          f"{d['direction']}{' (significant)' if d['significant'] else ''}")
        out.print(table)
        out.print(results.comparisons_note(res), markup=False)


def _p(p) -> str:
    """A p-value, or '-' where none was computed (a descriptive metric, or one outside the tested family)."""
    return "-" if p is None or p != p else f"{p:.3g}"
