"""The generation worker: `python -m core.serving.worker RUN_DIR`.

Reads `config.json` (base model, variants, decoding, requested path, serving settings) and
`prompts.jsonl` from the run folder, generates every (prompt, variant) pair not generated
yet, and reports each chunk of outputs as a `generated` event; the owner stores them. A
resumed worker reads its own earlier events to skip what is done. Local variants go
through the chosen path (core.serving.calibration); external contenders through their
OpenAI-compatible endpoints. With greedy decoding on a vLLM path, a sample of each local
variant is generated again with transformers + PEFT in-process and compared (parity).
Never opens the database.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from core.jobs.events import EVENTS_FILE
from core.jobs.worker import Stopped, WorkerRun, run_worker
from core.serving.backends import PROMPTS_FILE, Choices, Decoding, Request, Result, sample_indices
from core.variants import Variant


def done_outputs(run_dir: Path) -> dict[tuple[int, str], list[int]]:
    """(prompt_idx, variant_id) -> token ids of every output this set's worker already reported."""
    done: dict[tuple[int, str], list[int]] = {}
    path = run_dir / EVENTS_FILE
    if not path.exists():
        return done
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if event.get("type") == "generated":
                for row in event["rows"]:
                    done[(row["prompt_idx"], row["variant_id"])] = row.get("token_ids", [])
    return done


def read_prompts(run_dir: Path) -> list[dict]:
    lines = (run_dir / PROMPTS_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def build_backend(path: str, base_model: str, variants: list[Variant], serving: dict[str, Any],
                  cache_dir: Path, events):
    if path == "transformers":
        from core.serving.hf import TransformersBackend

        return TransformersBackend(base_model, variants, batch_size=int(serving.get("batch_size", 16)),
                                   choices=Choices.of(serving))
    if path == "vllm-lora":
        from core.serving.vllm_engine import VLLMLoraBackend

        return VLLMLoraBackend(base_model, variants, serving)
    if path == "vllm-merged":
        from core.serving.calibration import merged_dir
        from core.weights import merge_adapter
        from core.serving.vllm_engine import VLLMMergedBackend

        folders = {}
        for v in variants:
            if v.kind == "adapter":
                target = merged_dir(cache_dir, v.path)
                if not (target / "config.json").exists():
                    events.emit("progress", stage=f"merging {v.name} for a plain-speed engine")
                    merge_adapter(base_model, v.path, target)
                folders[v.variant_id] = str(target)
            else:
                folders[v.variant_id] = v.path
        events.emit("progress", stage=_starting(path))  # its engine starts on the first request
        return VLLMMergedBackend(base_model, folders, serving)
    raise ValueError(f"unknown serving path {path!r}")


PLAN_FILE = "plan.json"


def _starting(path: str) -> str:
    """What a set waits on before its first outputs, in words (the dashboard and the demo show it)."""
    if path.startswith("vllm"):
        return f"starting the vLLM engine ({path}): about a minute on a CPU"
    return f"loading the model ({path})"


def plan_path(config: dict, local: list[Variant], prompts: list[dict], n_requests: int, events,
              run_dir: Path) -> tuple[str, str]:
    """The set's serving path: chosen once, kept in the run folder, so a resumed set finishes
    on the path it started with (one backend per set, and its parity check still runs)."""
    saved = run_dir / PLAN_FILE
    if saved.exists():
        plan = json.loads(saved.read_text())
        return plan["path"], plan["reason"]
    path, why = _choose_path(config, local, prompts, n_requests, events)
    saved.write_text(json.dumps({"path": path, "reason": why}))
    return path, why


def _choose_path(config: dict, local: list[Variant], prompts: list[dict], n_requests: int, events) -> tuple[str, str]:
    from core.serving import calibration as calibrations

    serving, requested = config["serving"], config["path"]
    costs: dict = {}
    if requested == "auto":
        from core.serving.vllm_engine import vllm_available

        why_not = vllm_available()
        if why_not:
            reason = f"{why_not}; transformers is the fallback"
            events.emit("plan", path="transformers", reason=reason, estimates={}, costs={})
            return "transformers", reason
        cache_dir = Path(config["cache_dir"])
        key = calibrations.calibration_key(config["base_model"], serving)
        calibration = calibrations.load_cached(cache_dir, key)
        if calibration is None:
            events.emit("progress", stage="calibrating the serving paths on this host (once per host and model)")
            adapter = next((v for v in local if v.kind == "adapter"), None)
            sample = [p["messages"] for p in prompts[: int(serving.get("calibration_prompts", 16))]]
            while len(sample) < 2:
                sample = sample + sample
            calibration = calibrations.calibrate(config["base_model"], adapter, sample, serving, cache_dir,
                                                 log=lambda m: events.emit("progress", stage=m))
            calibration["key"] = key
            calibrations.save_cached(cache_dir, key, calibration)
        costs = calibration["costs"]
    # Adapters merged by an earlier set are cached: only the others cost a merge.
    n_adapters = sum(v.kind == "adapter" and not (calibrations.merged_dir(Path(config["cache_dir"]), v.path) /
                                                  "config.json").exists() for v in local)
    decoding = Decoding.from_dict(config["decoding"])
    path, why, estimates = calibrations.choose(requested, costs, len(local), n_adapters, n_requests * decoding.max_tokens)
    if path == "vllm-lora" and any(v.kind == "merged" for v in local):
        path, why = "vllm-merged", why + "; merged variants need their own engines, so vllm-merged"
    events.emit("plan", path=path, reason=why, estimates=estimates, costs=costs)
    return path, why


def generate_all(config: dict, run_dir: Path, events, should_stop) -> str:
    prompts = read_prompts(run_dir)
    messages = {p["prompt_idx"]: tuple(p["messages"]) for p in prompts}
    variants = [Variant(**v) for v in config["variants"]]
    decoding = Decoding.from_dict(config["decoding"])
    done = done_outputs(run_dir)
    total = len(prompts) * len(variants)
    local = [v for v in variants if v.kind != "external"]
    external = [v for v in variants if v.kind == "external"]
    serving = config["serving"]
    chunk = int(serving.get("chunk", 64))
    count = len(done)
    events.emit("progress", done=count, total=total, stage="resuming" if done else "starting")

    def run(backend, todo: list[Request]) -> bool:
        nonlocal count
        for start in range(0, len(todo), chunk):
            if should_stop():
                return False
            try:
                results = backend.generate(todo[start:start + chunk], decoding)
            except Exception:
                if should_stop():  # a cancel's SIGTERM also reaches vLLM's engine processes
                    return False
                raise
            rows = [{**r.row(), "token_ids": r.token_ids} for r in results]
            events.emit("generated", rows=rows)
            for r in results:
                done[(r.prompt_idx, r.variant_id)] = r.token_ids
            count += len(results)
            events.emit("progress", done=count, total=total, backend=backend.name)
        return True

    def todo(group: list[Variant]) -> list[Request]:
        return [Request(p["prompt_idx"], v.variant_id, v.prompted(messages[p["prompt_idx"]])) for v in group
                for p in prompts if (p["prompt_idx"], v.variant_id) not in done]

    # The base and its adapters share one engine; another model (a newer base) gets its own, with
    # its own tokenizer and chat template, one after the other.
    models = [v for v in local if v.kind == "model"]
    local = [v for v in local if v.kind != "model"]
    path = "none"
    todo_local = todo(local)
    if todo_local or todo(models) or (local and decoding.greedy and int(serving.get("parity_sample", 0))):
        path, _ = plan_path(config, local or models, prompts, max(len(todo_local), 1), events, run_dir)
    if todo_local:
        if path == "vllm-lora":  # interleave variants so every chunk is a mixed batch
            todo_local.sort(key=lambda r: (r.prompt_idx, r.variant_id))
        if path != "vllm-merged":  # (that one merges first, then says so: build_backend)
            events.emit("progress", done=count, total=total, stage=_starting(path))
        backend = build_backend(path, config["base_model"], local, serving, Path(config["cache_dir"]), events)
        try:
            if not run(backend, todo_local):
                return "cancelled"
        finally:
            backend.close()
    for v in models:
        if not todo([v]):
            continue
        events.emit("progress", stage=f"starting {v.name} ({v.path}) on its own engine")
        alone = Variant(v.variant_id, "base", v.name, v.path)
        backend = build_backend(path, v.path, [alone], serving, Path(config["cache_dir"]), events)
        try:
            if not run(backend, todo([v])):
                return "cancelled"
        finally:
            backend.close()
    if external:
        from core.serving.openai_api import OpenAIBackend

        pending = todo(external)
        if pending:
            backend = OpenAIBackend(external, choices=Choices.of(serving))
            try:
                if not run(backend, pending):
                    return "cancelled"
            finally:
                backend.close()
    k = int(serving.get("parity_sample", 0))
    if local and path.startswith("vllm") and decoding.greedy and k and not should_stop():
        check_parity(config, local, prompts, messages, decoding, done, k, path, events, should_stop)
    return "cancelled" if should_stop() else "finished"


def check_parity(config: dict, local: list[Variant], prompts: list[dict], messages: dict, decoding: Decoding,
                 done: dict, k: int, path: str, events, should_stop) -> None:
    """Greedy outputs of the vLLM path against transformers + PEFT in this process, per variant."""
    from core.serving import checks
    from core.serving.hf import TransformersBackend

    events.emit("progress", stage="parity check: the same greedy requests through transformers + PEFT")
    indices = [prompts[i]["prompt_idx"] for i in sample_indices(len(prompts), k)]
    batch = int(config["serving"].get("batch_size", 16))
    reference = TransformersBackend(config["base_model"], local, batch_size=batch)
    try:
        for v in local:
            if should_stop():
                return
            results: list[Result] = reference.generate(
                [Request(i, v.variant_id, v.prompted(messages[i])) for i in indices], decoding)
            pairs = [(r.prompt_idx, done.get((r.prompt_idx, v.variant_id), []), r.token_ids) for r in results]
            summary = checks.parity(pairs, lambda ids: reference.tokenizer.decode(ids, skip_special_tokens=True))
            events.emit("parity", variant_id=v.variant_id, backend=path, reference="transformers+peft", **summary)
    finally:
        reference.close()


def generate_run(run: WorkerRun) -> None:
    run.events.emit("started", pid=os.getpid())
    import torch

    torch.set_num_threads(int(run.config["serving"].get("threads") or os.cpu_count() or 1))
    outcome = generate_all(run.config, run.folder, run.events, run.should_stop)
    if outcome == "cancelled":
        raise Stopped(generated=len(done_outputs(run.folder)))
    run.events.emit("finished", generated=len(done_outputs(run.folder)))


def main(run_dir: str) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # A cancel may interrupt a step half-way (the engine stops mid-batch): that is a cancel, not a failure.
    return run_worker(run_dir, generate_run, interrupted=lambda run: {"generated": len(done_outputs(run.folder))})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
