"""Generation sets, owner side: which prompts, which variants, which decoding; start the job,
store what its worker reports, and read outputs, sanity flags and parity back.

`generate(...)` validates everything before anything is written, freezes the prompts into
the set (and the run folder), and launches `core.serving.worker`. Its `generated` events
land in `generations` exactly once (the ingest transaction), so a resumed set never has a
row twice. This module imports neither torch nor vLLM.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import audit, variants
from core.auth import Action, User, require
from core.config import Settings
from core.errors import InvalidInput, NotFound
from core.jobs import Jobs
from core.serving import checks
from core.serving.backends import PATH_HELP, PATHS, PROMPTS_FILE, Choices, Decoding
from core.store import Store, insert_rows
from core.variants import Variant

SOURCES = ("dataset", "file")
MAX_PROMPTS = 100_000


@dataclass
class GenerationSpec:
    """What to generate. `prompts` holds the chats (each a list of role/content messages)."""

    name: str
    variants: list[str]
    prompts: list[dict]  # {"messages": [...], "reference": str | None, "source_ref": str}
    source: dict[str, Any]
    decoding: Decoding = field(default_factory=Decoding)
    path: str = "auto"
    # A regular expression every output must match, enforced where the engine can (vLLM's structured
    # outputs); other paths generate freely. A judge run uses it so every answer ends with a verdict line.
    pattern: str = ""
    # Where an output's answer starts, the probability of each option (core.serving.backends.Choices),
    # stored with each output where the backend gives logprobs. A judge run asks for its verdict's.
    choices: Choices | None = None


def source_label(source: dict[str, Any]) -> str:
    """The name a generation set takes from its prompts' source when none is given."""
    return source.get("name") or f"{source.get('dataset')} {source.get('split')}"


# ---- variants -----------------------------------------------------------------------
def available_variants(store: Store, actor: User, base_model: str) -> list[Variant]:
    """The base, its adapters and merged copies, and registered external contenders."""
    require(actor, Action.GENERATE)
    return variants.servable_with(store, base_model)


def register_external(store: Store, actor: User, name: str, base_url: str, model: str, api_key_env: str = "",
                      system_prompt: str = "", few_shot: list | None = None, tasks: list[str] | None = None) -> str:
    """An OpenAI-compatible endpoint as a contender. Only the *name* of its key's variable is stored.
    A system prompt and few-shot examples make it a prompted contender (core.lifecycle.contenders)."""
    require(actor, Action.JOBS_RUN)
    system_prompt, few_shot = variants.check_prompt(system_prompt, few_shot or [])
    import re
    from urllib.parse import urlsplit

    problems = []
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        problems.append("name: use 1-64 letters, digits, '-' or '_'")
    url = urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        problems.append(f"base_url: {base_url!r} must be an http:// or https:// URL (e.g. https://host/v1)")
    elif url.username or url.password or url.query:
        # Credentials in a URL would be stored and shown: the key belongs in an environment variable.
        problems.append("base_url: remove the credentials or query string from the URL; put the key in an "
                        "environment variable and give its name as api_key_env")
    if not model.strip():
        problems.append("model: the model name the endpoint expects is required")
    if api_key_env and not re.fullmatch(r"[A-Z_][A-Z0-9_]{0,63}", api_key_env):
        problems.append("api_key_env: must be the NAME of an environment variable (upper case letters, digits, "
                        "'_'), never the key itself")
    if problems:
        raise InvalidInput("External contender: " + "; ".join(problems) + ".")
    variant_id = f"external:{name}"
    with store.transaction() as cur:
        variants.register(cur, variant_id, "external", name, base_url, "",
                          detail={"model": model, "api_key_env": api_key_env, "system_prompt": system_prompt,
                                  "few_shot": few_shot, "tasks": sorted(set(tasks or []))})
        audit.record(cur, actor, "contender", variant_id, f"external {model} at {base_url}; key from "
                                                           f"{api_key_env or 'no variable'}; {len(few_shot)} examples")
    return variant_id


def resolve_variants(store: Store, actor: User, ids: list[str], base_model: str) -> list[Variant]:
    known = {v.variant_id: v for v in available_variants(store, actor, base_model)}
    if not ids:
        raise InvalidInput("variants: choose at least one variant (e.g. base and an adapter).")
    unknown = [i for i in ids if i not in known]
    if unknown:
        other_base = variants.rows_by_id(store, unknown)
        hint = "".join(f" {r['variant_id']} belongs to base model {r['base_model']}, not {base_model}."
                       for r in other_base)
        raise InvalidInput(f"variants: unknown {', '.join(unknown)}.{hint} Known: {', '.join(known)}.")
    if len(set(ids)) != len(ids):
        raise InvalidInput("variants: a variant is listed twice.")
    missing = [known[i] for i in ids if (known[i].kind in ("adapter", "merged") or known[i].kind == "model" and
                                         known[i].path.startswith("/")) and not Path(known[i].path).exists()]
    if missing:
        raise InvalidInput("variants: files are gone for " + ", ".join(f"{v.variant_id} ({v.path})" for v in missing))
    return [known[i] for i in ids]


# ---- prompts ------------------------------------------------------------------------
def prompts_from_version(store: Store, actor: User, version_id: str, split: str = "test",
                         limit: int | None = None, samples: int = 1) -> tuple[list[dict], dict]:
    """A dataset version's split as prompts: each chat up to its last assistant answer (the reference).

    `samples` > 1 repeats each prompt that many times at consecutive prompt indices with the
    same source_ref (n samples per problem for pass@k); requests are seeded with seed + prompt
    index, so sampled repeats differ. Sampling needs temperature > 0 (checked by `generate`)."""
    from core.datasets import get_version

    require(actor, Action.GENERATE)
    if split not in ("train", "validation", "test"):
        raise InvalidInput(f"split: {split!r} is not one of train, validation, test.")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InvalidInput(f"samples: {samples!r} samples per prompt; give a whole number of at least 1.")
    version = get_version(store, actor, version_id)
    rows = store.rows("SELECT idx, messages FROM examples WHERE version_id = ? AND split = ? ORDER BY idx",
                      [version["version_id"], split])
    if not rows:
        raise InvalidInput(f"{version['dataset']} {version['version_id']} has no {split} examples.")
    prompts = []
    for row in rows[:limit] if limit else rows:
        chat = json.loads(row["messages"])
        last = max((i for i, m in enumerate(chat) if m["role"] == "assistant"), default=None)
        if last is None:
            continue
        prompt = {"messages": chat[:last], "reference": chat[last]["content"],
                  "source_ref": f"{version['version_id']}:{split}:{row['idx']}"}
        prompts += [dict(prompt) for _ in range(samples)]
    if len(prompts) > MAX_PROMPTS:
        raise InvalidInput(f"samples: {len(prompts) // samples} prompts x {samples} samples is {len(prompts)} "
                           f"prompts, more than {MAX_PROMPTS}; lower the samples or use a limit.")
    source = {"kind": "dataset", "dataset": version["dataset"], "version_id": version["version_id"], "split": split,
              "limit": limit, "samples": samples}
    return prompts, source


def prompts_from_file(data: bytes, name: str) -> tuple[list[dict], dict]:
    """An uploaded prompt list: `.txt` (one user prompt per line) or JSONL lines of
    {"messages": [...]} (a chat; a final assistant message becomes the reference) or
    {"prompt": "...", "reference": "..."}. Every bad line is named."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{name}: not UTF-8 text (byte {exc.start}); save it as UTF-8.") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    prompts, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        ref = f"{name}:{number}"
        if not name.endswith((".jsonl", ".json")):
            prompts.append({"messages": [{"role": "user", "content": line.strip()}], "reference": None,
                            "source_ref": ref})
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            problems.append(f"line {number}: not valid JSON ({exc.msg}); the file must be JSON Lines, one "
                            "object per line")
            continue
        if isinstance(record, dict) and isinstance(record.get("prompt"), str) and record["prompt"].strip():
            reference = record.get("reference")
            prompts.append({"messages": [{"role": "user", "content": record["prompt"]}],
                            "reference": reference if isinstance(reference, str) else None, "source_ref": ref})
        elif isinstance(record, dict) and isinstance(record.get("messages"), list) and record["messages"]:
            chat = record["messages"]
            bad = [i for i, m in enumerate(chat) if not (isinstance(m, dict) and m.get("role") in
                                                         ("system", "user", "assistant")
                                                         and isinstance(m.get("content"), str))]
            if bad:
                problems.append(f"line {number}: messages[{bad[0]}] needs a role (system, user or assistant) "
                                "and a text content")
                continue
            reference = None
            if chat[-1]["role"] == "assistant":
                reference = chat[-1]["content"]
                chat = chat[:-1]
            if not chat or chat[-1]["role"] != "user":
                problems.append(f"line {number}: the chat must end with a user message (the prompt)")
                continue
            prompts.append({"messages": chat, "reference": reference, "source_ref": ref})
        else:
            problems.append(f'line {number}: expected {{"prompt": "..."}} or {{"messages": [...]}}')
        if len(problems) >= 20:
            problems.append("(stopped at 20 problems)")
            break
    if problems:
        raise InvalidInput(f"{name}: " + "; ".join(problems) + ". Fix these lines and upload again.")
    if not prompts:
        raise InvalidInput(f"{name}: no prompts found (one per line).")
    return prompts, {"kind": "file", "name": name}


# ---- starting a set -----------------------------------------------------------------
def serving_settings(settings: Settings) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(settings.serving)


def vllm_missing() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed here (`pip install -e '.[cpu]'`, or `.[cuda]` on a GPU host)"
    return None


def generate(store: Store, jobs: Jobs, settings: Settings, actor: User, spec: GenerationSpec,
             base_model: str | None = None) -> str:
    """Validate, freeze the prompts, launch the worker. Returns the set id (= its job id)."""
    require(actor, Action.GENERATE)
    base_model = base_model or settings.base_model
    problems = []
    if not spec.name.strip():
        problems.append("name: give the set a name")
    path = spec.path if spec.path != "auto" else settings.serving.path  # the config may name one
    if path not in ("auto",) + PATHS:
        problems.append(f"path: {spec.path!r} is not one of auto, {', '.join(PATHS)}")
    elif path.startswith("vllm") and vllm_missing():
        problems.append(f"path: {path} needs vLLM, but {vllm_missing()}; choose transformers or auto"
                        + (" (serving.path in the config names it)" if spec.path == "auto" else ""))
    if not spec.prompts:
        problems.append("prompts: the prompt set is empty")
    elif len(spec.prompts) > MAX_PROMPTS:
        problems.append(f"prompts: {len(spec.prompts)} is more than {MAX_PROMPTS}; split the set")
    samples = spec.source.get("samples") or 1
    if samples > 1 and spec.decoding.greedy:
        problems.append(f"samples: {samples} samples per prompt need sampling, but temperature 0 is greedy and "
                        "would give the same answer every time; set a temperature above 0 (e.g. 0.8) for pass@k, "
                        "or use 1 sample")
    if problems:
        raise InvalidInput("Generation set: " + "; ".join(problems) + ".")
    variants = resolve_variants(store, actor, list(spec.variants), base_model)
    for v in variants:
        if v.kind == "external" and v.api_key_env and not os.environ.get(v.api_key_env):
            raise InvalidInput(f"{v.variant_id}: its key is read from ${v.api_key_env}, which is not set in the "
                               "dashboard's environment; export it and restart, or edit the contender.")
    config = {"name": spec.name, "base_model": base_model, "variants": [v.to_dict() for v in variants],
              "decoding": spec.decoding.to_dict(), "path": path,
              # Outputs held to a pattern are not comparable with transformers' free ones: no parity check then.
              "serving": {**serving_settings(settings),
                          **({"pattern": spec.pattern, "parity_sample": 0} if spec.pattern else {}),
                          **({"choices": spec.choices.to_dict()} if spec.choices else {})},
              "cache_dir": str(settings.serving_dir),
              "source": spec.source, "n_prompts": len(spec.prompts)}
    numbered = [{"prompt_idx": i, **p} for i, p in enumerate(spec.prompts)]

    def write_prompts(run_dir: Path) -> None:
        (run_dir / PROMPTS_FILE).write_text("".join(json.dumps({"prompt_idx": p["prompt_idx"],
                                                                "messages": p["messages"]}) + "\n"
                                                    for p in numbered), encoding="utf-8")

    def write_rows(cur, set_id: str) -> None:
        """The set and its prompts, committed with the job row before the worker starts."""
        import pyarrow as pa

        cur.execute("INSERT INTO generation_sets (set_id, name, source, base_model, variants, decoding, "
                    "requested_path, n_prompts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [set_id, spec.name, json.dumps(spec.source), base_model, json.dumps(config["variants"]),
                     json.dumps(config["decoding"]), config["path"], len(numbered)])
        batch = pa.table({"set_id": [set_id] * len(numbered),
                          "prompt_idx": pa.array([p["prompt_idx"] for p in numbered], pa.int32()),
                          "messages": [json.dumps(p["messages"]) for p in numbered],
                          "reference": pa.array([p.get("reference") for p in numbered], pa.string()),
                          "source_ref": pa.array([p.get("source_ref") for p in numbered], pa.string())})
        cur.register("prompt_batch", batch)
        cur.execute("INSERT INTO generation_prompts SELECT * FROM prompt_batch")
        cur.unregister("prompt_batch")

    return jobs.submit(actor, "generate", config, prepare=write_prompts, record=write_rows)


def _on_generate_event(cur, job: dict, type_: str, payload: dict) -> None:
    """Runs in the ingest transaction: exactly once per event."""
    set_id = job["job_id"]
    if type_ == "generated":
        decoding = json.dumps(json.loads(job["config"])["decoding"], sort_keys=True)
        insert_rows(cur, "generations", ["set_id", "prompt_idx", "variant_id", "output", "tokens_in", "tokens_out",
                                         "finish_reason", "latency_ms", "backend", "decoding", "choices"],
                    [[set_id, r["prompt_idx"], r["variant_id"], r["text"], r["tokens_in"], r["tokens_out"],
                      r["finish_reason"], r["latency_ms"], r["backend"], decoding,
                      json.dumps(r["choices"]) if r.get("choices") else None] for r in payload["rows"]],
                    verb="INSERT OR IGNORE")
    elif type_ == "plan":
        cur.execute("UPDATE generation_sets SET chosen_path = ?, path_reason = ?, plan = ? WHERE set_id = ?",
                    [payload["path"], payload["reason"],
                     json.dumps({"estimates": payload.get("estimates"), "costs": payload.get("costs")}), set_id])
    elif type_ == "parity":
        detail = {k: payload.get(k) for k in ("exact_rate", "mean_length", "first_divergence")}
        cur.execute("INSERT OR REPLACE INTO parity_checks (set_id, variant_id, backend, reference, n, exact, "
                    "mean_common_prefix, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [set_id, payload["variant_id"], payload["backend"], payload["reference"], payload["n"],
                     payload["exact"], payload["mean_common_prefix"], json.dumps(detail)])


# ---- reading ------------------------------------------------------------------------
def list_sets(store: Store, actor: User) -> list[dict]:
    require(actor, Action.JOBS_VIEW)
    return store.rows("""SELECT g.*, j.status, j.error, j.created_by, j.started_at, j.finished_at,
                                (SELECT count(*) FROM generations o WHERE o.set_id = g.set_id) AS n_outputs
                         FROM generation_sets g JOIN jobs j ON j.job_id = g.set_id ORDER BY g.created_at DESC""")


def get_set(store: Store, actor: User, set_id: str) -> dict:
    require(actor, Action.JOBS_VIEW)
    row = store.row("""SELECT g.*, j.status, j.error, j.created_by, j.started_at, j.finished_at, j.run_dir
                       FROM generation_sets g JOIN jobs j ON j.job_id = g.set_id WHERE g.set_id = ?""", [set_id])
    if row is None:
        raise NotFound(f"No generation set {set_id!r}; see `tuneboard generate --help`.")
    _decoded([row], "source", "variants", "decoding", "plan")
    row["n_outputs"] = store.scalar("SELECT count(*) FROM generations WHERE set_id = ?", [set_id])
    return row


def _decoded(rows: list[dict], *columns: str) -> list[dict]:
    """Rows with their JSON columns parsed (the store keeps JSON as text)."""
    for r in rows:
        for c in columns:
            r[c] = json.loads(r[c]) if r[c] else None
    return rows


def prompts_of(store: Store, actor: User, set_id: str) -> dict[int, dict]:
    require(actor, Action.JOBS_VIEW)
    rows = _decoded(store.rows("SELECT * FROM generation_prompts WHERE set_id = ? ORDER BY prompt_idx", [set_id]),
                    "messages")
    return {r["prompt_idx"]: r for r in rows}


def outputs(store: Store, actor: User, set_id: str) -> list[dict]:
    """Every stored output of a set, labeled by variant (not blind: engineers and leads only)."""
    require(actor, Action.JOBS_VIEW)
    return _decoded(store.rows("SELECT * FROM generations WHERE set_id = ? ORDER BY prompt_idx, variant_id",
                               [set_id]), "decoding", "choices")


def sanity(store: Store, actor: User, set_id: str) -> list[checks.Sanity]:
    prompts = {i: p["messages"] for i, p in prompts_of(store, actor, set_id).items()}
    return checks.sanity(outputs(store, actor, set_id), prompts)


def parity_results(store: Store, actor: User, set_id: str) -> list[dict]:
    require(actor, Action.JOBS_VIEW)
    return _decoded(store.rows("SELECT * FROM parity_checks WHERE set_id = ? ORDER BY variant_id", [set_id]),
                    "detail")


def parity_note(record: dict) -> str:
    """Why a set has no parity results (shown instead of them)."""
    local = [v for v in record["variants"] if v["kind"] != "external"]
    if not local:
        return "Only external contenders: there is no local model to compare backends on."
    if record["decoding"]["temperature"] > 0:
        return "Parity needs greedy decoding (temperature 0); this set samples."
    if record["chosen_path"] == "transformers":
        return "Generated by transformers + PEFT itself: there is no second backend to compare."
    if record["status"] in ("queued", "running"):
        return "The parity check runs after the outputs are generated."
    if record["status"] != "succeeded":
        return f"The set is {record['status']}; resume it to finish generating and run the parity check."
    return "No parity check ran (serving.parity_sample is 0)."


def throughput(store: Store, actor: User, set_id: str) -> list[dict]:
    """Per variant: outputs, tokens out, and tokens per second of the calls that made them."""
    require(actor, Action.JOBS_VIEW)
    return store.rows("""SELECT variant_id, backend, count(*) AS outputs, sum(tokens_out) AS tokens_out,
                                avg(tokens_out) AS mean_tokens_out
                         FROM generations WHERE set_id = ? GROUP BY variant_id, backend ORDER BY variant_id""",
                      [set_id])


__all__ = ["GenerationSpec", "Decoding", "Variant", "PATHS", "PATH_HELP", "generate", "available_variants",
           "register_external", "resolve_variants", "prompts_from_version", "prompts_from_file", "list_sets",
           "get_set", "prompts_of", "outputs", "sanity", "parity_results", "throughput", "SOURCES"]
