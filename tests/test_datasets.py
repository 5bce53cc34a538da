"""Behaviour of the data pipeline: validation problems, formats, duplicates, splits,
token statistics and the atomic import. Expectations are derived from the inputs built
here, never copied from a run of the code."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from contextlib import contextmanager

import pytest

import core.datasets as datasets_mod
from core.datasets import ImportOptions, import_dataset, list_examples, list_versions, validate
from core.datasets.formats import SPLITS
from core.datasets.validate import example_hash
from core.errors import DatasetError, InvalidInput, PermissionDenied, Problem, TuneboardError

SYL = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "be", "du", "fa", "go", "hi", "ju", "pe", "so",
       "wa", "xe", "yo", "qu"]


# ---- helpers -------------------------------------------------------------------------------
def chat(user: str, answer: str = "Noted, we will look into it.", system: str | None = None,
         split: str | None = None) -> dict:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    row: dict = {"messages": messages}
    if split is not None:
        row["split"] = split
    return row


def jsonl(rows) -> bytes:
    """Rows are dicts (dumped) or bytes (taken as they are); one per line."""
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def words(rng: random.Random, n: int) -> list[str]:
    """`n` made-up words; two calls share (practically) no word 3-grams."""
    return ["".join(rng.choice(SYL) for _ in range(4)) for _ in range(n)]


def ticket(ws: list[str]) -> dict:
    return chat("Hello support, " + " ".join(ws), "Thanks, escalated to the right team.")


def one_word_changed(ws: list[str], position: int, tag: str) -> list[str]:
    out = list(ws)
    out[position] = f"changed{tag}"
    return out


def by_code(problems: list[Problem], code: str) -> list[Problem]:
    return [p for p in problems if p.code == code]


def counts(store) -> dict[str, int]:
    return {
        "datasets": store.scalar("SELECT count(*) FROM datasets"),
        "dataset_versions": store.scalar("SELECT count(*) FROM dataset_versions"),
        "examples": store.scalar("SELECT count(*) FROM examples"),
        "audit": store.scalar("SELECT count(*) FROM audit_log WHERE action = 'data.import'"),
    }


def split_of(validation) -> dict[str, str]:
    """example hash -> split of the validated examples."""
    return {ex.hash: ex.split for ex in validation.examples}


def hash_of(row: dict) -> str:
    return example_hash([{"role": m["role"], "content": m["content"]} for m in row["messages"]])


# ---- every problem kind names its line and field ---------------------------------------------
def test_demo_bad_file_every_problem_names_its_line_and_field(demo_files):
    good_path, bad_path = demo_files
    data = bad_path.read_bytes()
    lines = data.split(b"\n")

    def line_of(pred) -> int:
        found = [i for i, raw in enumerate(lines, start=1) if raw.strip() and pred(raw)]
        assert len(found) == 1, found
        return found[0]

    invoice = b"My invoice is wrong, please check."
    expected = {  # line -> (code, field)
        line_of(lambda r: b'"role": "bot"' in r): ("unknown_role", "messages[1].role"),
        line_of(lambda r: b"no role here" in r): ("missing_role", "messages[1].role"),
        line_of(lambda r: b'"content": "   "' in r): ("empty_content", "messages[1].content"),
        line_of(lambda r: r.endswith(b"unterminated}")): ("invalid_json", ""),
        line_of(lambda r: r.count(invoice) == 2): ("bad_order", "messages[2].role"),
        line_of(lambda r: b"\xff\xfe" in r): ("non_utf8", ""),
        line_of(lambda r: invoice in r and b'"assistant"' not in r): ("missing_assistant", "messages"),
        line_of(lambda r: b'"and?"' in r): ("ends_without_assistant", "messages[2].role"),
        line_of(lambda r: b'"not a list"' in r): ("bad_type", "messages"),
        line_of(lambda r: b"prompt_text" in r): ("missing_field", "messages"),
    }
    report = validate(data, bad_path.name, ImportOptions()).report
    assert all(p.file == bad_path.name for p in report.problems)
    errors = {(p.line, p.code, p.field) for p in report.errors}
    assert errors == {(line, code, fld) for line, (code, fld) in expected.items()}
    assert len(report.errors) == len(expected)  # exactly one error per broken line

    # the exact copy of the first good ticket is dropped with a warning naming line 1
    copies = [i for i, raw in enumerate(lines, start=1) if raw == lines[0]]
    assert len(copies) == 2
    dup_line = copies[1]
    dups = by_code(report.problems, "duplicate")
    assert [(p.line, p.severity) for p in dups] == [(dup_line, "warning")]
    assert "line 1" in dups[0].message

    good_lines = sum(1 for raw in lines if raw.strip()) - len(expected) - 1
    assert report.valid == good_lines
    assert report.rows == sum(1 for raw in lines if raw.strip())
    assert not report.ok


USER = {"role": "user", "content": "Where is my parcel?"}
ANSWER = {"role": "assistant", "content": "It ships tomorrow."}
SYSTEM = {"role": "system", "content": "You are helpful."}


@pytest.mark.parametrize("bad, code, field", [
    (b'{"messages": [{"role": "user", "content": "hi"}, ', "invalid_json", ""),
    (b'{"prompt": "caf\xe9 au lait", "completion": "yes"}', "non_utf8", ""),
    ({"messages": [{"content": "no role"}, ANSWER]}, "missing_role", "messages[0].role"),
    ({"messages": [{"role": "customer", "content": "hi"}, ANSWER]}, "unknown_role", "messages[0].role"),
    ({"messages": [USER, {"role": "assistant", "content": ""}]}, "empty_content", "messages[1].content"),
    ({"messages": [USER, {"role": "assistant", "content": "\n\t "}]}, "empty_content", "messages[1].content"),
    ({"messages": [USER, {"role": "assistant"}]}, "missing_content", "messages[1].content"),
    ({"messages": [USER, {"role": "assistant", "content": 42}]}, "bad_type", "messages[1].content"),
    ({"messages": [USER, ANSWER, ANSWER]}, "bad_order", "messages[2].role"),
    ({"messages": [USER, SYSTEM, ANSWER]}, "bad_order", "messages[1].role"),
    ({"messages": [SYSTEM, USER]}, "missing_assistant", "messages"),
    ({"messages": [USER, ANSWER, USER]}, "ends_without_assistant", "messages[2].role"),
    ({"messages": {"role": "user", "content": "hi"}}, "bad_type", "messages"),
    ({"messages": "hello"}, "bad_type", "messages"),
    ({"messages": None}, "bad_type", "messages"),
    ({"messages": []}, "empty_conversation", "messages"),
    ({"messages": [USER, "just text"]}, "bad_type", "messages[1]"),
    ({"text": "hello", "label": "x"}, "missing_field", "messages"),
    ({"prompt": "hello"}, "missing_field", "completion"),
    ({"completion": "hello"}, "missing_field", "prompt"),
    ({"prompt": "hello", "completion": "hi", "split": "dev"}, "bad_split", "split"),
    ({"prompt": "hello", "completion": "hi", "tag": ["billing"]}, "bad_type", "tag"),
    ({"prompt": "hello", "completion": "hi", "category": {"name": "x"}}, "bad_type", "category"),
    ({"prompt": "hello", "completion": "hi", "tag": "x" * 101}, "bad_value", "tag"),
    (b"[1, 2, 3]", "not_an_object", ""),
    # json.loads raises ValueError (not JSONDecodeError) for this, and RecursionError below
    (b'{"messages": ' + b"7" * 5000 + b"}", "invalid_json", ""),
    (b"[" * 50_000 + b"]" * 50_000, "invalid_json", ""),
    # valid JSON, but "\ud800" decodes to a lone surrogate that no UTF-8 text can hold
    (b'{"prompt": "bad \\ud800 text", "completion": "x"}', "non_utf8", "messages[0].content"),
])
def test_hand_written_problem_names_line_and_field(bad, code, field):
    rows = [chat("First question about my account?"), bad, chat("Third question about shipping?")]
    report = validate(jsonl(rows), "hand.jsonl", ImportOptions()).report
    assert report.errors, report.problems
    assert {p.line for p in report.errors} == {2}
    assert all(p.file == "hand.jsonl" for p in report.problems)
    assert (code, field) in {(p.code, p.field) for p in report.errors}
    assert report.valid == 2  # the other lines still count
    assert not report.ok


def test_mixed_explicit_and_implicit_split_names_first_row_without_split():
    rows = [chat("alpha question one", split="train"), chat("beta question two", split="test"),
            chat("gamma question three"), chat("delta question four", split="validation"),
            chat("epsilon question five")]
    report = validate(jsonl(rows), "mixed.jsonl", ImportOptions()).report
    mixed = by_code(report.errors, "split_mixed")
    assert [(p.line, p.field) for p in mixed] == [(3, "split")]
    assert "3 rows" in mixed[0].message  # how many rows did set it
    assert not report.ok


def test_blank_lines_are_skipped_but_counted_in_line_numbers():
    data = b"\n" + json.dumps(chat("one question")).encode() + b"\n\n\n" + b'{"broken' + b"\n"
    report = validate(data, "gaps.jsonl", ImportOptions()).report
    assert [(p.code, p.line) for p in report.errors] == [("invalid_json", 5)]
    assert report.valid == 1


# ---- formats --------------------------------------------------------------------------------
def test_prompt_completion_jsonl_becomes_chat():
    rows = [{"prompt": "How do I reset it?", "completion": "Use the link.", "system": "Be brief."},
            {"prompt": "Second, with no system", "completion": "Fine."},
            {"prompt": "Empty system is dropped", "completion": "Right.", "system": ""}]
    checked = validate(jsonl(rows), "pc.jsonl", ImportOptions())
    assert checked.report.ok and checked.report.format == "jsonl"
    got = {ex.line: ex.messages for ex in checked.examples}
    for line, row in enumerate(rows, start=1):
        expected = ([{"role": "system", "content": row["system"]}] if row.get("system") else []) + [
            {"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["completion"]}]
        assert got[line] == expected


def _csv_bytes(header: list[str], rows: list[list[str]], delimiter: str = ",") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def test_csv_with_column_mapping():
    rows = [["1", "Why was I charged twice, again?", 'Because of a "retry" bug; refunded.'],
            ["2", "Can I, please, change my plan?", "Yes, under Settings > Plan."],
            ["3", "Order #123 is late", "It ships today."]]
    data = _csv_bytes(["id", "question", "answer"], rows)
    options = ImportOptions(mapping={"prompt": "question", "completion": "answer"})
    checked = validate(data, "qa.csv", options)
    assert checked.report.ok and checked.report.format == "csv"
    got = {ex.line: ex.messages for ex in checked.examples}
    assert set(got) == {2, 3, 4}  # header is line 1
    for i, (_, q, a) in enumerate(rows):
        assert got[i + 2] == [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def test_csv_multiline_field_is_read_whole():
    data = _csv_bytes(["prompt", "completion"], [["line one\nline two", "answer, with comma"],
                                                 ["plain", "also plain"]])
    checked = validate(data, "multi.csv", ImportOptions())
    assert checked.report.ok
    assert sorted(ex.messages[0]["content"] for ex in checked.examples) == ["line one\nline two", "plain"]


def test_csv_messages_column_and_split_column():
    convs = [[SYSTEM, USER, ANSWER], [{"role": "user", "content": "Hi, there"}, ANSWER]]
    data = _csv_bytes(["messages", "split"], [[json.dumps(convs[0]), "train"], [json.dumps(convs[1]), "test"]])
    checked = validate(data, "msgs.csv", ImportOptions())
    assert checked.report.ok
    got = {ex.line: (ex.messages, ex.split) for ex in checked.examples}
    assert got == {2: (convs[0], "train"), 3: (convs[1], "test")}


def test_csv_messages_column_with_bad_json_names_line_and_column():
    data = _csv_bytes(["conv"], [[json.dumps([USER, ANSWER])], ["[{not json"], ["null"], ['"text"']])
    report = validate(data, "conv.csv", ImportOptions(mapping={"messages": "conv"})).report
    assert [(p.code, p.line, p.field) for p in report.errors] == [
        ("invalid_json", 3, "conv"), ("bad_type", 4, "messages"), ("bad_type", 5, "messages")]
    assert report.valid == 1


def test_csv_mapping_naming_missing_column():
    data = _csv_bytes(["question", "answer"], [["q", "a"]])
    options = ImportOptions(mapping={"prompt": "question", "completion": "reply"})
    report = validate(data, "qa.csv", options).report
    missing = by_code(report.errors, "missing_column")
    assert [p.field for p in missing] == ["reply"]
    assert "question" in missing[0].message  # lists the columns that do exist
    assert report.valid == 0 and not report.ok


def test_csv_without_usable_columns():
    report = validate(_csv_bytes(["a", "b"], [["1", "2"]]), "ab.csv", ImportOptions()).report
    assert [p.code for p in report.errors] == ["missing_column"]


def test_csv_row_with_too_many_fields_names_its_line():
    data = b"prompt,completion\nfirst q,first a\nsecond q,second a,stray\nthird q,third a\n"
    report = validate(data, "wide.csv", ImportOptions()).report
    assert [(p.code, p.line) for p in report.errors] == [("invalid_csv", 3)]
    assert "3 fields" in report.errors[0].message and "2" in report.errors[0].message
    assert report.valid == 2


def test_csv_non_utf8_names_line():
    data = b"prompt,completion\nok,fine\ncaf\xe9,bad\n"
    report = validate(data, "latin.csv", ImportOptions()).report
    assert [(p.code, p.line) for p in report.errors] == [("non_utf8", 3)]


def test_tsv():
    rows = [["Hello, I need help, please", "Sure, what is it?"], ["Second ticket", "Second answer"]]
    checked = validate(_csv_bytes(["prompt", "completion"], rows, delimiter="\t"), "tickets.tsv", ImportOptions())
    assert checked.report.ok and checked.report.format == "csv"
    assert sorted(ex.messages[0]["content"] for ex in checked.examples) == sorted(r[0] for r in rows)
    assert {ex.line for ex in checked.examples} == {2, 3}


def _parquet(table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_parquet_json_string_messages_column():
    import pyarrow as pa

    convs = [[USER, ANSWER], [SYSTEM, {"role": "user", "content": "Other"}, ANSWER]]
    data = _parquet(pa.table({"messages": [json.dumps(c) for c in convs], "split": ["train", "validation"]}))
    checked = validate(data, "data.parquet", ImportOptions())
    assert checked.report.ok and checked.report.format == "parquet"
    assert {ex.line: (ex.messages, ex.split) for ex in checked.examples} == {
        1: (convs[0], "train"), 2: (convs[1], "validation")}


def test_parquet_native_list_of_struct_messages():
    import pyarrow as pa

    msg_type = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    convs = [[USER, ANSWER], [SYSTEM, {"role": "user", "content": "Other"}, ANSWER],
             [{"role": "bot", "content": "x"}, ANSWER]]
    data = _parquet(pa.table({"messages": pa.array(convs, type=msg_type)}))
    checked = validate(data, "native.parquet", ImportOptions())
    assert {ex.line: ex.messages for ex in checked.examples} == {1: convs[0], 2: convs[1]}
    assert [(p.code, p.line, p.field) for p in checked.report.errors] == [("unknown_role", 3, "messages[0].role")]


def test_parquet_prompt_completion_with_mapping_and_garbage():
    import pyarrow as pa

    data = _parquet(pa.table({"q": ["one?", "two?"], "a": ["1", "2"]}))
    checked = validate(data, "pc.pq", ImportOptions(mapping={"prompt": "q", "completion": "a"}))
    assert checked.report.ok
    assert sorted(ex.messages[1]["content"] for ex in checked.examples) == ["1", "2"]
    bad = validate(b"PAR1 this is not parquet", "x.parquet", ImportOptions()).report
    assert [p.code for p in bad.errors] == ["invalid_parquet"]


def test_unknown_extension():
    report = validate(b"whatever", "data.xlsx", ImportOptions()).report
    assert [p.code for p in report.errors] == ["unknown_format"]


# ---- duplicates -------------------------------------------------------------------------------
def test_exact_duplicates_dropped_with_warning_naming_first_line():
    a, b, c = chat("first distinct ticket"), chat("second other ticket"), chat("third unrelated thing")
    checked = validate(jsonl([a, b, a, c, b, a]), "dups.jsonl", ImportOptions())
    report = checked.report
    assert report.ok and report.valid == 3 and report.duplicates == 3
    dups = by_code(report.problems, "duplicate")
    assert [(p.line, p.severity) for p in dups] == [(3, "warning"), (5, "warning"), (6, "warning")]
    assert ["line 1" in dups[0].message, "line 2" in dups[1].message, "line 1" in dups[2].message] == [True] * 3
    assert sorted(ex.line for ex in checked.examples) == [1, 2, 4]


def test_prompt_completion_and_chat_spelling_of_same_example_are_duplicates():
    rows = [{"prompt": "same thing", "completion": "same answer"}, chat("same thing", "same answer")]
    report = validate(jsonl(rows), "dups.jsonl", ImportOptions()).report
    assert [(p.code, p.line) for p in report.problems if p.code == "duplicate"] == [("duplicate", 2)]


def test_near_duplicate_tickets_differing_in_one_word_are_reported():
    rng = random.Random(5)
    base = words(rng, 100)
    others = [words(rng, 100) for _ in range(4)]
    rows = [ticket(others[0]), ticket(base), ticket(others[1]), ticket(others[2]),
            ticket(one_word_changed(base, 50, "x")), ticket(others[3])]
    report = validate(jsonl(rows), "near.jsonl", ImportOptions()).report
    near = by_code(report.problems, "near_duplicate")
    assert [(p.line, p.severity) for p in near] == [(5, "warning")]
    assert "line 2" in near[0].message
    assert report.near_duplicates == 1 and report.duplicates == 0 and report.valid == len(rows)


def _clustered_rows(seed: int = 11, clusters: int = 12, size: int = 4, singles: int = 40):
    rng = random.Random(seed)
    rows, cluster_of = [], {}
    for c in range(clusters):
        base = words(rng, 120)
        for k in range(size):
            row = ticket(base if k == 0 else one_word_changed(base, 10 + 25 * k, f"{c}{k}"))
            rows.append(row)
            cluster_of[hash_of(row)] = c
    for _ in range(singles):
        row = ticket(words(rng, 40))
        rows.append(row)
        cluster_of[hash_of(row)] = None
    random.Random(seed + 1).shuffle(rows)
    return rows, cluster_of


def test_near_duplicate_clusters_never_straddle_splits():
    rows, cluster_of = _clustered_rows()
    data = jsonl(rows)
    held_out_clusters = 0
    for seed in range(6):
        checked = validate(data, "clusters.jsonl", ImportOptions(seed=seed))
        assert checked.report.ok
        splits: dict[int, set[str]] = {}
        for ex in checked.examples:
            if cluster_of[ex.hash] is not None:
                splits.setdefault(cluster_of[ex.hash], set()).add(ex.split)
        assert len(splits) == 12
        assert all(len(s) == 1 for s in splits.values()), splits
        held_out_clusters += sum(1 for s in splits.values() if s != {"train"})
        assert checked.report.leakage["train_test_near"] == 0
        assert checked.report.leakage["train_validation_near"] == 0
        assert not by_code(checked.report.problems, "leakage")
    assert held_out_clusters > 0  # some clusters really were placed in validation/test


# ---- splits ------------------------------------------------------------------------------------
def test_split_80_10_10_on_demo(demo_files):
    good, _ = demo_files
    checked = validate(good.read_bytes(), good.name, ImportOptions())
    n = sum(1 for line in good.read_bytes().splitlines() if line.strip())
    splits = checked.report.splits
    assert sum(splits.values()) == n == checked.report.valid
    for name, frac in zip(SPLITS, (0.8, 0.1, 0.1)):
        assert abs(splits[name] - n * frac) <= 1, splits
    assert splits == {s: sum(1 for ex in checked.examples if ex.split == s) for s in SPLITS}
    assert checked.split_spec == {"mode": "seeded", "fractions": [0.8, 0.1, 0.1], "seed": 13,
                                  "near_duplicate_threshold": 0.8}


def test_other_fractions():
    rows = [chat(" ".join(words(random.Random(i), 8))) for i in range(100)]
    report = validate(jsonl(rows), "f.jsonl", ImportOptions(split=(0.5, 0.2, 0.3))).report
    assert report.splits == {"train": 50, "validation": 20, "test": 30}


def test_same_seed_same_assignment_when_lines_shuffled(demo_files):
    good, _ = demo_files
    lines = [line for line in good.read_bytes().split(b"\n") if line.strip()]
    shuffled = list(lines)
    random.Random(3).shuffle(shuffled)
    assert shuffled != lines
    first = split_of(validate(b"\n".join(lines), good.name, ImportOptions(seed=21)))
    second = split_of(validate(b"\n".join(shuffled), good.name, ImportOptions(seed=21)))
    assert len(first) == len(lines)
    assert first == second
    other = split_of(validate(b"\n".join(lines), good.name, ImportOptions(seed=22)))
    assert set(other) == set(first)
    assert other != first
    assert sum(1 for h in first if first[h] == "test") == sum(1 for h in other if other[h] == "test")


def test_explicit_split_field_is_honoured():
    rng = random.Random(2)
    wanted = ["train"] * 6 + ["test"] * 3 + ["validation"] * 2 + ["train"] * 3
    rows = [chat(" ".join(words(rng, 12)), split=s) for s in wanted]
    checked = validate(jsonl(rows), "explicit.jsonl", ImportOptions())
    assert checked.report.ok
    assert {ex.line: ex.split for ex in checked.examples} == {i: s for i, s in enumerate(wanted, start=1)}
    assert checked.report.splits == {s: wanted.count(s) for s in SPLITS}
    assert checked.split_spec == {"mode": "explicit"}


@pytest.mark.parametrize("copy_first", [False, True])
def test_leakage_with_explicit_splits(copy_first):
    rng = random.Random(9)
    train_texts = [words(rng, 100) for _ in range(6)]
    train = [dict(ticket(t), split="train") for t in train_texts]
    exact_copy = dict(ticket(train_texts[1]), split="test")                             # copy of train row 2
    near_copy = dict(ticket(one_word_changed(train_texts[4], 40, "n")), split="test")   # near copy of row 5
    validation = [dict(ticket(words(rng, 100)), split="validation") for _ in range(2)]
    if copy_first:
        rows = [exact_copy] + train + [near_copy] + validation
    else:
        rows = train + [exact_copy, near_copy] + validation
    line = {id(r): i for i, r in enumerate(rows, start=1)}
    checked = validate(jsonl(rows), "leak.jsonl", ImportOptions())
    report = checked.report
    assert report.ok
    assert report.leakage == {"train_validation_exact": 0, "train_validation_near": 0,
                              "train_test_exact": 1, "train_test_near": 1}
    leaks = {(p.line, p.field, p.severity): p.message for p in by_code(report.problems, "leakage")}
    assert len(by_code(report.problems, "leakage")) == 2
    assert set(leaks) == {(line[id(exact_copy)], "split", "warning"), (line[id(near_copy)], "split", "warning")}
    assert f"line {line[id(train[1])]}" in leaks[(line[id(exact_copy)], "split", "warning")]
    assert f"line {line[id(train[4])]}" in leaks[(line[id(near_copy)], "split", "warning")]
    # the exact copy is still stored once only: no example sits in two splits
    hashes = [ex.hash for ex in checked.examples]
    assert len(hashes) == len(set(hashes)) == len(rows) - 1


def test_no_leakage_reported_for_clean_explicit_splits():
    rng = random.Random(4)
    rows = [dict(ticket(words(rng, 60)), split=s) for s in ["train"] * 5 + ["test"] * 2 + ["validation"] * 2]
    report = validate(jsonl(rows), "clean.jsonl", ImportOptions()).report
    assert report.ok and set(report.leakage.values()) == {0}
    assert not by_code(report.problems, "leakage")


# ---- token statistics ---------------------------------------------------------------------------
def test_token_statistics_with_the_tiny_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    from core.tokenizer import token_counter

    count, name, why = token_counter(tiny_model)
    assert count is not None, why
    tok = AutoTokenizer.from_pretrained(tiny_model)

    def n_tokens(messages):
        ids = tok.apply_chat_template(messages, tokenize=True)
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids)

    rng = random.Random(8)
    rows = [chat("My order " + " ".join(words(rng, n)), "Sorry, " + " ".join(words(rng, n // 2 + 1)))
            for n in (2, 4, 8, 12, 20, 30, 45, 60, 90, 120)]
    lengths = {i: n_tokens(r["messages"]) for i, r in enumerate(rows, start=1)}
    max_seq_len = sorted(lengths.values())[len(lengths) // 2]
    assert max_seq_len >= 16
    over = {line for line, n in lengths.items() if n > max_seq_len}
    assert 0 < len(over) < len(rows)

    checked = validate(jsonl(rows), "tok.jsonl", ImportOptions(max_seq_len=max_seq_len), count, name)
    tokens = checked.report.tokens
    assert tokens["available"] and tokens["tokenizer"] == name
    assert {ex.line: ex.n_tokens for ex in checked.examples} == lengths
    assert all(n > 0 for n in lengths.values())
    assert tokens["min"] == min(lengths.values()) and tokens["max"] == max(lengths.values())
    assert tokens["total"] == sum(lengths.values())
    assert tokens["truncated"] == len(over)
    trunc = by_code(checked.report.problems, "truncated")
    assert {p.line for p in trunc} == over and len(trunc) == len(over)
    assert all(p.severity == "warning" and str(max_seq_len) in p.message for p in trunc)
    assert checked.report.ok  # truncation warns, never blocks


def test_without_tokenizer_stats_are_unavailable():
    report = validate(jsonl([chat("a question here")]), "t.jsonl", ImportOptions()).report
    assert report.tokens["available"] is False and not by_code(report.problems, "truncated")


# ---- import --------------------------------------------------------------------------------------
def test_import_writes_version_and_examples(owner, accounts, demo_files):
    good, _ = demo_files
    store, eve = owner.store, accounts["engineer"]
    data = good.read_bytes()
    n = sum(1 for line in data.splitlines() if line.strip())
    before = counts(store)
    result = import_dataset(store, eve, data, good.name, ImportOptions(name="tickets"), description="demo")
    assert result.created and result.dataset == "tickets" and result.report.ok
    after = counts(store)
    assert after == {"datasets": before["datasets"] + 1, "dataset_versions": before["dataset_versions"] + 1,
                     "examples": before["examples"] + n, "audit": before["audit"] + 1}
    version = store.row("SELECT * FROM dataset_versions WHERE version_id = ?", [result.version_id])
    assert version["dataset"] == "tickets" and version["created_by"] == eve.username
    assert version["n_examples"] == n == version["n_train"] + version["n_validation"] + version["n_test"]
    assert version["source_name"] == good.name and version["source_format"] == "jsonl"
    stored = store.rows("SELECT source_line, split, messages FROM examples WHERE version_id = ? ORDER BY idx",
                        [result.version_id])
    original = {i: json.loads(line) for i, line in enumerate(data.split(b"\n"), start=1) if line.strip()}
    assert len(stored) == n
    for row in stored:
        assert json.loads(row["messages"]) == original[row["source_line"]]["messages"]
    assert {s: sum(1 for r in stored if r["split"] == s) for s in SPLITS} == result.report.splits

    # the same bytes again: the same version, nothing new
    again = import_dataset(store, eve, data, good.name, ImportOptions(name="tickets"))
    assert (again.version_id, again.created) == (result.version_id, False)
    assert counts(store) == after

    # the same content in another line order is the same version too
    lines = [line for line in data.split(b"\n") if line.strip()]
    random.Random(0).shuffle(lines)
    shuffled = import_dataset(store, eve, b"\n".join(lines) + b"\n", "renamed.jsonl", ImportOptions(name="tickets"))
    assert (shuffled.version_id, shuffled.created) == (result.version_id, False)
    assert counts(store) == after

    # a different seed is a different split specification, hence a new version
    reseeded = import_dataset(store, eve, data, good.name, ImportOptions(name="tickets", seed=99))
    assert reseeded.created and reseeded.version_id != result.version_id
    assert counts(store)["dataset_versions"] == after["dataset_versions"] + 1
    assert counts(store)["datasets"] == after["datasets"]


def test_tags_are_kept_with_their_rows_and_are_part_of_the_version(owner, accounts):
    """A row's `tag` (or `category`, as many files spell it; a number reads as text) is stored with it; the
    same rows tagged otherwise are a new version, and untagged rows keep the version id they always had."""
    rng = random.Random(21)
    texts = [" ".join(words(rng, 10)) for _ in range(10)]
    eve = accounts["engineer"]
    plain = [chat(t) for t in texts]
    tagged = [{**row, **({"tag": "billing"} if i % 2 else {"category": 7 if i == 4 else " shipping "})}
              for i, row in enumerate(plain)]
    untagged = import_dataset(owner.store, eve, jsonl(plain), "p.jsonl", ImportOptions(name="tags"))
    with_tags = import_dataset(owner.store, eve, jsonl(tagged), "t.jsonl", ImportOptions(name="tags"))
    assert with_tags.version_id != untagged.version_id
    stored = {r["source_line"]: r["tag"] for r in owner.store.rows(
        "SELECT source_line, tag FROM examples WHERE version_id = ?", [with_tags.version_id])}
    assert stored == {i + 1: "billing" if i % 2 else "7" if i == 4 else "shipping" for i in range(10)}
    assert owner.store.scalar("SELECT count(tag) FROM examples WHERE version_id = ?", [untagged.version_id]) == 0
    # Without tags the content hash is what it was before tags existed: the sorted hashes of the rows.
    before_tags = hashlib.sha256("\n".join(sorted(hash_of(r) for r in plain)).encode()).hexdigest()
    assert owner.store.scalar("SELECT content_hash FROM dataset_versions WHERE version_id = ?",
                              [untagged.version_id]) == before_tags
    # A CSV's `category` column is its rows' tag.
    table = "prompt,completion,category\n" + "".join(f"{t},ok,{'a' if i < 5 else 'b'}\n" for i, t in enumerate(texts))
    checked = validate(table.encode(), "t.csv", ImportOptions())
    assert [ex.tag for ex in checked.examples] == ["a"] * 5 + ["b"] * 5


def test_explicit_splits_are_part_of_the_version(owner, accounts):
    rng = random.Random(12)
    texts = [" ".join(words(rng, 10)) for _ in range(8)]
    first = ["train"] * 6 + ["test"] * 2
    second = ["test"] * 2 + ["train"] * 6  # same content, other rows held out
    eve = accounts["engineer"]
    a = import_dataset(owner.store, eve, jsonl([chat(t, split=s) for t, s in zip(texts, first)]), "a.jsonl",
                       ImportOptions(name="explicit"))
    b = import_dataset(owner.store, eve, jsonl([chat(t, split=s) for t, s in zip(texts, second)]), "b.jsonl",
                       ImportOptions(name="explicit"))
    assert a.created and b.created and a.version_id != b.version_id
    for result, wanted in ((a, first), (b, second)):
        _, test_rows = list_examples(owner.store, eve, result.version_id, split="test")
        assert sorted(r["messages"][0]["content"] for r in test_rows) == sorted(
            t for t, s in zip(texts, wanted) if s == "test")


def test_file_with_one_error_writes_nothing(owner, accounts):
    rows = [chat(f"valid question number {w}") for w in ("one", "two", "three", "four")]
    rows.insert(2, {"messages": [USER, {"role": "robot", "content": "beep"}]})
    before = counts(owner.store)
    with pytest.raises(DatasetError) as info:
        import_dataset(owner.store, accounts["engineer"], jsonl(rows), "one_bad.jsonl", ImportOptions())
    assert [(p.code, p.line, p.field) for p in info.value.problems] == [("unknown_role", 3, "messages[1].role")]
    assert "nothing was imported" in str(info.value)
    assert counts(owner.store) == before


def test_every_error_is_reported_and_nothing_written(owner, accounts, demo_files):
    _, bad = demo_files
    data = bad.read_bytes()
    expected = validate(data, bad.name, ImportOptions()).report.errors
    assert len(expected) >= 10
    before = counts(owner.store)
    with pytest.raises(DatasetError) as info:
        import_dataset(owner.store, accounts["engineer"], data, bad.name, ImportOptions())
    assert set(info.value.problems) == set(expected)
    assert all(p.severity == "error" for p in info.value.problems)
    assert counts(owner.store) == before


@pytest.mark.parametrize("role", ["rater", "lead"])
def test_only_engineers_import(owner, accounts, demo_files, role):
    good, _ = demo_files
    before = counts(owner.store)
    with pytest.raises(PermissionDenied):
        import_dataset(owner.store, accounts[role], good.read_bytes(), good.name, ImportOptions())
    assert counts(owner.store) == before


def test_lead_may_view_rater_may_not(owner, accounts):
    rows = [chat(f"question about topic {w}") for w in ("red", "green", "blue")]
    result = import_dataset(owner.store, accounts["engineer"], jsonl(rows), "view.jsonl", ImportOptions())
    lead, rater = accounts["lead"], accounts["rater"]
    assert [v["version_id"] for v in list_versions(owner.store, lead, "view")] == [result.version_id]
    total, page = list_examples(owner.store, lead, result.version_id)
    assert total == 3 and len(page) == 3
    with pytest.raises(PermissionDenied):
        list_versions(owner.store, rater)
    with pytest.raises(PermissionDenied):
        list_examples(owner.store, rater, result.version_id)


def test_list_examples_filters_and_paginates(owner, accounts):
    rng = random.Random(6)
    splits = ["train"] * 20 + ["validation"] * 5 + ["test"] * 5
    rows = []
    for i, s in enumerate(splits):
        ws = words(rng, 10)
        if i % 4 == 0:
            ws[3] = "zebra"
        rows.append(chat(" ".join(ws), split=s))
    eve = accounts["engineer"]
    vid = import_dataset(owner.store, eve, jsonl(rows), "pages.jsonl", ImportOptions()).version_id
    zebra = [i for i in range(len(rows)) if i % 4 == 0]

    total, page = list_examples(owner.store, eve, vid, split="test")
    assert total == 5 and {r["split"] for r in page} == {"test"} and len(page) == 5
    total, page = list_examples(owner.store, eve, vid, search="ZEBRA")  # case-insensitive
    assert total == len(zebra)
    assert sorted(r["source_line"] for r in page) == [i + 1 for i in zebra]
    assert all("zebra" in r["messages"][0]["content"] for r in page)
    total, page = list_examples(owner.store, eve, vid, split="train", search="zebra")
    assert total == sum(1 for i in zebra if splits[i] == "train") == len(page)

    seen, offset = [], 0
    while True:
        total, page = list_examples(owner.store, eve, vid, limit=7, offset=offset)
        assert total == len(rows) and len(page) <= 7
        if not page:
            break
        seen += [r["idx"] for r in page]
        offset += 7
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == len(rows)
    assert offset == 35  # 5 pages of at most 7, then an empty one

    with pytest.raises(InvalidInput):
        list_examples(owner.store, eve, vid, split="dev")


# ---- atomicity -----------------------------------------------------------------------------------
def _rows_for_atomicity(marker: str) -> list[dict]:
    rng = random.Random(1)
    rows = [chat(" ".join(words(rng, 8))) for _ in range(20)]
    rows[10] = chat(f"{marker} " + " ".join(words(rng, 8)))
    return rows


def test_failure_inside_examples_insert_leaves_nothing(owner, accounts, monkeypatch):
    marker = "explodes"
    data = jsonl(_rows_for_atomicity(marker))

    class JsonOneRowBroken:
        """json for core.datasets whose dumps gives NULL messages for one row (a NOT NULL column)."""
        loads = staticmethod(json.loads)
        JSONDecodeError = json.JSONDecodeError

        @staticmethod
        def dumps(obj, *args, **kwargs):
            if isinstance(obj, list) and any(isinstance(m, dict) and marker in str(m.get("content")) for m in obj):
                return None
            return json.dumps(obj, *args, **kwargs)

    before = counts(owner.store)
    monkeypatch.setattr(datasets_mod, "json", JsonOneRowBroken)
    with pytest.raises(TuneboardError):
        import_dataset(owner.store, accounts["engineer"], data, "atomic.jsonl", ImportOptions(name="atomic"))
    assert counts(owner.store) == before
    monkeypatch.undo()
    result = import_dataset(owner.store, accounts["engineer"], data, "atomic.jsonl", ImportOptions(name="atomic"))
    assert result.created and counts(owner.store)["examples"] == before["examples"] + 20


def test_failure_at_the_last_statement_rolls_everything_back(owner, accounts, monkeypatch):
    data = jsonl(_rows_for_atomicity("fine"))
    store = owner.store
    real = store.transaction
    written_before_failure = {}

    class FailOnAudit:
        def __init__(self, cur):
            self._cur = cur

        def __getattr__(self, name):
            return getattr(self._cur, name)

        def execute(self, sql, params=None):
            if "audit_log" in sql:
                written_before_failure["examples"] = self._cur.execute("SELECT count(*) FROM examples").fetchone()[0]
                raise RuntimeError("simulated crash after the examples were inserted")
            return self._cur.execute(sql, params or [])

    @contextmanager
    def failing_transaction():
        with real() as cur:
            yield FailOnAudit(cur)

    before = counts(store)
    monkeypatch.setattr(store, "transaction", failing_transaction)
    with pytest.raises(RuntimeError):
        import_dataset(store, accounts["engineer"], data, "crash.jsonl", ImportOptions(name="crash"))
    monkeypatch.undo()
    assert written_before_failure["examples"] == before["examples"] + 20  # the failure was mid-write
    assert counts(store) == before
    assert store.row("SELECT * FROM datasets WHERE name = 'crash'") is None
    assert import_dataset(store, accounts["engineer"], data, "crash.jsonl", ImportOptions(name="crash")).created


def test_oversized_input_is_refused(owner, accounts, demo_files):
    good, _ = demo_files
    data = good.read_bytes()
    assert len(data) > 100
    options = ImportOptions(max_bytes=100)
    report = validate(data, good.name, options).report
    assert [(p.code, p.file) for p in report.problems] == [("too_large", good.name)]
    assert report.valid == 0 and not report.ok
    before = counts(owner.store)
    with pytest.raises(DatasetError) as info:
        import_dataset(owner.store, accounts["engineer"], data, good.name, options)
    assert [p.code for p in info.value.problems] == ["too_large"]
    assert counts(owner.store) == before
    # exactly at the limit is fine
    small = jsonl([chat("tiny")])
    assert validate(small, "s.jsonl", ImportOptions(max_bytes=len(small))).report.ok


def test_empty_file_is_an_error(owner, accounts):
    report = validate(b"\n\n  \n", "empty.jsonl", ImportOptions()).report
    assert [p.code for p in report.errors] == ["empty"] and not report.ok
    before = counts(owner.store)
    with pytest.raises(DatasetError):
        import_dataset(owner.store, accounts["engineer"], b"", "empty.jsonl", ImportOptions())
    assert counts(owner.store) == before


def test_bad_options_are_invalid_input():
    for bad in (dict(split=(0.5, 0.5, 0.5)), dict(split=(0.0, 0.5, 0.5)), dict(max_seq_len=8),
                dict(near_duplicate_threshold=0.1), dict(name="Bad Name!")):
        with pytest.raises(InvalidInput):
            ImportOptions(**bad)
