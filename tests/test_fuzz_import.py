"""Property test: malformed input of any kind gives a report (never a crash), every error
names its file and a real line, and an import either succeeds or writes nothing."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.auth import Role, User
from core.datasets import ImportOptions, Validation, import_dataset, validate
from core.datasets.formats import SPLITS
from core.datasets.validate import Report
from core.errors import DatasetError, InvalidInput
from core.store import Store

ENGINEER = User("fuzzer", Role.ENGINEER)
TABLES = ("datasets", "dataset_versions", "examples", "audit_log")
FILE_LEVEL = {"empty", "too_large", "missing_column", "bad_mapping", "unknown_format", "invalid_parquet"}

# ---- strategies ------------------------------------------------------------------------------
text = st.text(max_size=20)
words = st.lists(st.sampled_from(["order", "late", "refund", "crash", "login", "invoice", "please", "help",
                                  "why", "the", "app", "card", "ÿ", "日本", "emoji😀"]),
                 min_size=1, max_size=8).map(" ".join)
scalar = st.none() | st.booleans() | st.integers() | st.floats() | text
anything = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(text, inner, max_size=3), max_leaves=6)
role = st.sampled_from(["system", "user", "assistant", "bot", "User", ""]) | anything
content = words | text | anything
message = st.fixed_dictionaries({}, optional={"role": role, "content": content}) | anything
split_value = st.sampled_from(SPLITS) | st.sampled_from(["dev", "TEST", ""]) | anything


@st.composite
def valid_record(draw) -> dict:
    turns = draw(st.integers(1, 2))
    msgs = [{"role": "system", "content": draw(words)}] if draw(st.booleans()) else []
    for _ in range(turns):
        msgs += [{"role": "user", "content": draw(words)}, {"role": "assistant", "content": draw(words)}]
    if draw(st.booleans()):
        return {"messages": msgs}
    return {"prompt": draw(words), "completion": draw(words)}


def with_split(record_strategy):
    """The record, with a `split` (valid or not) now and then."""
    return st.tuples(record_strategy, st.none() | st.none() | st.none() | split_value).map(
        lambda t: {**t[0], "split": t[1]} if t[1] is not None and isinstance(t[0], dict) else t[0])


well_formed_message = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]),
                                             "content": words})
wrong_types = st.one_of(  # one field of the wrong type, the rest plausible
    st.fixed_dictionaries({"messages": scalar}),
    st.fixed_dictionaries({"messages": st.lists(st.fixed_dictionaries({"role": role, "content": content}),
                                                min_size=1, max_size=4)}),
    st.fixed_dictionaries({"prompt": content, "completion": content}),
    st.fixed_dictionaries({"prompt": words, "completion": words, "system": scalar}),
)
malformed_record = st.one_of(
    wrong_types,
    st.fixed_dictionaries({"messages": st.lists(message, max_size=4) | anything}),
    st.fixed_dictionaries({"messages": st.lists(well_formed_message, max_size=5)}),  # roles in any order
    st.fixed_dictionaries({}, optional={"prompt": content, "completion": content, "system": content}),
    st.dictionaries(text, anything, max_size=3),
    anything,
)


def dumps(record, ascii_only: bool) -> bytes:
    return json.dumps(record, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


json_line = st.tuples(with_split(valid_record() | malformed_record), st.booleans()).map(lambda t: dumps(*t))
valid_line = st.tuples(valid_record(), st.booleans()).map(lambda t: dumps(*t))
broken_json = st.tuples(valid_line, st.integers(0, 10_000)).map(lambda t: t[0][: t[1] % max(1, len(t[0]))])
edge_line = st.sampled_from([
    b"[" * 3000 + b"]" * 3000,                                    # nesting beyond json's recursion limit
    b'{"messages": ' + b"9" * 5000 + b"}",                        # integer beyond int()'s digit limit
    b'{"prompt": "\\ud800", "completion": "x"}',                  # lone surrogate escape
    b'{"prompt": "a", "completion": "\\udfff\\ud800"}',
    b"\xef\xbb\xbf" + b'{"prompt": "bom", "completion": "x"}',    # UTF-8 BOM
    b'{"prompt": "nul\\u0000", "completion": "x"}',
    b"\xff\xfe\x00", b"{}", b"[]", b"null", b'"text"', b"0", b"NaN", b"   ", b"\t", b"\r",
    b'{"messages": [{"role": "user", "content": NaN}, {"role": "assistant", "content": Infinity}]}',
])
csv_garbage = st.text(alphabet=st.sampled_from(list('ab ,"\t\'x{}[]:\r') + ["\n"]), max_size=30).map(str.encode)
line = st.one_of(valid_line, json_line, json_line, broken_json, edge_line, st.binary(max_size=40), csv_garbage)
separator = st.sampled_from([b"\n", b"\n", b"\r\n", b"\n\n"])


@st.composite
def jsonl_file(draw):
    lines = draw(st.lists(line, max_size=8))
    data = draw(separator).join(lines) + (b"\n" if draw(st.booleans()) else b"")
    return data, draw(st.sampled_from(["f.jsonl", "f.ndjson", "f.json"])), {}


@st.composite
def valid_jsonl_file(draw):
    """Mostly valid files, so that the success path of the import is exercised too."""
    explicit = draw(st.booleans())
    rows = draw(st.lists(valid_record(), min_size=1, max_size=8))
    if explicit:
        rows = [{**r, "split": draw(st.sampled_from(SPLITS))} for r in rows]
    lines = [json.dumps(r).encode() for r in rows]
    if draw(st.integers(0, 3)) == 0:  # now and then one bad line among the good ones
        lines.insert(draw(st.integers(0, len(lines))), draw(line))
    return b"\n".join(lines) + b"\n", "ok.jsonl", {}


cell = st.one_of(words, text, st.sampled_from(["", "train", "test", "validation", "dev", '"', ",", "\n"]),
                 with_split(valid_record() | malformed_record).map(lambda r: json.dumps(r.get("messages", r))
                                                                   if isinstance(r, dict) else json.dumps(r)))


@st.composite
def csv_file(draw):
    header = draw(st.sampled_from([["prompt", "completion"], ["messages"], ["question", "answer"],
                                   ["prompt", "completion", "split"], ["system", "prompt", "completion"],
                                   ["messages", "split"], ["a", "b"], []]))
    mapping = draw(st.sampled_from([{}, {}, {"prompt": "question", "completion": "answer"},
                                    {"prompt": "missing"}, {"nonsense": "a"}, {"messages": "prompt"}]))
    delimiter = draw(st.sampled_from([",", "\t"]))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    if header:
        writer.writerow(header)
    for _ in range(draw(st.integers(0, 6))):
        width = max(1, len(header)) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        writer.writerow([draw(cell) for _ in range(max(0, width))])
    data = buf.getvalue().encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 2)) == 0:  # splice raw garbage in
        garbage = draw(st.binary(max_size=20) | csv_garbage | edge_line)
        at = draw(st.integers(0, len(data)))
        data = data[:at] + garbage + data[at:]
    return data, "f.tsv" if delimiter == "\t" else "f.csv", mapping


@st.composite
def parquet_file(draw):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if draw(st.booleans()):
        return draw(st.binary(max_size=60)), "f.parquet", {}
    n = draw(st.integers(0, 4))
    columns = {}
    if draw(st.booleans()):
        columns["messages"] = [draw(st.none() | cell) for _ in range(n)]
    else:
        columns["prompt"] = [draw(st.none() | cell) for _ in range(n)]
        columns["completion"] = [draw(st.none() | cell) for _ in range(n)]
    if draw(st.booleans()):
        columns["split"] = [draw(st.none() | st.sampled_from(["train", "test", "dev"])) for _ in range(n)]
    try:
        table = pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()})
    except (pa.ArrowException, UnicodeError):  # a surrogate in a cell: not storable as Arrow text
        return b"PAR1", "f.parquet", {}
    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    if draw(st.integers(0, 3)) == 0:  # truncated file
        data = data[: draw(st.integers(0, len(data)))]
    return data, "f.parquet", {}


inputs = st.one_of(jsonl_file(), jsonl_file(), valid_jsonl_file(), csv_file(), csv_file(), parquet_file())


# ---- helpers ---------------------------------------------------------------------------------
def line_count(data: bytes, fmt: str) -> int:
    if fmt == "jsonl":  # read_jsonl splits on b"\n" only
        return data.count(b"\n") + 1
    # csv reads through io.StringIO(newline=""): "\r\n", "\r" and "\n" all end a line
    return len(re.split(rb"\r\n|\r|\n", data))


def table_counts(store: Store) -> dict[str, int]:
    return {t: store.scalar(f"SELECT count(*) FROM {t}") for t in TABLES}


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb")
    yield store
    store.close()


# ---- the property ----------------------------------------------------------------------------
def test_malformed_input_never_crashes_and_never_half_imports(fuzz_store):
    outcomes: Counter = Counter()

    @settings(max_examples=1000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                     HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(case=inputs, small_limit=st.integers(0, 19))
    def check(case, small_limit):
        data, name, mapping = case
        options = ImportOptions(mapping=mapping, max_bytes=64 if small_limit == 13 else 200 * 2**20)

        checked = validate(data, name, options, count_tokens=None)
        assert isinstance(checked, Validation) and isinstance(checked.report, Report)
        report = checked.report
        fmt = report.format
        for p in report.problems:
            assert p.file == name, p
            assert p.severity in ("error", "warning"), p
        for p in report.errors:
            if fmt in ("jsonl", "csv"):
                if p.line is None:
                    assert p.code in FILE_LEVEL, p
                else:
                    assert 1 <= p.line <= line_count(data, fmt), (p, line_count(data, fmt))
            elif fmt == "parquet":
                assert p.line is None or p.line >= 1, p
        assert report.valid == len(checked.examples)
        if report.ok:
            assert all(ex.split in SPLITS for ex in checked.examples)
            assert sum(report.splits.values()) == report.valid
            assert len({ex.hash for ex in checked.examples}) == report.valid

        before = table_counts(fuzz_store)
        try:
            result = import_dataset(fuzz_store, ENGINEER, data, name, options)
        except (DatasetError, InvalidInput) as exc:
            assert not report.ok
            assert table_counts(fuzz_store) == before
            if isinstance(exc, DatasetError):  # every error of the report, nothing else
                assert exc.problems and set(exc.problems) == set(report.errors)
            outcomes["rejected"] += 1
            return
        assert report.ok and result.report.ok
        stored = fuzz_store.row("SELECT n_examples FROM dataset_versions WHERE version_id = ?", [result.version_id])
        assert stored["n_examples"] == report.valid
        assert fuzz_store.scalar("SELECT count(*) FROM examples WHERE version_id = ?",
                                 [result.version_id]) == report.valid
        after = table_counts(fuzz_store)
        if result.created:
            assert after["dataset_versions"] == before["dataset_versions"] + 1
            assert after["examples"] == before["examples"] + report.valid
            outcomes["imported"] += 1
        else:
            assert after == before
            outcomes["reimported"] += 1

    check()
    assert sum(outcomes.values()) >= 1000
    assert outcomes["imported"] >= 50 and outcomes["rejected"] >= 300, outcomes
