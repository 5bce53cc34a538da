"""The `import` job's worker: validate and parse one uploaded file; never opens the database.

    python -m core.datasets.import_worker RUN_DIR

Reads the upload (`upload.bin`) and `config.json` (file name, options, base model) from the run
folder, reports `progress` events while it checks the file, and writes `report.json` (the full
validation report; for a validation, `check_only`, that is all) and, when the file can be imported, `examples.parquet` (every row as the
examples table takes it: version id, split, line, messages, tokens, hash, tests). Its final event
says which: `finished` with the version id and what the owner needs to insert the version (which
it does in the ingest transaction: core.datasets.imports), or `failed` with the report's errors.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import pyarrow.parquet as pq

from core.datasets import ImportOptions, examples_table, validate, version_id
from core.jobs.worker import WorkerRun, run_worker

UPLOAD_FILE = "upload.bin"
REPORT_FILE = "report.json"
EXAMPLES_FILE = "examples.parquet"
FIRST_PROBLEMS = 20  # errors repeated in the `failed` event; all of them are in report.json


def options_from(config: dict) -> ImportOptions:
    fields = dict(config["options"])
    fields["split"] = tuple(fields["split"])
    return ImportOptions(**fields)


def import_run(run: WorkerRun) -> None:
    config, events = run.config, run.events
    events.emit("started", file=config["file"], bytes=config.get("bytes"))

    def progress(stage: str, done: int, total: int) -> None:
        run.check()
        events.emit("progress", stage=stage, done=done, total=total)

    options = options_from(config)
    count, tokenizer = None, None
    if config.get("base_model"):
        from core.tokenizer import token_counter  # transformers loads only when a tokenizer is wanted

        count, name, why = token_counter(config["base_model"])
        tokenizer = (name or None) if count else None
        if why:
            events.emit("note", message=f"token statistics skipped: {why}")
    data = (run.folder / UPLOAD_FILE).read_bytes()
    checked = validate(data, config["file"], options, count, tokenizer, progress)
    report = checked.report
    (run.folder / REPORT_FILE).write_text(json.dumps(report.to_dict(), default=str), encoding="utf-8")
    if config.get("check_only"):  # a validation: the report is the result, whatever it found
        events.emit("finished", checked=True, ok=report.ok, examples=report.valid, splits=report.splits,
                    errors=len(report.errors), warnings=len(report.warnings))
        return
    if not report.ok:
        errors = report.errors
        events.emit("failed", error=f"{config['file']}: {len(errors)} problem(s) must be fixed before "
                    "import; nothing was imported.",
                    errors=len(errors), problems=[asdict(p) for p in errors[:FIRST_PROBLEMS]])
        return
    vid, content = version_id(checked.examples, checked.split_spec)
    progress("write", 0, len(checked.examples))
    table = examples_table(vid, checked.examples)
    tmp = run.folder / (EXAMPLES_FILE + ".part")
    pq.write_table(table, tmp)
    tmp.replace(run.folder / EXAMPLES_FILE)  # whole or absent
    progress("write", len(checked.examples), len(checked.examples))
    events.emit("finished", version_id=vid, content_hash=content, format=report.format,
                split_spec=checked.split_spec, tokenizer=tokenizer, examples=table.num_rows,
                splits=report.splits, warnings=len(report.warnings))


def main(run_dir: str) -> int:
    return run_worker(run_dir, import_run, error=lambda run, exc: f"{run.config.get('file')}: could not be checked: "
                                                                  f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
