"""Validation: every problem in a dataset, each naming file, line and field.

Errors (the example cannot be trained on) block an import; warnings (duplicates, near
duplicates, truncation, leakage) are reported and the import goes ahead. Exact duplicates
are dropped (the first occurrence is kept) so that one example can never sit in two splits.

Near-duplicates: MinHash (datasketch, 128 permutations) over lower-cased word 3-gram
shingles of the non-system messages; MinHash LSH proposes candidate pairs at a threshold
0.2 below the configured one, and each candidate is confirmed by its exact Jaccard
similarity (benchmarks/bench_near_duplicates.py measures recall against all pairs).
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from core.datasets.formats import SPLITS, RawExample
from core.errors import Problem

ROLES = ("system", "user", "assistant")
NUM_PERM = 128
LSH_SLACK = 0.2  # candidates from LSH at threshold - 0.2, confirmed exactly
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Example:
    line: int
    messages: list[dict[str, str]]
    split: str | None = None
    hash: str = ""
    n_tokens: int | None = None
    tests: str | None = None
    tag: str | None = None

    @property
    def key(self) -> str:
        return example_key(self.hash, self.tag)


def example_key(hash_: str, tag: str | None) -> str:
    """What a version's content hash is made of, per row: its hash, and its tag where it has one (a tag is
    data: a changed tag makes a new version; rows without tags keep the versions' ids they always had)."""
    return hash_ if tag is None else f"{hash_} tag={tag}"


def content_hash(keys) -> str:
    """A version's content hash: of its rows' `example_key`s, in any order."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


@dataclass
class Report:
    file: str
    format: str
    rows: int = 0
    valid: int = 0
    problems: list[Problem] = field(default_factory=list)
    duplicates: int = 0
    near_duplicates: int = 0
    tokens: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    leakage: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors and self.valid > 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["errors"] = len(self.errors)
        out["warnings"] = len(self.warnings)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Report":
        known = {k: data[k] for k in ("file", "format", "rows", "valid", "duplicates", "near_duplicates",
                                      "tokens", "splits", "leakage") if k in data}
        return cls(**known, problems=[Problem(**p) for p in data.get("problems", [])])


def example_hash(messages: list[dict[str, str]], tests: str | None = None) -> str:
    """Content hash of an example. Without tests it is the hash of the messages alone, as it
    always was, so versions imported before tests existed keep their ids."""
    pairs = [[m["role"], m["content"]] for m in messages]
    canonical = json.dumps(pairs if tests is None else [pairs, tests], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _tests_of(record: Any, file: str, line: int) -> tuple[str | None, list[Problem]]:
    """A row's `tests`: Python code as text; missing or blank (an empty CSV cell) means none."""
    tests = record.get("tests") if isinstance(record, dict) else None
    if tests is None or (isinstance(tests, str) and not tests.strip()):
        return None, []
    if not isinstance(tests, str):
        return None, [Problem("bad_type", f"'tests' must be Python test code as text (e.g. \"assert f(2) == 4\"), "
                              f"got {type(tests).__name__}", file, line, "tests")]
    if not _is_text(tests):
        return None, [Problem("non_utf8", "'tests' holds an unpaired surrogate escape (\\ud800-\\udfff), which is "
                              "not text", file, line, "tests")]
    return tests, []


TAG_CHARS = 100


def _tag_of(record: Any, file: str, line: int) -> tuple[str | None, list[Problem]]:
    """A row's `tag` (or, where it has none, `category`): the group it is reported in, e.g. by the judge's
    calibration; text or a number, at most TAG_CHARS characters; missing or blank means none."""
    if not isinstance(record, dict):
        return None, []
    field = "tag" if record.get("tag") not in (None, "") else "category"
    value = record.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, []
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None, [Problem("bad_type", f"'{field}' must be a short text such as \"billing\" (the group this row "
                              f"is reported in), got {type(value).__name__}", file, line, field)]
    value = str(value).strip()
    if len(value) > TAG_CHARS or not _is_text(value):
        return None, [Problem("bad_value", f"'{field}' must be text of at most {TAG_CHARS} characters, got "
                              f"{len(value)}", file, line, field)]
    return value, []


def _messages_from(record: Any, file: str, line: int) -> tuple[list | None, list[Problem]]:
    """Accept chat or prompt/completion shape; say exactly what is wrong otherwise."""
    if not isinstance(record, dict):
        return None, [Problem("not_an_object", f"expected a JSON object, got {type(record).__name__}", file, line)]
    if "messages" in record:
        return record["messages"], []
    if "prompt" in record or "completion" in record:
        problems = [Problem("missing_field", f"'{k}' is missing; prompt/completion rows need both", file, line, k)
                    for k in ("prompt", "completion") if k not in record]
        if problems:
            return None, problems
        messages = []
        if record.get("system") not in (None, ""):
            messages.append({"role": "system", "content": record["system"]})
        messages += [{"role": "user", "content": record["prompt"]},
                     {"role": "assistant", "content": record["completion"]}]
        return messages, []
    keys = ", ".join(sorted(map(str, record))) or "none"
    return None, [Problem("missing_field", f"no 'messages' (or 'prompt' and 'completion') field; found keys: "
                          f"{keys}", file, line, "messages")]


def _is_text(value: str) -> bool:
    """False for strings with lone surrogates (JSON "\\ud800" decodes to one): they cannot be encoded."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_messages(messages: Any, file: str, line: int) -> list[Problem]:
    """Structure and order of one conversation."""
    if not isinstance(messages, list):
        return [Problem("bad_type", f"'messages' must be a list of objects, got {type(messages).__name__}",
                        file, line, "messages")]
    if not messages:
        return [Problem("empty_conversation", "'messages' is empty", file, line, "messages")]
    problems: list[Problem] = []
    roles: list[str | None] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            problems.append(Problem("bad_type", f"each message must be an object, got {type(msg).__name__}",
                                    file, line, where))
            roles.append(None)
            continue
        role = msg.get("role")
        if role is None:
            problems.append(Problem("missing_role", "message has no 'role'; use system, user or assistant",
                                    file, line, f"{where}.role"))
        elif role not in ROLES:
            problems.append(Problem("unknown_role", f"role {role!r} is not system, user or assistant",
                                    file, line, f"{where}.role"))
        content = msg.get("content")
        if content is None:
            problems.append(Problem("missing_content", "message has no 'content'", file, line, f"{where}.content"))
        elif not isinstance(content, str):
            problems.append(Problem("bad_type", f"'content' must be text, got {type(content).__name__}",
                                    file, line, f"{where}.content"))
        elif not content.strip():
            problems.append(Problem("empty_content", "'content' is empty", file, line, f"{where}.content"))
        elif not _is_text(content):
            problems.append(Problem("non_utf8", "'content' holds an unpaired surrogate escape (\\ud800-\\udfff), "
                                    "which is not text", file, line, f"{where}.content"))
        roles.append(role if role in ROLES else None)
    if problems:
        return problems
    # Order: optional system first, then user/assistant alternating, ending with the assistant.
    body = roles[1:] if roles[0] == "system" else roles
    for i, role in enumerate(roles):
        if role == "system" and i > 0:
            problems.append(Problem("bad_order", "a system message may only come first", file, line,
                                    f"messages[{i}].role"))
    offset = len(roles) - len(body)
    for i, role in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if role != "system" and role != expected:
            problems.append(Problem("bad_order", f"expected a {expected} message here (turns alternate user, "
                                    f"assistant), got {role}", file, line, f"messages[{i + offset}].role"))
            break
    if "assistant" not in roles:
        problems.append(Problem("missing_assistant", "no assistant message: there is nothing to learn from",
                                file, line, "messages"))
    elif roles[-1] != "assistant":
        problems.append(Problem("ends_without_assistant", "the last message must be the assistant's answer",
                                file, line, f"messages[{len(roles) - 1}].role"))
    return problems


def normalize(raw: list[RawExample], file: str) -> tuple[list[Example], list[Problem]]:
    examples, problems = [], []
    for item in raw:
        messages, found = _messages_from(item.record, file, item.line)
        if not found:  # `messages` may itself be null: check_messages says it is not a list
            found += check_messages(messages, file, item.line)
        split = item.record.get("split") if isinstance(item.record, dict) else None
        if split is not None and split not in SPLITS:
            found.append(Problem("bad_split", f"split {split!r} must be one of {', '.join(SPLITS)}",
                                 file, item.line, "split"))
        tests, bad_tests = _tests_of(item.record, file, item.line)
        tag, bad_tag = _tag_of(item.record, file, item.line)
        found += bad_tests + bad_tag
        if found:
            problems += found
            continue
        clean = [{"role": m["role"], "content": m["content"]} for m in messages]
        examples.append(Example(item.line, clean, split, example_hash(clean, tests), tests=tests, tag=tag))
    return examples, problems


def drop_exact_duplicates(examples: list[Example], file: str) -> tuple[list[Example], list[Problem]]:
    first: dict[str, int] = {}
    kept, problems = [], []
    for ex in examples:
        if ex.hash in first:
            problems.append(Problem("duplicate", f"exact duplicate of line {first[ex.hash]}; only the first is kept",
                                    file, ex.line, severity="warning"))
            continue
        first[ex.hash] = ex.line
        kept.append(ex)
    return kept, problems


def _shingles(messages: list[dict[str, str]], n: int = 3) -> set[bytes]:
    words = _WORD.findall(" ".join(m["content"] for m in messages if m["role"] != "system").lower())
    if len(words) < n:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)}


@dataclass
class Signature:
    """An example's MinHash (for LSH candidates) and its shingles (to confirm exactly)."""

    minhash: Any
    shingles: set[bytes]


def minhashes(examples: list[Example]) -> list[Signature]:
    from datasketch import MinHash

    out = []
    for ex in examples:
        shingles = _shingles(ex.messages)
        mh = MinHash(num_perm=NUM_PERM, seed=1)
        mh.update_batch(list(shingles))
        out.append(Signature(mh, shingles))
    return out


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicate_pairs(signatures: list[Signature], threshold: float, left: range | list[int] | None = None,
                         right: list[int] | None = None) -> list[tuple[int, int, float]]:
    """Pairs (i, j, Jaccard) with exact shingle Jaccard >= threshold.

    LSH proposes candidates at a lower threshold (its banding misses many pairs just above
    the one it is built for); each candidate is then confirmed on the exact shingle sets.
    With `left`/`right`, only pairs with one side in each are returned (leakage checks).
    """
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=max(0.1, threshold - LSH_SLACK), num_perm=NUM_PERM)
    pool = list(range(len(signatures))) if right is None else right
    for i in pool:
        lsh.insert(i, signatures[i].minhash)
    queries = list(range(len(signatures))) if left is None else list(left)
    pairs: set[tuple[int, int]] = set()
    for i in queries:
        for j in lsh.query(signatures[i].minhash):
            if j != i:
                pairs.add((min(i, j), max(i, j)) if right is None else (i, j))
    out = []
    for i, j in sorted(pairs):
        sim = jaccard(signatures[i].shingles, signatures[j].shingles)
        if sim >= threshold:
            out.append((i, j, round(sim, 3)))
    return out


def token_lengths(examples: list[Example], count: Callable[[list[dict]], int] | None) -> None:
    if count is None:
        return
    for ex in examples:
        ex.n_tokens = count(ex.messages)


def token_stats(examples: list[Example], max_seq_len: int, file: str, tokenizer_name: str | None
                ) -> tuple[dict[str, Any], list[Problem]]:
    lengths = [ex.n_tokens for ex in examples if ex.n_tokens is not None]
    if not lengths:
        return {"tokenizer": tokenizer_name, "available": False}, []
    ordered = sorted(lengths)
    pct = lambda q: ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]  # noqa: E731
    over = [ex for ex in examples if ex.n_tokens is not None and ex.n_tokens > max_seq_len]
    problems = [Problem("truncated", f"{ex.n_tokens} tokens with the chat template; will be cut at max_seq_len "
                        f"{max_seq_len}", file, ex.line, severity="warning") for ex in over]
    stats = {"tokenizer": tokenizer_name, "available": True, "min": ordered[0], "median": pct(0.5),
             "mean": round(statistics.fmean(ordered), 1), "p95": pct(0.95), "max": ordered[-1],
             "total": sum(ordered), "max_seq_len": max_seq_len, "truncated": len(over)}
    return stats, problems
