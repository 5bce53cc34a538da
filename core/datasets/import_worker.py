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
import signal
import sys
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq

from core.datasets import ImportOptions, examples_table, validate, version_id
from core.jobs.events import EventWriter, cancel_requested, read_config

UPLOAD_FILE = "upload.bin"
REPORT_FILE = "report.json"
EXAMPLES_FILE = "examples.parquet"
FIRST_PROBLEMS = 20  # errors repeated in the `failed` event; all of them are in report.json


class _Cancelled(Exception):
    pass


def options_from(config: dict) -> ImportOptions:
    fields = dict(config["options"])
    fields["split"] = tuple(fields["split"])
    return ImportOptions(**fields)


def main(run_dir: str) -> int:
    run = Path(run_dir)
    config = read_config(run)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    with EventWriter(run) as events:
        events.emit("started", file=config["file"], bytes=config.get("bytes"))

        def progress(stage: str, done: int, total: int) -> None:
            if stop["now"] or cancel_requested(run):
                raise _Cancelled
            events.emit("progress", stage=stage, done=done, total=total)

        try:
            options = options_from(config)
            count, tokenizer = None, None
            if config.get("base_model"):
                from core.models import token_counter  # transformers loads only when a tokenizer is wanted

                count, name, why = token_counter(config["base_model"])
                tokenizer = (name or None) if count else None
                if why:
                    events.emit("note", message=f"token statistics skipped: {why}")
            data = (run / UPLOAD_FILE).read_bytes()
            checked = validate(data, config["file"], options, count, tokenizer, progress)
            report = checked.report
            (run / REPORT_FILE).write_text(json.dumps(report.to_dict(), default=str), encoding="utf-8")
            if config.get("check_only"):  # a validation: the report is the result, whatever it found
                events.emit("finished", checked=True, ok=report.ok, examples=report.valid, splits=report.splits,
                            errors=len(report.errors), warnings=len(report.warnings))
                return 0
            if not report.ok:
                errors = report.errors
                events.emit("failed", error=f"{config['file']}: {len(errors)} problem(s) must be fixed before "
                            "import; nothing was imported.",
                            errors=len(errors), problems=[asdict(p) for p in errors[:FIRST_PROBLEMS]])
                return 0
            vid, content = version_id(checked.examples, checked.split_spec)
            progress("write", 0, len(checked.examples))
            table = examples_table(vid, checked.examples)
            tmp = run / (EXAMPLES_FILE + ".part")
            pq.write_table(table, tmp)
            tmp.replace(run / EXAMPLES_FILE)  # whole or absent
            progress("write", len(checked.examples), len(checked.examples))
            events.emit("finished", version_id=vid, content_hash=content, format=report.format,
                        split_spec=checked.split_spec, tokenizer=tokenizer, examples=table.num_rows,
                        splits=report.splits, warnings=len(report.warnings))
        except _Cancelled:
            events.emit("cancelled")
        except Exception as exc:  # noqa: BLE001 - the job says why; the owner keeps serving
            events.emit("failed", error=f"{config.get('file')}: could not be checked: {type(exc).__name__}: {exc}")
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
