"""Readers: turn a file (JSONL, CSV, Parquet) into chat examples, or problems naming the line.

Supported inputs:
- OpenAI chat JSONL: `{"messages": [{"role": ..., "content": ...}, ...]}` per line;
- prompt/completion JSONL: `{"prompt": ..., "completion": ..., "system": optional}`;
- CSV and Parquet with columns `messages` (a JSON list) or `prompt`/`completion` (and
  optional `system`); other column names are mapped with `mapping` ({"prompt": "question"}).
Any row may carry `split` (train/validation/test) to fix its split, `tests` (Python test
code the answer must pass: a code task scored with tests_pass and pass@k), and `tag` (or
`category`): the group the row is reported in, e.g. the judge's agreement per tag.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import Problem

FORMATS = ("jsonl", "csv", "parquet")
SPLITS = ("train", "validation", "test")
MAPPABLE = ("messages", "prompt", "completion", "system", "split", "tests", "tag")


@dataclass
class RawExample:
    line: int                 # 1-based line in the file (CSV: the row's line; Parquet: row number)
    record: Any               # the parsed object, before validation


def detect_format(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ValueError(suffix)


def _utf8_problem(file: str, line: int, raw: bytes, exc: UnicodeDecodeError) -> Problem:
    return Problem("non_utf8", f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not UTF-8; "
                   "re-save the file as UTF-8", file, line)


def _unreadable_json(exc: Exception) -> str:
    """Why json.loads failed other than a syntax error (it raises ValueError/RecursionError too)."""
    if isinstance(exc, RecursionError):
        return "values are nested too deeply"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def read_jsonl(data: bytes, file: str) -> tuple[list[RawExample], list[Problem]]:
    examples, problems = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(_utf8_problem(file, number, raw, exc))
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(Problem("invalid_json", f"not valid JSON: {exc.msg} at column {exc.colno}; "
                                    "each line must be one complete JSON object", file, number))
            continue
        except (ValueError, RecursionError) as exc:  # e.g. an integer over 4300 digits, deep nesting
            problems.append(Problem("invalid_json", f"cannot read this JSON: {_unreadable_json(exc)}",
                                    file, number))
            continue
        examples.append(RawExample(number, record))
    return examples, problems


def _mapped(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    out = {}
    for key in MAPPABLE:
        column = mapping.get(key, "category" if key == "tag" and "tag" not in row else key)
        if column in row and row[column] is not None and row[column] == row[column]:  # skip NaN
            out[key] = row[column]
    return out


def _tabular_record(row: dict[str, Any], mapping: dict[str, str], file: str, line: int
                    ) -> tuple[Any, Problem | None]:
    values = _mapped(row, mapping)
    if "messages" in values:
        msgs = values["messages"]
        if isinstance(msgs, str):
            try:
                msgs = json.loads(msgs)
            except json.JSONDecodeError as exc:
                return None, Problem("invalid_json", f"the messages column is not valid JSON: {exc.msg}",
                                     file, line, mapping.get("messages", "messages"))
            except (ValueError, RecursionError) as exc:  # e.g. an integer over 4300 digits, deep nesting
                return None, Problem("invalid_json", f"the messages column cannot be read: "
                                     f"{_unreadable_json(exc)}", file, line, mapping.get("messages", "messages"))
        elif hasattr(msgs, "tolist"):
            msgs = msgs.tolist()
        values["messages"] = msgs
    return values, None


def check_columns(columns: list[str], mapping: dict[str, str], file: str) -> list[Problem]:
    unknown = [k for k in mapping if k not in MAPPABLE]
    problems = [Problem("bad_mapping", f"cannot map {k!r}; mappable fields are {', '.join(MAPPABLE)}", file,
                        field=k) for k in unknown]
    missing = [mapping[k] for k in mapping if k in MAPPABLE and mapping[k] not in columns]
    problems += [Problem("missing_column", f"column {c!r} named in the mapping is not in the file "
                         f"(columns: {', '.join(columns)})", file, field=c) for c in missing]
    has = lambda key: mapping.get(key, key) in columns  # noqa: E731
    if not problems and not has("messages") and not (has("prompt") and has("completion")):
        problems.append(Problem("missing_column", "need a 'messages' column, or 'prompt' and 'completion' "
                                f"columns; found {', '.join(columns) or 'none'}. Map yours with "
                                "--map prompt=COLUMN --map completion=COLUMN", file))
    return problems


def read_csv(data: bytes, file: str, mapping: dict[str, str]) -> tuple[list[RawExample], list[Problem]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        return [], [Problem("non_utf8", f"byte 0x{data[exc.start]:02x} at column {exc.start - start + 1} is "
                            "not UTF-8; re-save the file as UTF-8", file, line)]
    delimiter = "\t" if file.lower().endswith(".tsv") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        columns = list(reader.fieldnames or [])
    except csv.Error as exc:
        return [], [Problem("invalid_csv", f"cannot read the header: {exc}", file, 1)]
    problems = check_columns(columns, mapping, file)
    if problems:
        return [], problems
    examples = []
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                problems.append(Problem("invalid_csv", f"row has {len(columns) + len(row[None])} fields, the "
                                        f"header has {len(columns)}; quote values that contain commas", file, line))
                continue
            record, problem = _tabular_record(row, mapping, file, line)
            if problem:
                problems.append(problem)
            else:
                examples.append(RawExample(line, record))
    except csv.Error as exc:
        problems.append(Problem("invalid_csv", f"cannot parse CSV: {exc}", file, reader.line_num))
    return examples, problems


def read_parquet(data: bytes, file: str, mapping: dict[str, str]) -> tuple[list[RawExample], list[Problem]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        return [], [Problem("invalid_parquet", f"not a readable Parquet file: {exc}", file)]
    problems = check_columns(table.column_names, mapping, file)
    if problems:
        return [], problems
    examples = []
    for number, row in enumerate(table.to_pylist(), start=1):
        record, problem = _tabular_record(row, mapping, file, number)
        if problem:
            problems.append(problem)
        else:
            examples.append(RawExample(number, record))
    return examples, problems


def read_examples(data: bytes, file: str, fmt: str | None = None, mapping: dict[str, str] | None = None
                  ) -> tuple[list[RawExample], list[Problem], str]:
    """Parse `data` (the bytes of `file`). Returns examples, problems and the format used."""
    mapping = dict(mapping or {})
    if fmt is None:
        try:
            fmt = detect_format(file)
        except ValueError:
            return [], [Problem("unknown_format", f"cannot tell the format from the name {file!r}; use a .jsonl, "
                                ".csv or .parquet file or pass the format explicitly", file)], "unknown"
    if fmt not in FORMATS:
        return [], [Problem("unknown_format", f"format {fmt!r} is not one of {', '.join(FORMATS)}", file)], fmt
    if fmt == "jsonl":
        examples, problems = read_jsonl(data, file)
        if mapping:
            examples = [RawExample(e.line, _mapped(e.record, mapping)) if isinstance(e.record, dict) else e
                        for e in examples]
        return examples, problems, fmt
    if fmt == "csv":
        return (*read_csv(data, file, mapping), fmt)
    return (*read_parquet(data, file, mapping), fmt)
