"""`tuneboard data ...`: import, validate and browse datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.context import csv_list, err, out, read_file, settings, store
from core.auth import CLI_USER
from core.errors import InvalidInput

app = typer.Typer(help="Import, validate and browse datasets.", no_args_is_help=True)


def _mapping(pairs: list[str]) -> dict[str, str]:
    out_map = {}
    for pair in pairs:
        if "=" not in pair:
            raise InvalidInput(f"--map {pair!r}: write FIELD=COLUMN, e.g. --map prompt=question")
        key, value = pair.split("=", 1)
        out_map[key.strip()] = value.strip()
    return out_map


def _split(text: Optional[str]) -> tuple[float, float, float] | None:
    if not text:
        return None
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InvalidInput(f"--split {text!r}: write three fractions like 0.8,0.1,0.1") from None
    return parts  # type: ignore[return-value]


def _options(name, fmt, mapping, seed, split, metrics: str = ""):
    from core.datasets import ImportOptions

    return ImportOptions.from_settings(settings(), name=name or "", format=fmt, mapping=_mapping(mapping),
                                       seed=seed, split=_split(split), metrics=csv_list(metrics) or None)


def _counter(log: bool):
    from core.models import token_counter

    count, name, why = token_counter(settings().base_model)
    if why and log:
        err.print(f"note: token statistics skipped: {why}", markup=False)
    return count, name or None


def _print_report(report, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.to_dict(), default=str))
        return
    for p in report.problems:
        out.print(str(p), markup=False)
    tok = report.tokens
    summary = (f"{report.file}: {report.rows} rows, {report.valid} valid, {len(report.errors)} errors, "
               f"{len(report.warnings)} warnings ({report.duplicates} exact duplicates, "
               f"{report.near_duplicates} near-duplicates)")
    out.print(summary, markup=False)
    if tok.get("available"):
        out.print(f"tokens ({tok['tokenizer']}): min {tok['min']}, median {tok['median']}, p95 {tok['p95']}, "
                  f"max {tok['max']}; {tok['truncated']} over max_seq_len {tok['max_seq_len']}", markup=False)
    if report.splits:
        out.print("split: " + ", ".join(f"{k} {v}" for k, v in report.splits.items())
                  + "; leakage: " + ", ".join(f"{k} {v}" for k, v in report.leakage.items()), markup=False)


@app.command("validate")
def data_validate(path: Path,
                  as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
                  fmt: Optional[str] = typer.Option(None, "--format", help="jsonl, csv or parquet."),
                  mapping: list[str] = typer.Option([], "--map", help="FIELD=COLUMN, e.g. prompt=question."),
                  seed: Optional[int] = typer.Option(None, help="Split seed (default data.seed)."),
                  split: Optional[str] = typer.Option(None, help="Fractions, e.g. 0.8,0.1,0.1.")) -> None:
    """Check a file; exit 0 when it can be imported, 1 when it cannot (one problem per line)."""
    from core.datasets import validate

    data = read_file(path)
    options = _options(None, fmt, mapping, seed, split)
    count, name = _counter(not as_json)
    report = validate(data, path.name, options, count, name).report
    _print_report(report, as_json)
    raise typer.Exit(0 if report.ok else 1)


@app.command("import")
def data_import(path: Path,
                name: Optional[str] = typer.Option(None, help="Dataset name (default: from the file name)."),
                fmt: Optional[str] = typer.Option(None, "--format", help="jsonl, csv or parquet."),
                mapping: list[str] = typer.Option([], "--map", help="FIELD=COLUMN, e.g. prompt=question."),
                seed: Optional[int] = typer.Option(None, help="Split seed (default data.seed)."),
                split: Optional[str] = typer.Option(None, help="Fractions, e.g. 0.8,0.1,0.1."),
                metrics: str = typer.Option("", help="Comma-separated metrics that apply to this data, e.g. "
                                            "json_valid,field_accuracy or tests_pass (default: chosen from the "
                                            "references when scoring). Re-importing the same file with --metrics "
                                            "replaces the declared ones."),
                as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Validate and import a file as a dataset version (all or nothing)."""
    from core.datasets import import_dataset

    data = read_file(path)
    options = _options(name, fmt, mapping, seed, split, metrics)
    count, tok_name = _counter(not as_json)
    result = import_dataset(store(), CLI_USER, data, path.name, options, count, tok_name)
    if as_json:
        out.print_json(json.dumps({"dataset": result.dataset, "version": result.version_id,
                                   "created": result.created, "metrics": options.metrics,
                                   "metrics_updated": result.metrics_updated, "report": result.report.to_dict()},
                                  default=str))
        return
    _print_report(result.report, False)
    verb = "Imported" if result.created else "Already imported (same content and split):"
    out.print(f"{verb} {result.dataset} version {result.version_id}", markup=False)
    if result.metrics_updated:
        out.print(f"declared metrics changed to {', '.join(options.metrics or [])}", markup=False)


@app.command("metrics")
def data_metrics(version: str,
                 metrics: str = typer.Option("", "--set", help="Comma-separated metric names that apply, e.g. "
                                             "tests_pass or json_valid,field_accuracy."),
                 clear: bool = typer.Option(False, "--clear", help="Declare none: scoring chooses from the "
                                            "references again.")) -> None:
    """Show or change which metrics a dataset version declares (changes are audited)."""
    from core.datasets import get_version, set_version_metrics

    if metrics and clear:
        raise InvalidInput("--set and --clear: give one of them.")
    if metrics or clear:
        set_version_metrics(store(), CLI_USER, version, None if clear else csv_list(metrics))
    declared = get_version(store(), CLI_USER, version)["metrics"]
    out.print(f"{version}: " + (", ".join(declared) if declared else "no metrics declared (chosen from the "
                                "references when scoring)"), markup=False)


@app.command("list")
def data_list() -> None:
    """List dataset versions."""
    from core.datasets import list_versions

    table = Table("dataset", "version", "examples", "train/val/test", "source", "created")
    for v in list_versions(store(), CLI_USER):
        table.add_row(v["dataset"], v["version_id"], str(v["n_examples"]),
                      f"{v['n_train']}/{v['n_validation']}/{v['n_test']}", v["source_name"],
                      str(v["created_at"])[:19])
    out.print(table)


@app.command("show")
def data_show(version: str, examples: int = typer.Option(3, help="How many examples to print."),
              split: Optional[str] = typer.Option(None, help="Only this split.")) -> None:
    """Show a version's report and a few examples."""
    from core.datasets import get_version, list_examples

    v = get_version(store(), CLI_USER, version)
    out.print(f"{v['dataset']} version {v['version_id']} from {v['source_name']} ({v['source_format']}), "
              f"split {json.dumps(v['split_spec'])}; metrics: "
              f"{', '.join(v['metrics']) if v['metrics'] else 'chosen from the references'}", markup=False)
    _print_report(v["report"], False)
    total, rows = list_examples(store(), CLI_USER, v["version_id"], split=split, limit=examples)
    for r in rows:
        out.print(f"--- example {r['idx']} ({r['split']}, line {r['source_line']}, {r['n_tokens']} tokens)",
                  markup=False)
        for m in r["messages"]:
            out.print(f"[{m['role']}] {m['content']}", markup=False)
