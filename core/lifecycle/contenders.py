"""Contenders: would a newer base model, or the base with good prompting, beat our fine-tune?

A contender is a variant like any other, so the same test split, metrics, probe suite and
blind pairs run against it, and pipelines include the contenders of their task:

- **another model** (a hub id or a local folder): kind `model`, served by an engine of its own
  with its own tokenizer and chat template;
- **a prompted base**: the base model with a system prompt and few-shot examples (kind
  `prompted`, served as the base with the prompt put in front of every chat);
- an **OpenAI-compatible endpoint** (core.serving.register_external), optionally prompted.

The prompt is part of the variant (stored with it and copied into every generation set that
uses it), so a result always says what the contender was told. Variants are stored by
core.variants; this module holds the contender rules and their role checks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from core import audit, variants
from core.auth import Action, User, require
from core.errors import InvalidInput
from core.store import Store

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def read_few_shot(data: bytes, name: str) -> list[list[str]]:
    """Few-shot examples from a JSONL file: one {"user": ..., "assistant": ...} object per line."""
    shots = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InvalidInput(f"{name} line {number}: not JSON ({exc.msg}); each line is "
                               '{"user": "...", "assistant": "..."}.') from None
        if not isinstance(row, dict) or set(row) != {"user", "assistant"}:
            raise InvalidInput(f"{name} line {number}: give exactly the keys user and assistant.")
        shots.append([row["user"], row["assistant"]])
    return variants.check_prompt("", shots)[1]


def register(store: Store, actor: User, name: str, base_model: str, model: str = "", system_prompt: str = "",
             few_shot: list | None = None, tasks: list[str] | None = None) -> str:
    """Register a contender (`contender:NAME`): another model, or the base with a prompt. Returns its id."""
    require(actor, Action.JOBS_RUN)
    if not NAME.fullmatch(name or ""):
        raise InvalidInput("name: use 1-64 letters, digits, '-' or '_'.")
    system_prompt, shots = variants.check_prompt(system_prompt, few_shot or [])
    model = (model or "").strip()
    if model and (model.startswith(("/", ".", "~")) or Path(model).exists()):
        folder = Path(model).expanduser()
        if not (folder / "config.json").exists():
            raise InvalidInput(f"model: {model} is not a model folder (no config.json); give a local model folder "
                               "or a hub id such as HuggingFaceTB/SmolLM2-360M-Instruct.")
        model = str(folder.resolve())
    same_base = not model or model == base_model or (Path(model).exists() and Path(base_model).exists()
                                                     and Path(model).resolve() == Path(base_model).resolve())
    if same_base and not (system_prompt or shots):
        raise InvalidInput("A contender of the base model needs a system prompt or few-shot examples (without them "
                           "it is the base itself).")
    known = {r["dataset"] for r in store.rows("SELECT DISTINCT dataset FROM dataset_versions")}
    unknown = sorted(set(tasks or []) - known)
    if unknown:
        raise InvalidInput(f"tasks: no dataset named {', '.join(unknown)}; known: {', '.join(sorted(known)) or 'none'}.")
    kind = "prompted" if same_base else "model"
    detail = {"system_prompt": system_prompt, "few_shot": shots, "tasks": sorted(set(tasks or []))}
    variant_id = f"contender:{name}"
    with store.transaction() as cur:
        variants.register(cur, variant_id, kind, name, base_model if same_base else model, base_model,
                          detail=detail)
        audit.record(cur, actor, "contender", variant_id, f"{kind} {model or base_model}; {len(shots)} examples; "
                                                 f"system prompt {'yes' if system_prompt else 'no'}")
    return variant_id


def contenders(store: Store, actor: User) -> list[dict]:
    """Registered contenders (models, prompted bases, endpoints) with their prompts."""
    require(actor, Action.JOBS_VIEW)
    rows = variants.contender_rows(store)
    for r in rows:
        r["detail"] = variants.detail(r)
    return rows


def remove(store: Store, actor: User, variant_id: str) -> None:
    """Forget a contender (its stored outputs and results stay, labelled by its id)."""
    require(actor, Action.JOBS_RUN)
    row = variants.get_row(store, variant_id)
    if not row or row["kind"] not in variants.CONTENDER_KINDS:
        raise InvalidInput(f"{variant_id} is not a registered contender.")
    with store.transaction() as cur:
        variants.remove(cur, variant_id)
        audit.record(cur, actor, "contender.remove", variant_id)
