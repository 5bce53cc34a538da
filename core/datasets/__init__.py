"""Datasets: validate, split 80/10/10 by seed, version by content hash, import atomically.

`validate(data, file, options)` builds the full report without touching the store;
`import_dataset(store, actor, ...)` validates and, only if there is no error, writes the
dataset version and its examples in one transaction. A version id is the hash of the
examples' content (order-independent) and the split specification, so importing the
same content again returns the existing version.

A version may declare which metrics apply (`ImportOptions.metrics`, `set_version_metrics`);
scoring uses them instead of guessing from the references. Rows may carry `tests` (Python
code the answer must pass), part of the example's hash only when present.

Splitting keeps near-duplicate clusters together (one cluster, one split) so the test
split cannot leak into training through paraphrases; the leakage check then verifies it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa

from core import audit
from core.auth import Action, User, require
from core.datasets.formats import SPLITS, read_examples
from core.datasets.validate import (Example, Report, content_hash, drop_exact_duplicates, minhashes,
                                    near_duplicate_pairs, normalize, token_lengths, token_stats)
from core.errors import DatasetError, InvalidInput, NotFound, Problem
from core.store import Store

EXAMPLE_SCHEMA = pa.schema([("version_id", pa.string()), ("idx", pa.int32()), ("split", pa.string()),
                            ("source_line", pa.int32()), ("messages", pa.string()), ("n_tokens", pa.int32()),
                            ("example_hash", pa.string()), ("tests", pa.string()), ("tag", pa.string())])
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TokenCounter = Callable[[list[dict]], int]


@dataclass
class ImportOptions:
    """How a file becomes a dataset version (one typed object for CLI, UI and the record)."""

    name: str = ""
    format: str | None = None                 # jsonl, csv, parquet; None: from the file name
    mapping: dict[str, str] = field(default_factory=dict)
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 13
    max_seq_len: int = 512
    near_duplicate_threshold: float = 0.8
    max_bytes: int = 200 * 2**20
    metrics: list[str] | None = None          # which metrics apply; None (or empty): chosen from the references
    metric_options: dict | None = None        # what some metrics need: labels, json_schema (registry.check_metric_options)

    def __post_init__(self) -> None:
        problems = []
        try:
            self.metrics = declared_metrics(self.metrics)
        except InvalidInput as exc:
            problems.append(str(exc))
        if self.metric_options:
            from core.metrics.registry import check_metric_options

            try:
                self.metric_options = check_metric_options(self.metric_options)
            except InvalidInput as exc:
                problems.append(str(exc))
        if self.name and not _NAME.match(self.name):
            problems.append(f"name {self.name!r}: use lower-case letters, digits, '-' or '_' (at most 64)")
        if len(self.split) != 3 or any(not math.isfinite(v) or v < 0 for v in self.split) \
                or abs(sum(self.split) - 1) > 1e-6 or self.split[0] <= 0:
            problems.append(f"split {tuple(self.split)}: three fractions (train, validation, test) summing to 1, "
                            "train above 0")
        if not 0.3 <= self.near_duplicate_threshold <= 1:
            problems.append(f"near_duplicate_threshold {self.near_duplicate_threshold}: must be in 0.3..1")
        if self.max_seq_len < 16:
            problems.append(f"max_seq_len {self.max_seq_len}: must be at least 16")
        if problems:
            raise InvalidInput("; ".join(problems))
        self.split = tuple(float(v) for v in self.split)

    @classmethod
    def from_settings(cls, settings, **overrides) -> "ImportOptions":
        data = settings.data
        base = dict(split=tuple(data.split), seed=data.seed, max_seq_len=data.max_seq_len,
                    near_duplicate_threshold=data.near_duplicate_threshold,
                    max_bytes=data.max_upload_mb * 2**20)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def split_spec(self, explicit: bool) -> dict[str, Any]:
        if explicit:
            return {"mode": "explicit"}
        return {"mode": "seeded", "fractions": list(self.split), "seed": self.seed,
                "near_duplicate_threshold": self.near_duplicate_threshold}


def declared_metrics(names: list[str] | None) -> list[str] | None:
    """Metric names a version declares, checked against the registry; empty means none (None)."""
    if not names:
        return None
    from core.metrics.registry import check_metrics  # scorer libraries load only when metrics are named

    return check_metrics(list(names))


@dataclass
class Validation:
    report: Report
    examples: list[Example]
    split_spec: dict[str, Any]


def default_name(file: str) -> str:
    stem = re.sub(r"[^a-z0-9_-]+", "-", Path(file).stem.lower()).strip("-_")
    return (stem or "dataset")[:64]


def _assign_splits(examples: list[Example], clusters: list[int], options: ImportOptions) -> None:
    """Seeded, order-independent split of whole near-duplicate clusters."""
    groups: dict[int, list[Example]] = {}
    for ex, c in zip(examples, clusters):
        groups.setdefault(c, []).append(ex)
    def key(members: list[Example]) -> str:
        anchor = min(m.hash for m in members)
        return hashlib.sha256(f"{options.seed}:{anchor}".encode()).hexdigest()
    ordered = sorted(groups.values(), key=key)
    n = len(examples)
    n_test = round(n * options.split[2])
    n_val = round(n * options.split[1])
    counts = {"test": 0, "validation": 0}
    for members in ordered:
        # A held-out split takes a whole cluster only if it still fits: one big cluster of
        # paraphrases must not swallow the test split (it goes to train instead).
        if counts["test"] + len(members) <= n_test:
            target = "test"
        elif counts["validation"] + len(members) <= n_val:
            target = "validation"
        else:
            target = "train"
        if target != "train":
            counts[target] += len(members)
        for m in members:
            m.split = target


def _clusters(n: int, pairs: list[tuple[int, int, float]]) -> list[int]:
    parent = list(range(n))
    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for i, j, _ in pairs:
        parent[find(i)] = find(j)
    return [find(i) for i in range(n)]


def _leakage(examples: list[Example], hashes: list, threshold: float, file: str,
             parsed: list[Example] | None = None) -> tuple[dict[str, int], list[Problem]]:
    """Held-out rows that repeat train rows. Exact copies are looked for in `parsed` (every valid row,
    before exact duplicates were dropped): with explicit splits a held-out row copied from a train row
    is leakage in the file even though only its first occurrence is kept."""
    by_split = {s: [i for i, ex in enumerate(examples) if ex.split == s] for s in SPLITS}
    everything = examples if parsed is None else parsed
    train_lines: dict[str, int] = {}
    for ex in everything:
        if ex.split == "train":
            train_lines.setdefault(ex.hash, ex.line)
    problems: list[Problem] = []
    counts = {}
    for held in ("validation", "test"):
        exact = [ex for ex in everything if ex.split == held and ex.hash in train_lines]
        counts[f"train_{held}_exact"] = len(exact)
        for ex in exact:
            problems.append(Problem("leakage", f"{held} example also in train (line {train_lines[ex.hash]})",
                                    file, ex.line, "split", "warning"))
        if not by_split[held] or not by_split["train"]:
            counts[f"train_{held}_near"] = 0
            continue
        near = near_duplicate_pairs(hashes, threshold, left=by_split[held], right=by_split["train"])
        near = [(i, j, s) for i, j, s in near if examples[i].hash != examples[j].hash]
        counts[f"train_{held}_near"] = len({i for i, _, _ in near})
        for i, j, s in near:
            problems.append(Problem("leakage", f"{held} example is a near-duplicate (similarity {s}) of train "
                                    f"line {examples[j].line}", file, examples[i].line, "split", "warning"))
    return counts, problems


Progress = Callable[[str, int, int], None]  # (stage, done, total)
TOKEN_CHUNK = 1000  # examples tokenized between two progress reports


def validate(data: bytes, file: str, options: ImportOptions, count_tokens: TokenCounter | None = None,
             tokenizer_name: str | None = None, progress: Progress | None = None) -> Validation:
    """The whole report for one file; assigns splits to the valid examples.

    `progress(stage, done, total)` is told after each stage (read, checked, near_duplicates) and
    every TOKEN_CHUNK examples while tokens are counted (the import job's progress events)."""
    progress = progress or (lambda stage, done, total: None)
    report = Report(file=file, format=options.format or "")
    if len(data) > options.max_bytes:
        report.problems.append(Problem("too_large", f"file is {len(data) / 2**20:.1f} MiB; the limit is "
                                       f"{options.max_bytes / 2**20:.0f} MiB (data.max_upload_mb). Split the file "
                                       "or raise the limit", file))
        return Validation(report, [], {})
    raw, problems, fmt = read_examples(data, file, options.format, options.mapping)
    report.format = fmt
    report.rows = len(raw) + sum(1 for p in problems if p.line is not None)
    progress("read", report.rows, report.rows)
    examples, found = normalize(raw, file)
    problems += found
    parsed = examples
    examples, dup_problems = drop_exact_duplicates(parsed, file)
    problems += dup_problems
    report.duplicates = len(dup_problems)
    report.valid = len(examples)
    progress("checked", report.valid, report.rows)

    explicit = [ex for ex in examples if ex.split is not None]
    if explicit and len(explicit) != len(examples):
        missing = next(ex for ex in examples if ex.split is None)
        problems.append(Problem("split_mixed", f"{len(explicit)} rows set 'split' but this one does not; set it on "
                                "every row or on none", file, missing.line, "split"))
    hashes = minhashes(examples) if examples else []
    pairs = near_duplicate_pairs(hashes, options.near_duplicate_threshold) if examples else []
    near_lines: dict[int, tuple[int, float]] = {}
    for i, j, sim in pairs:
        near_lines.setdefault(j, (i, sim))
    for j, (i, sim) in sorted(near_lines.items()):
        problems.append(Problem("near_duplicate", f"near-duplicate (similarity {sim}) of line {examples[i].line}",
                                file, examples[j].line, severity="warning"))
    report.near_duplicates = len(near_lines)
    progress("near_duplicates", len(examples), len(examples))

    if count_tokens is not None:
        for start in range(0, len(examples), TOKEN_CHUNK):
            token_lengths(examples[start:start + TOKEN_CHUNK], count_tokens)
            progress("tokens", min(start + TOKEN_CHUNK, len(examples)), len(examples))
    report.tokens, trunc = token_stats(examples, options.max_seq_len, file, tokenizer_name)
    problems += trunc

    explicit_mode = bool(explicit) and len(explicit) == len(examples)
    if examples and not any(p.code == "split_mixed" for p in problems):
        if not explicit_mode:
            _assign_splits(examples, _clusters(len(examples), pairs), options)
        report.splits = {s: sum(1 for ex in examples if ex.split == s) for s in SPLITS}
        if not explicit_mode:
            for split, wanted in zip(SPLITS, options.split):
                got = report.splits[split] / len(examples)
                if abs(got - wanted) > 0.05:
                    problems.append(Problem("split_skew", f"the {split} split holds {got:.0%} of the examples, not "
                                            f"{wanted:.0%}: near-duplicate clusters are kept whole; deduplicate the "
                                            "data or lower data.near_duplicate_threshold", file, severity="warning"))
        report.leakage, leaks = _leakage(examples, hashes, options.near_duplicate_threshold, file, parsed)
        problems += leaks
    if options.metrics and "tests_pass" in options.metrics:
        problems += [Problem("missing_tests", "tests_pass is declared but this example has no 'tests'; add Python "
                             "test code to every row or leave tests_pass out", file, ex.line, "tests")
                     for ex in examples if ex.tests is None]
    if not examples and not problems:
        problems.append(Problem("empty", "the file holds no examples", file))
    report.problems = sorted(problems, key=lambda p: (p.line or 0, p.severity != "error", p.code))
    return Validation(report, examples, options.split_spec(explicit_mode))


def check(actor: User, data: bytes, file: str, options: ImportOptions, count_tokens: TokenCounter | None = None,
          tokenizer_name: str | None = None) -> Report:
    """`validate` on behalf of a person (the API's upload check): only those who may import have the
    server parse and tokenize a file. The CLI and the import page call `validate` after their own guard."""
    require(actor, Action.DATA_IMPORT)
    return validate(data, file, options, count_tokens, tokenizer_name).report


def version_id(examples: list[Example], split_spec: dict[str, Any]) -> tuple[str, str]:
    content = content_hash(ex.key for ex in examples)
    spec = json.dumps(split_spec, sort_keys=True)
    if split_spec.get("mode") == "explicit":  # the rows' own splits are the split specification
        spec += "|" + hashlib.sha256("\n".join(sorted(f"{ex.hash} {ex.split}" for ex in examples)).encode()
                                     ).hexdigest()
    return hashlib.sha256(f"{content}|{spec}".encode()).hexdigest()[:16], content


@dataclass
class ImportResult:
    dataset: str
    version_id: str
    created: bool
    report: Report
    metrics_updated: bool = False   # an existing version's declared metrics were replaced


def import_dataset(store: Store, actor: User, data: bytes, file: str, options: ImportOptions,
                   count_tokens: TokenCounter | None = None, tokenizer_name: str | None = None,
                   description: str = "") -> ImportResult:
    """Validate and import; on any error nothing is written and DatasetError lists every problem.

    In the calling process (small files, the CLI); `core.datasets.imports.start_import` does the same
    as a job whose worker parses and the owner inserts (`save_version`, the same code) at ingest."""
    require(actor, Action.DATA_IMPORT)
    name = dataset_name(options, file)
    checked = validate(data, file, options, count_tokens, tokenizer_name)
    report = checked.report
    if not report.ok:
        raise refusal(file, report)
    vid, content = version_id(checked.examples, checked.split_spec)
    with store.transaction() as cur:
        dataset, created, updated = save_version(
            cur, actor, vid, content, name, description, file, report.format, report.to_dict(),
            checked.split_spec, tokenizer_name, options.metrics, lambda: examples_table(vid, checked.examples),
            options.metric_options)
    return ImportResult(dataset, vid, created, report, updated)


def dataset_name(options: ImportOptions, file: str) -> str:
    name = options.name or default_name(file)
    if not _NAME.match(name):
        raise InvalidInput(f"dataset name {name!r}: use lower-case letters, digits, '-' or '_'.")
    return name


def refusal(file: str, report: Report) -> DatasetError:
    return DatasetError(f"{file}: {len(report.errors)} problem(s) must be fixed before import; nothing was "
                        "imported.", report.errors)


def examples_table(vid: str, examples: list[Example]) -> pa.Table:
    """The rows of `examples` for version `vid`, as the examples table takes them."""
    rows = [(vid, idx, ex.split, ex.line, json.dumps(ex.messages, ensure_ascii=False), ex.n_tokens, ex.hash,
             ex.tests, ex.tag) for idx, ex in enumerate(examples)]
    return pa.table(list(zip(*rows)), schema=EXAMPLE_SCHEMA)


def save_version(cur, actor: User | str, vid: str, content: str, name: str, description: str, file: str,
                 fmt: str, report: dict, split_spec: dict, tokenizer_name: str | None, metrics: list[str] | None,
                 examples: Callable[[], pa.Table], metric_options: dict | None = None) -> tuple[str, bool, bool]:
    """Inside the caller's transaction: the version and its examples, or, if the same content and split
    exist already, nothing new (metrics or metric options named explicitly then replace the declared
    ones). Returns (dataset, created, metrics_updated). `examples()` is called only when the version is new."""
    existing = cur.execute("SELECT dataset, metrics, metric_options FROM dataset_versions WHERE version_id = ?",
                           [vid]).fetchone()
    if existing:
        updated = metrics is not None and _loads(existing[1]) != metrics
        if updated:
            _write_metrics(cur, actor, vid, metrics, f"declared at re-import of {file}")
        if metric_options is not None and _loads(existing[2]) != metric_options:
            _write_options(cur, actor, vid, metric_options, f"declared at re-import of {file}")
            updated = True
        return existing[0], False, updated
    batch = examples()
    splits = {s: 0 for s in SPLITS}
    for s in batch.column("split").to_pylist():
        splits[s] += 1
    if not cur.execute("SELECT 1 FROM datasets WHERE name = ?", [name]).fetchone():
        cur.execute("INSERT INTO datasets (name, description, created_by) VALUES (?, ?, ?)",
                    [name, description, actor if isinstance(actor, str) else actor.username])
    cur.execute("""INSERT INTO dataset_versions (version_id, dataset, content_hash, source_name, source_format,
                   n_examples, n_train, n_validation, n_test, split_spec, tokenizer, report, created_by, metrics,
                   metric_options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [vid, name, content, file, fmt, batch.num_rows, splits["train"], splits["validation"],
                 splits["test"], json.dumps(split_spec), tokenizer_name, json.dumps(report, default=str),
                 actor if isinstance(actor, str) else actor.username, _dumps(metrics),
                 json.dumps(metric_options) if metric_options else None])
    cur.register("example_batch", batch)
    cur.execute("INSERT INTO examples BY NAME SELECT * FROM example_batch")
    cur.unregister("example_batch")
    audit.record(cur, actor, "data.import", vid, f"{name} from {file}")
    return name, True, False


# ---- declared metrics ------------------------------------------------------------------
def _dumps(metrics: list[str] | None) -> str | None:
    return json.dumps(metrics) if metrics else None


def _loads(stored: str | None) -> list[str] | None:
    return json.loads(stored) if stored else None


def _store_metrics(store: Store, actor: User, version_id: str, metrics: list[str] | None, why: str) -> None:
    with store.transaction() as cur:
        _write_metrics(cur, actor, version_id, metrics, why)


def _write_metrics(cur, actor: User | str, version_id: str, metrics: list[str] | None, why: str) -> None:
    cur.execute("UPDATE dataset_versions SET metrics = ? WHERE version_id = ?", [_dumps(metrics), version_id])
    audit.record(cur, actor, "data.metrics", version_id, f"{why}: {', '.join(metrics) if metrics else 'none declared'}")


def _write_options(cur, actor: User | str, version_id: str, options: dict | None, why: str) -> None:
    cur.execute("UPDATE dataset_versions SET metric_options = ? WHERE version_id = ?",
                [json.dumps(options) if options else None, version_id])
    shown = ", ".join(f"{k} ({len(v)} labels)" if k == "labels" else k for k, v in (options or {}).items())
    audit.record(cur, actor, "data.metric_options", version_id, f"{why}: {shown or 'none declared'}")


def set_metric_options(store: Store, actor: User, version_id: str, options: dict | None) -> dict | None:
    """Change what metrics that need more than references get from this version: `labels` (label_accuracy)
    and `json_schema` (schema_valid); empty or None clears them. Returns what is stored now. Audited."""
    require(actor, Action.DATA_IMPORT)
    from core.metrics.registry import check_metric_options

    checked = check_metric_options(options)
    version = get_version(store, actor, version_id)
    with store.transaction() as cur:
        _write_options(cur, actor, version["version_id"], checked, "changed")
    return checked


def set_version_metrics(store: Store, actor: User, version_id: str, metrics: list[str] | None) -> list[str] | None:
    """Change which metrics a version declares (empty or None: chosen from the references again).
    Returns what is stored now. Audited."""
    require(actor, Action.DATA_IMPORT)
    names = declared_metrics(metrics)
    version = get_version(store, actor, version_id)
    if names and "tests_pass" in names:
        missing = store.scalar("SELECT count(*) FROM examples WHERE version_id = ? AND tests IS NULL",
                               [version["version_id"]])
        if missing:
            raise InvalidInput(f"metrics: tests_pass needs tests on every example, but {missing} example(s) of "
                               f"{version['version_id']} have none; leave tests_pass out.")
    _store_metrics(store, actor, version["version_id"], names, "changed")
    return names


# ---- reading ---------------------------------------------------------------------------
def list_datasets(store: Store, actor: User) -> list[dict]:
    """Each dataset with its description, number of versions and newest version."""
    require(actor, Action.DATA_VIEW)
    return store.rows("""SELECT d.name, d.description, d.created_at, d.created_by, count(v.version_id) AS versions,
                                arg_max(v.version_id, v.created_at) AS latest_version,
                                max(v.created_at) AS latest_at
                         FROM datasets d LEFT JOIN dataset_versions v ON v.dataset = d.name
                         GROUP BY ALL ORDER BY d.name""")


def list_versions(store: Store, actor: User, dataset: str | None = None) -> list[dict]:
    require(actor, Action.DATA_VIEW)
    sql = """SELECT version_id, dataset, source_name, source_format, n_examples, n_train, n_validation, n_test,
             tokenizer, created_at, created_by, metrics FROM dataset_versions"""
    params: list = []
    if dataset:
        sql += " WHERE dataset = ?"
        params.append(dataset)
    rows = store.rows(sql + " ORDER BY created_at DESC", params)
    for r in rows:
        r["metrics"] = _loads(r["metrics"])
    return rows


def get_version(store: Store, actor: User, version_id: str) -> dict:
    require(actor, Action.DATA_VIEW)
    row = store.row("SELECT * FROM dataset_versions WHERE version_id = ? OR version_id LIKE ? || '%' "
                    "ORDER BY version_id LIMIT 2", [version_id, version_id])
    if row is None or len(version_id) < 4:
        raise NotFound(f"No dataset version {version_id!r}; see `tuneboard data list`.")
    row["report"] = Report.from_dict(json.loads(row["report"]))
    row["split_spec"] = json.loads(row["split_spec"])
    row["metrics"] = _loads(row["metrics"])
    row["metric_options"] = _loads(row["metric_options"])
    return row


def list_examples(store: Store, actor: User, version_id: str, split: str | None = None, search: str = "",
                  limit: int = 50, offset: int = 0) -> tuple[int, list[dict]]:
    """A page of examples with filters (split, text search); returns (total matching, rows)."""
    require(actor, Action.DATA_VIEW)
    where = ["version_id = ?"]
    params: list = [version_id]
    if split:
        if split not in SPLITS:
            raise InvalidInput(f"split {split!r}: must be one of {', '.join(SPLITS)}")
        where.append("split = ?")
        params.append(split)
    if search:
        where.append("messages ILIKE ?")
        params.append(f"%{search}%")
    clause = " AND ".join(where)
    total = store.scalar(f"SELECT count(*) FROM examples WHERE {clause}", params)
    rows = store.rows(f"SELECT idx, split, source_line, messages, n_tokens, tests FROM examples WHERE {clause} "
                      "ORDER BY idx LIMIT ? OFFSET ?", params + [int(limit), int(offset)])
    for r in rows:
        r["messages"] = json.loads(r["messages"])
    return total, rows
