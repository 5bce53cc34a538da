"""Model variants: what can answer a prompt, and the one module that reads and writes them.

A variant is the base model, an adapter of it (a run's, or one of its kept checkpoints), a
merged copy, another model (kind `model`, its own engine), the base with a prompt (kind
`prompted`) or an OpenAI-compatible endpoint (kind `external`). `Variant` is what flows
through a generation set and its backends; the `model_variants` table is where registered
ones are kept, and only this module touches it (tests/test_architecture.py holds that).

Reads take a `Store` or a cursor (the caller's transaction) and return rows as stored: `detail`
is the JSON text of the column (`detail(row)` parses it). `register` inserts or replaces a
variant; role checks stay with the callers (`core.auth.require` first in each guarded function).
This module imports neither torch, vLLM nor duckdb: workers read `Variant` too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from core.errors import InvalidInput

if TYPE_CHECKING:
    import duckdb

    from core.store import Store

    Source = Store | duckdb.DuckDBPyConnection

CONTENDER_KINDS = ("model", "prompted", "external")  # registered to compete with a fine-tune
FINE_TUNED_KINDS = ("adapter", "merged")             # what a training run (or a merge of it) leaves
MAX_SHOTS = 20


@dataclass(frozen=True)
class Variant:
    """One contender in a generation set."""

    variant_id: str          # "base", "adapter:<run>", "merged:<run>", "external:<name>", "contender:<name>"
    kind: str                # base | adapter | merged | external | model (another model: its own engine)
    name: str
    path: str = ""           # model folder or hub id, adapter folder, or an endpoint's base URL
    model: str = ""          # external: the model name the endpoint expects
    api_key_env: str = ""    # external: the environment variable holding its key (never the key)
    system_prompt: str = ""  # a prompted contender's system prompt (replaces the prompt's own)
    few_shot: tuple = ()     # a prompted contender's examples: (user, assistant) pairs before the prompt

    def __post_init__(self):
        object.__setattr__(self, "few_shot", tuple(tuple(pair) for pair in self.few_shot))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def prompted(self, messages: tuple) -> tuple:
        """The chat this variant answers: its system prompt and few-shot turns, then the prompt's own
        turns (a system message of the prompt is replaced by the variant's, when it has one)."""
        if not self.system_prompt and not self.few_shot:
            return messages
        turns = [m for m in messages if not (self.system_prompt and m["role"] == "system")]
        head = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        if turns and turns[0]["role"] == "system":
            head, turns = head + turns[:1], turns[1:]
        shots = [{"role": role, "content": text} for user, answer in self.few_shot
                 for role, text in (("user", user), ("assistant", answer))]
        return tuple(head + shots + turns)


def base_variant(base_model: str) -> Variant:
    return Variant("base", "base", f"base ({Path(base_model).name or base_model})", base_model)


def same_model(a: str, b: str) -> bool:
    """The same model: the same id, or two paths to the same folder."""
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def check_prompt(system_prompt: str, few_shot: list) -> tuple[str, list[list[str]]]:
    """A variant's prompt as stored: the system text and (user, assistant) pairs; problems name the example."""
    shots: list[list[str]] = []
    for i, shot in enumerate(few_shot or [], start=1):
        if isinstance(shot, dict):
            pair = [shot.get("user"), shot.get("assistant")]
        elif isinstance(shot, (list, tuple)) and len(shot) == 2:
            pair = list(shot)
        else:
            raise InvalidInput(f"few_shot example {i}: give a user message and the assistant's answer, e.g. "
                               '{"user": "...", "assistant": "..."}.')
        if not all(isinstance(x, str) and x.strip() for x in pair):
            raise InvalidInput(f"few_shot example {i}: both the user message and the answer must be non-empty text.")
        shots.append(pair)
    if len(shots) > MAX_SHOTS:
        raise InvalidInput(f"few_shot: {len(shots)} examples; at most {MAX_SHOTS} (each one lengthens every prompt).")
    return (system_prompt or "").strip(), shots


def detail(row: dict) -> dict[str, Any]:
    """A stored row's `detail` column, parsed (an empty dict when it has none)."""
    return json.loads(row["detail"] or "{}")


def _is_store(source: Source) -> bool:
    """A `Store` (opens its own cursor or transaction), not a cursor of the caller's transaction."""
    return hasattr(source, "transaction")


# ---- writes -------------------------------------------------------------------------
def register(target: Source, variant_id: str, kind: str, name: str, path: str, base_model: str, *,
             job_id: str | None = None, detail: dict | None = None, keep_existing: bool = False) -> str:
    """Store a variant and return its id. A variant of the same id is replaced (and sorts as new), or,
    with `keep_existing`, left as it is (an event ingested again registers nothing twice). Runs in the
    caller's transaction when `target` is a cursor, else in a transaction of its own."""
    if not _is_store(target):
        _write(target, variant_id, kind, name, path, base_model, job_id, detail, keep_existing)
        return variant_id
    with target.transaction() as cur:
        _write(cur, variant_id, kind, name, path, base_model, job_id, detail, keep_existing)
    return variant_id


def _write(cur, variant_id: str, kind: str, name: str, path: str, base_model: str, job_id: str | None,
           detail: dict | None, keep_existing: bool) -> None:
    values = [variant_id, kind, name, path, base_model, job_id, None if detail is None else json.dumps(detail)]
    if keep_existing:
        cur.execute("INSERT OR IGNORE INTO model_variants (variant_id, kind, name, path, base_model, job_id, "
                    "detail) VALUES (?, ?, ?, ?, ?, ?, ?)", values)
        return
    cur.execute("DELETE FROM model_variants WHERE variant_id = ?", [variant_id])
    cur.execute("INSERT INTO model_variants (variant_id, kind, name, path, base_model, job_id, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", values)


def remove(target: Source, variant_id: str) -> None:
    """Forget a variant (outputs and results that name it stay)."""
    target.execute("DELETE FROM model_variants WHERE variant_id = ?", [variant_id])  # a Store or a cursor


# ---- reads --------------------------------------------------------------------------
def _rows(source: Source, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    if _is_store(source):
        return source.rows(sql, params)
    result = source.execute(sql, params or [])
    cols = [d[0] for d in result.description]
    return [dict(zip(cols, row)) for row in result.fetchall()]


def get_row(source: Source, variant_id: str) -> dict[str, Any] | None:
    """The stored variant of that id, or None."""
    found = _rows(source, "SELECT * FROM model_variants WHERE variant_id = ?", [variant_id])
    return found[0] if found else None


def rows_newest_first(source: Source) -> list[dict[str, Any]]:
    """Every stored variant, newest first."""
    return _rows(source, "SELECT * FROM model_variants ORDER BY created_at DESC")


def rows_by_id(source: Source, variant_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The stored variants among `variant_ids` (ids not stored, such as "base", are left out)."""
    return _rows(source, "SELECT * FROM model_variants WHERE variant_id IN (SELECT unnest(?))", [list(variant_ids)])


def rows_of_run(source: Source, run_id: str) -> list[dict[str, Any]]:
    """The variants a training run left (its adapter or model, checkpoints, merged copies), oldest first."""
    return _rows(source, "SELECT * FROM model_variants WHERE job_id = ? ORDER BY created_at, variant_id", [run_id])


def contender_rows(source: Source) -> list[dict[str, Any]]:
    """Registered contenders (other models, prompted bases, endpoints), oldest first."""
    return _rows(source, "SELECT * FROM model_variants WHERE kind IN ('model', 'prompted', 'external') "
                         "ORDER BY created_at")


def fine_tuned_of_runs(source: Source, run_ids: Iterable[str]) -> dict[str, str]:
    """Per run, the id of its fine-tuned variant (the least id of its adapters and merged copies)."""
    return {r["job_id"]: r["variant_id"] for r in _rows(
        source, "SELECT job_id, min(variant_id) AS variant_id FROM model_variants WHERE job_id IN (SELECT unnest(?)) "
                "AND kind IN ('adapter', 'merged') GROUP BY job_id", [list(run_ids)])}


def servable_with(source: Source, base_model: str) -> list[Variant]:
    """What a generation set over `base_model` may hold: the base, its adapters and merged copies, its
    prompted contenders, other models and external endpoints (each whatever the base), newest first."""
    out = [base_variant(base_model)]
    for row in rows_newest_first(source):
        info = detail(row)
        prompt = {"system_prompt": info.get("system_prompt", ""), "few_shot": info.get("few_shot", ())}
        if row["kind"] == "external":
            out.append(Variant(row["variant_id"], "external", row["name"], row["path"], info.get("model", ""),
                               info.get("api_key_env", ""), **prompt))
        elif row["kind"] == "model":  # another model: its own engine, whatever the base
            out.append(Variant(row["variant_id"], "model", row["name"], row["path"], **prompt))
        elif row["kind"] == "prompted" and same_model(row["base_model"], base_model):
            out.append(Variant(row["variant_id"], "base", row["name"], base_model, **prompt))
        elif row["kind"] in FINE_TUNED_KINDS and same_model(row["base_model"], base_model):
            out.append(Variant(row["variant_id"], row["kind"], row["name"], row["path"]))
    return out
