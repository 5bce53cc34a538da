"""`tuneboard metrics ...`: task metrics of generation sets, with intervals and deltas vs the base, through
the HTTP API (scoring is a job, followed here)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from api.client import ApiError
from cli.context import api, csv_list, export as export_file, finish, follow_job, out, settings
from core.errors import InvalidInput

app = typer.Typer(help="Task metrics of generation sets: score, show.", no_args_is_help=True)


@app.command("score")
def metrics_score(generation_set: str,
                  metrics: str = typer.Option("", help="Comma-separated metric names (default: what fits the "
                                              "references; see `tuneboard metrics show --help`)."),
                  timeout: float = typer.Option(3600, help="Seconds to follow the job.")) -> None:
    """Score every output of a generation set as a job (parallel over cores), then show the summary."""
    job_id = api().post(f"/generations/{generation_set}/scores", json={"metrics": csv_list(metrics) or None})["job_id"]
    out.print(f"started {job_id}", markup=False)
    job = follow_job(job_id, timeout)
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
    if export:
        written = _scored(generation_set, lambda: export_file(f"/generations/{generation_set}/scores/export", out_dir,
                                                              format=export, table=table))
        out.print(f"wrote {written}", markup=False)
        return
    _print_metrics(generation_set)


def _scored(generation_set: str, call):
    """`call`'s answer; a set without scores yet is said as the command line says it."""
    try:
        return call()
    except ApiError as exc:
        if exc.status == 404 and "has no scores yet" in exc.message:
            raise InvalidInput(f"{generation_set} has no scores yet: run `tuneboard metrics score "
                               f"{generation_set}`.") from None
        raise


def _print_metrics(generation_set: str) -> None:
    res = _scored(generation_set, lambda: api().get(f"/generations/{generation_set}/scores"))
    ci = f"{res.get('confidence') or settings().metrics.confidence:.0%} CI"
    table = Table("variant", "metric", "mean", ci, "n")
    for m in res["summary"]:
        table.add_row(m["variant"], m["metric"], _f(m["mean"], ".3f"), f"{_f(m['lo'], '.3f')}-{_f(m['hi'], '.3f')}",
                      str(m["n"]))
    out.print(table)
    if res["deltas"]:
        table = Table("variant", "metric", "delta vs base", "interval", "p", "p (adjusted)", "verdict")
        for d in res["deltas"]:
            table.add_row(d["variant"], d["metric"], _f(d["delta"], "+.3f"),
                          f"{_f(d['lo'], '+.3f')}..{_f(d['hi'], '+.3f')}", _p(d["p"]), _p(d["p_holm"]),
                          f"{d['direction']}{' (significant)' if d['significant'] else ''}")
        out.print(table)
        out.print(res["comparisons"], markup=False)


def _f(value, spec: str) -> str:
    """A figure, or '-' where there is none (JSON has no NaN)."""
    return "-" if value is None else format(value, spec)


def _p(p) -> str:
    """A p-value, or '-' where none was computed (a descriptive metric, or one outside the tested family)."""
    return "-" if p is None or p != p else f"{p:.3g}"


