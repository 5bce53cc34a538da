"""Choosing the fastest correct serving path for this host, model and workload.

Which path wins depends on the hardware: on GPUs one multi-LoRA vLLM engine is the fast
path; on small CPUs vLLM's LoRA kernels are 2.5-5x slower than its plain path and slower
than transformers + PEFT (STACK.md). So tuneboard measures instead of assuming: a short
calibration times each available path's start-up and throughput on this host and base
model (cached in the workspace, keyed by host, model files and library versions), and a
set's expected time per path is start-up + tokens / throughput. The fastest estimate wins
unless the config or the set names a path. Worker side (calibration loads models).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from core.serving.backends import Decoding, Request
from core.variants import Variant
from core.weights import merge_adapter

CALIBRATION_FILE = "calibration.json"
CALIBRATION_TOKENS = 32


def host_description() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    except Exception:
        pass
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "cpu": cpu, "gpu": gpu}


def calibration_key(base_model: str, settings: dict[str, Any]) -> str:
    from core.training import model_fingerprint, package_versions

    speed = ("compile", "kv_cache_gib", "batch_size", "threads", "max_model_len", "gpu_memory_utilization",
             "tensor_parallel_size")  # the settings that change a path's speed
    material = {"host": host_description(), "model": model_fingerprint(base_model),
                "packages": package_versions(), **{k: settings.get(k) for k in speed}}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_cached(cache_dir: Path, key: str) -> dict | None:
    path = Path(cache_dir) / CALIBRATION_FILE
    try:
        return json.loads(path.read_text()).get(key)
    except (OSError, ValueError):
        return None


def save_cached(cache_dir: Path, key: str, calibration: dict) -> None:
    path = Path(cache_dir) / CALIBRATION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[key] = calibration
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")  # two sets may save at once
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def estimate(costs: dict[str, dict], n_variants: int, n_adapters: int, n_tokens: int) -> dict[str, float]:
    """Expected seconds per path for a workload; paths that failed calibration are left out."""
    out = {}
    for path, c in costs.items():
        if c.get("error") or not c.get("tok_s"):
            continue
        gen = n_tokens / c["tok_s"]
        if path == "vllm-merged":  # one engine start; each adapter merged once (then cached), weights reloaded in place
            out[path] = c["start_s"] + n_adapters * c.get("merge_s", 0.0) + gen
        else:
            out[path] = c["start_s"] + gen
    return out


def choose(requested: str, costs: dict[str, dict], n_variants: int, n_adapters: int,
           n_tokens: int) -> tuple[str, str, dict[str, float]]:
    """(path, why, estimates)."""
    estimates = estimate(costs, n_variants, n_adapters, n_tokens)
    failed = {p: c["error"] for p, c in costs.items() if c.get("error")}
    if requested != "auto":
        why = f"{requested} was requested (config or set)"
        if requested in failed:
            why += f"; note: it failed calibration ({failed[requested][:200]})"
        return requested, why, estimates
    if not estimates:
        return "transformers", "no path could be calibrated; transformers is the fallback", estimates
    best = min(estimates, key=estimates.get)
    ranking = ", ".join(f"{p} {s:.0f} s" for p, s in sorted(estimates.items(), key=lambda kv: kv[1]))
    why = f"fastest measured estimate for {n_variants} variants x ~{n_tokens} tokens: {ranking}"
    if failed:
        why += "; unavailable: " + "; ".join(f"{p}: {e[:160]}" for p, e in failed.items())
    return best, why, estimates


def calibrate(base_model: str, adapter: Variant | None, prompts: list[list[dict]], settings: dict[str, Any],
              work_dir: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Time every available path on a few prompts (greedy, 32 new tokens). Minutes, once per key."""
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    from core.serving.vllm_engine import vllm_available

    base = Variant("base", "base", "base", base_model)
    variants = [base] + ([adapter] if adapter else [])
    decoding = Decoding(max_tokens=CALIBRATION_TOKENS)
    requests = [Request(i, variants[i % len(variants)].variant_id, tuple(p)) for i, p in enumerate(prompts)]
    costs: dict[str, dict] = {}

    def timed(path: str, make, reqs: list[Request]) -> dict:
        log(f"calibrating {path}")
        t0 = time.perf_counter()
        backend = None
        try:
            backend = make()
            start = time.perf_counter() - t0
            t1 = time.perf_counter()
            results = backend.generate(reqs, decoding)
            gen = time.perf_counter() - t1
            lazy = getattr(backend, "start_s", None)
            if isinstance(lazy, dict):  # engines started on first use (merged path): count them as start-up
                start, gen = start + sum(lazy.values()), gen - sum(lazy.values())
            tokens = sum(r.tokens_out for r in results)
            return {"start_s": round(start, 2), "gen_s": round(gen, 2), "tokens": tokens,
                    "tok_s": round(tokens / gen, 2) if gen > 0 and tokens else None, "requests": len(reqs)}
        except Exception as exc:  # a path that cannot run here is recorded, not fatal
            return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        finally:
            if backend is not None:
                backend.close()

    from core.serving.hf import TransformersBackend

    costs["transformers"] = timed("transformers", lambda: TransformersBackend(
        base_model, variants, batch_size=int(settings.get("batch_size", 16))), requests)
    why_not = vllm_available()
    if why_not:
        costs["vllm-lora"] = costs["vllm-merged"] = {"error": why_not}
    else:
        from core.serving.vllm_engine import VLLMLoraBackend, VLLMMergedBackend

        if adapter:
            costs["vllm-lora"] = timed("vllm-lora", lambda: VLLMLoraBackend(base_model, variants, settings), requests)
        base_only = [Request(r.prompt_idx, "base", r.messages) for r in requests]
        merged = timed("vllm-merged", lambda: VLLMMergedBackend(base_model, {"base": base_model}, settings),
                       base_only)
        if adapter and not merged.get("error"):
            t0 = time.perf_counter()
            target = Path(tempfile.mkdtemp(dir=work_dir, prefix="calibration-merge-")) / "merged"
            merge_adapter(base_model, adapter.path, target)
            merged["merge_s"] = round(time.perf_counter() - t0, 2)
            shutil.rmtree(target.parent, ignore_errors=True)
        costs["vllm-merged"] = merged
    return {"host": host_description(), "measured_at": time.time(), "prompts": len(prompts),
            "new_tokens": CALIBRATION_TOKENS, "costs": costs}


def merged_dir(cache_dir: Path, adapter_dir: str) -> Path:
    """Where an adapter's merged copy is cached: keyed by the adapter's files, so retraining re-merges."""
    folder = Path(adapter_dir)
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for p in sorted(folder.glob("adapter_*")):
        digest.update(f"{p.name}{p.stat().st_size}{p.stat().st_mtime_ns}".encode())
    return Path(cache_dir) / "merged" / digest.hexdigest()[:16]
