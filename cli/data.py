"""`tuneboard data ...`: import, validate and browse datasets. Import, list, show and metrics go through the
HTTP API (an import is a job: its progress is printed while it runs); `validate` checks a file here and
needs no database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from api.client import ApiError
from cli.context import api, csv_list, err, follow_job, out, read_file, settings
from core.datasets.imports import needs_job
from core.errors import DatasetError, InvalidInput, Problem

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
    from core.tokenizer import token_counter

    count, name, why = token_counter(settings().base_model)
    if why and log:
        err.print(f"note: token statistics skipped: {why}", markup=False)
    return count, name or None


def _report(report: dict):
    """A validation report as the API gives it (its to_dict), back as the object `_print_report` prints."""
    from core.datasets.validate import Report

    return Report.from_dict(report)


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


IMPORT_TIMEOUT = 24 * 3600.0
STAGES = {"read": "read: {done} of {total} rows", "checked": "checked: {done} of {total} rows valid",
          "near_duplicates": "near-duplicates: {done} of {total} examples compared",
          "tokens": "tokens: {done} of {total} examples counted", "write": "writing: {done} of {total} examples"}


def _import_progress():
    """Prints an import job's progress: each stage when it ends, and a long stage every tenth of the way;
    the worker's notes (token statistics skipped) on stderr, as before the import was a job."""
    shown: dict[str, int] = {}

    def show(e: dict) -> None:
        if e["type"] == "note":
            err.print(f"note: {e.get('message')}", markup=False)
        elif e["type"] == "progress":
            done, total = e["done"], e["total"]
            tenth = 10 if total <= 0 or done >= total else 10 * done // total
            if shown.get(e["stage"], -1) >= tenth:
                return
            shown[e["stage"]] = tenth
            line = STAGES.get(e["stage"], e["stage"] + ": {done} of {total}")
            out.print(line.format(done=done, total=total), markup=False)
        elif e["type"] == "warning":
            out.print(f"warning: {e.get('message')}", markup=False)
    return show


def _start_import(data: bytes, file: str, form: dict, wait: bool = False) -> dict:
    try:
        return api().post("/datasets", files={"file": (file, data)}, data=form,
                          params={"wait": "true"} if wait else None)
    except ApiError as exc:  # refused before the job started (too large): every problem, as core words them
        problems = (exc.body or {}).get("error", {}).get("problems") if isinstance(exc.body, dict) else None
        if exc.code == "invalid_dataset":
            raise DatasetError(exc.message, [Problem(**p) for p in problems or []]) from None
        raise


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
                labels: str = typer.Option("", help="Comma-separated labels label_accuracy looks for (default: "
                                           "the distinct references of the scored split)."),
                schema: Optional[Path] = typer.Option(None, help="A JSON schema file schema_valid checks "
                                                      "responses against."),
                as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Validate and import a file as a dataset version (all or nothing); a file over 5 MiB is imported by a
    job whose progress is printed."""
    data = read_file(path)
    # The options' mistakes named as the user typed them, before the upload; the server checks them again.
    _mapping(mapping)
    _split(split)
    form = {"name": name, "format": fmt, "mapping": list(mapping), "seed": None if seed is None else str(seed),
            "split": split, "metrics": metrics, "labels": labels,
            "json_schema": json.dumps(_schema_file(schema)) if schema else None}
    form = {k: v for k, v in form.items() if v not in (None, "", [])}
    if not needs_job(len(data)):  # within the request, as the Data page does: no worker to start
        done = _start_import(data, path.name, form, wait=True)
        _print_imported(done["dataset"], done["version_id"], done["created"], done["metrics"],
                        done["metrics_updated"], done["report"], as_json)
        return
    started = _start_import(data, path.name, form)
    job_id = started["job_id"]
    if not as_json:
        out.print(f"started {job_id}: importing {started['file']} as {started['dataset']}", markup=False)
    job = follow_job(job_id, IMPORT_TIMEOUT, show=(lambda e: None) if as_json else _import_progress())
    if job["status"] in ("queued", "running"):
        return  # the import goes on (`tuneboard runs follow JOB`)
    status = api().get(f"/imports/{job_id}")
    report = _report(status["report"]) if status["report"] is not None else None
    if status["status"] == "failed" and report is not None and not report.ok:
        raise DatasetError(status["error"] or f"{report.file}: nothing was imported.", report.errors)
    if status["status"] != "succeeded" or status["result"] is None:
        raise InvalidInput(f"import {job_id} {status['status']}: {status['error'] or 'no reason given'}; "
                           "nothing was imported.")
    result = status["result"]
    _print_imported(result["dataset"], result["version_id"], result["created"], status["metrics"],
                    result["metrics_updated"], status["report"], as_json)


def _print_imported(dataset: str, version: str, created: bool, metrics, metrics_updated: bool, report: dict,
                    as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps({"dataset": dataset, "version": version, "created": created, "metrics": metrics,
                                   "metrics_updated": metrics_updated, "report": report}, default=str))
        return
    _print_report(_report(report), False)
    verb = "Imported" if created else "Already imported (same content and split):"
    out.print(f"{verb} {dataset} version {version}", markup=False)
    if metrics_updated:
        out.print(f"declared metrics changed to {', '.join(metrics or [])}", markup=False)


@app.command("metrics")
def data_metrics(version: str,
                 metrics: str = typer.Option("", "--set", help="Comma-separated metric names that apply, e.g. "
                                             "tests_pass or json_valid,field_accuracy."),
                 clear: bool = typer.Option(False, "--clear", help="Declare none: scoring chooses from the "
                                            "references again."),
                 labels: Optional[str] = typer.Option(None, help="Comma-separated labels label_accuracy looks for "
                                                      "('' clears them: the distinct references are used)."),
                 schema: Optional[Path] = typer.Option(None, help="A JSON schema file schema_valid checks "
                                                       "responses against.")) -> None:
    """Show or change which metrics a dataset version declares, and what they need (changes are audited)."""
    if metrics and clear:
        raise InvalidInput("--set and --clear: give one of them.")
    body: dict = {}
    if metrics or clear:
        body["metrics"] = None if clear else csv_list(metrics)
    if labels is not None:
        body["labels"] = csv_list(labels)
    if schema is not None:
        body["json_schema"] = _schema_file(schema)
    if body:
        api().put(f"/versions/{version}/metrics", json=body)
    shown = api().get(f"/versions/{version}", limit=0)
    declared, options = shown["metrics"], shown.get("metric_options") or {}
    out.print(f"{version}: " + (", ".join(declared) if declared else "no metrics declared (chosen from the "
                                "references when scoring)"), markup=False)
    if options.get("labels"):
        out.print(f"labels: {', '.join(options['labels'])}", markup=False)
    if options.get("json_schema"):
        out.print(f"JSON schema: {json.dumps(options['json_schema'])[:200]}", markup=False)


def _schema_file(path: Path) -> dict:
    """A JSON schema file, read here so its mistakes name the file."""
    try:
        schema = json.loads(read_file(path).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(schema, dict):
        raise InvalidInput(f"{path}: a JSON schema is a JSON object")
    return schema


@app.command("list")
def data_list() -> None:
    """List dataset versions."""
    table = Table("dataset", "version", "examples", "train/val/test", "source", "created")
    for v in api().get("/versions"):
        table.add_row(v["dataset"], v["version_id"], str(v["n_examples"]),
                      f"{v['n_train']}/{v['n_validation']}/{v['n_test']}", v["source_name"],
                      str(v["created_at"]).replace("T", " ")[:19])
    out.print(table)


PAGE = 200  # examples per request (the API's most)


@app.command("show")
def data_show(version: str, examples: int = typer.Option(3, help="How many examples to print."),
              split: Optional[str] = typer.Option(None, help="Only this split.")) -> None:
    """Show a version's report and a few examples."""
    v = api().get(f"/versions/{version}", split=split, limit=min(max(examples, 0), PAGE))
    out.print(f"{v['dataset']} version {v['version_id']} from {v['source_name']} ({v['source_format']}), "
              f"split {json.dumps(v['split_spec'])}; metrics: "
              f"{', '.join(v['metrics']) if v['metrics'] else 'chosen from the references'}", markup=False)
    _print_report(_report(v["report"]), False)
    rows = v["examples"]["rows"]
    while len(rows) < min(examples, v["examples"]["total"]):
        more = api().get(f"/versions/{v['version_id']}", split=split, offset=len(rows),
                         limit=min(examples - len(rows), PAGE))["examples"]["rows"]
        if not more:
            break
        rows += more
    for r in rows:
        out.print(f"--- example {r['idx']} ({r['split']}, line {r['source_line']}, {r['n_tokens']} tokens)",
                  markup=False)
        for m in r["messages"]:
            out.print(f"[{m['role']}] {m['content']}", markup=False)
