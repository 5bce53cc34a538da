"""P1: a generation set of 64 prompts x 128 new tokens (greedy) for the base + 3 LoRA adapters
of SmolLM2-135M-Instruct, on this host, in one run:

- transformers + PEFT: one batched pass per variant (left-padded batches of 16; batches of
  64 measured no faster here), one after the other (the baseline);
- vllm-lora: one multi-LoRA engine, all 256 requests in mixed batches;
- vllm-merged: the 3 adapters merged, one plain engine, weights reloaded in place per variant;
- tuneboard: the same set through `generate` (a job: worker process, events, DuckDB rows)
  with path auto, after the one-off calibration (timed separately) that auto caches per
  host and model; the parity check is off here so the figure is generation only, and its
  cost is printed on its own line.

Every figure includes start-up (imports, model load, engine start, merges). Each path runs
in its own process. The transformers baseline gets every core (torch threads = CPUs), as
vLLM's engine does. Goal: tuneboard >= 2x faster than transformers + PEFT.
The adapters are seeded random LoRA weights (rank 16, attention), as cost is what is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.result import Result

PROMPTS, NEW_TOKENS, ADAPTERS = 64, 128, 3
CACHE = Path(os.environ.get("TUNEBOARD_BENCH_CACHE", Path.home() / ".cache" / "tuneboard-bench"))


def _assets() -> tuple[str, list[str], list[list[dict]]]:
    from core.demo.model import build_demo_model, is_built
    from core.demo.tickets import make_dataset
    from core.demo.tiny import build_random_adapter

    base = CACHE / "SmolLM2-135M-Instruct"
    if not is_built(base):
        build_demo_model(base)
    adapters = [str(build_random_adapter(base, CACHE / f"adapter-{i}", seed=i, rank=16, scale=0.02,
                                         target_modules=("q_proj", "k_proj", "v_proj", "o_proj")))
                for i in range(1, ADAPTERS + 1)]
    prompts = [example["messages"][:-1] for example in make_dataset(PROMPTS, seed=11)]
    return str(base), adapters, prompts


def _variants(base: str, adapters: list[str]):
    from core.variants import Variant

    return [Variant("base", "base", "base", base)] + [
        Variant(f"adapter:a{i}", "adapter", f"a{i}", path) for i, path in enumerate(adapters, start=1)]


def path_run(path: str, out: str) -> None:
    """One path in this process: python -m benchmarks.bench_serving PATH OUT.json."""
    t0 = time.perf_counter()
    import torch

    from core.serving.backends import Decoding, Request

    base, adapters, prompts = _assets()
    variants = _variants(base, adapters)
    decoding = Decoding(max_tokens=NEW_TOKENS)
    requests = [Request(i, v.variant_id, tuple(p)) for v in variants for i, p in enumerate(prompts)]
    extra = {}
    if path == "transformers":
        from core.serving.hf import TransformersBackend

        torch.set_num_threads(os.cpu_count() or 1)
        backend = TransformersBackend(base, variants, batch_size=16)  # 64 measured no faster (540 s vs 525 s)
        start = time.perf_counter() - t0
        results = []
        for v in variants:  # sequential passes, one per variant
            results += backend.generate([r for r in requests if r.variant_id == v.variant_id], decoding)
    elif path == "vllm-lora":
        from core.serving.vllm_engine import VLLMLoraBackend

        backend = VLLMLoraBackend(base, variants, {"max_model_len": 1024})
        start = time.perf_counter() - t0
        requests.sort(key=lambda r: (r.prompt_idx, r.variant_id))  # mixed batches
        results = backend.generate(requests, decoding)
    else:
        from core.weights import merge_adapter
        from core.serving.vllm_engine import VLLMMergedBackend

        with tempfile.TemporaryDirectory() as tmp:
            folders = {"base": base}
            t1 = time.perf_counter()
            for v in variants[1:]:
                folders[v.variant_id] = str(merge_adapter(base, v.path, Path(tmp) / v.name))
            extra["merge_s"] = round(time.perf_counter() - t1, 1)
            backend = VLLMMergedBackend(base, folders, {"max_model_len": 1024})
            start = time.perf_counter() - t0
            results = backend.generate(requests, decoding)
            extra["engine_start_s"] = round(sum(backend.start_s.values()), 1)
            backend.close()
    total = time.perf_counter() - t0
    tokens = sum(r.tokens_out for r in results)
    Path(out).write_text(json.dumps({"path": path, "total_s": total, "setup_s": start, "tokens": tokens,
                                     "outputs": len(results), **extra}))


def _in_subprocess(path: str, tmp: Path) -> dict:
    out = tmp / f"{path}.json"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "VLLM_CPU_KVCACHE_SPACE": "2"}
    subprocess.run([sys.executable, "-m", "benchmarks.bench_serving", path, str(out)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=open(tmp / f"{path}.log", "w"))
    return json.loads(out.read_text())


def _tuneboard(tmp: Path) -> dict:
    """The set through tuneboard's own API with path auto (calibrated first, as a one-off)."""
    from core import variants
    from core.auth import CLI_USER
    from core.config import load_settings
    from core.owner import Owner
    from core.serving import Decoding, GenerationSpec, generate, get_set

    base, adapters, prompts = _assets()
    env = {"TUNEBOARD_WORKSPACE": str(tmp / "ws"), "TUNEBOARD_MODEL_BASE": base,
           "TUNEBOARD_ADMIN_PASSWORD": "bench-password", "TUNEBOARD_SERVING_PARITY_SAMPLE": "0"}
    owner = Owner.open(load_settings(env=env), monitor=False, env=env)
    try:
        ids = ["base"]
        for i, path in enumerate(adapters, start=1):
            variants.register(owner.store, f"adapter:a{i}", "adapter", f"a{i}", path, base)
            ids.append(f"adapter:a{i}")
        items = [{"messages": p, "reference": None, "source_ref": f"bench:{i}"} for i, p in enumerate(prompts)]

        def one_set(n: int, name: str) -> tuple[float, str]:
            """Wall time from submit to succeeded, and the set id."""
            spec = GenerationSpec(name, ids, items[:n], {"kind": "file", "name": "bench"},
                                  Decoding(max_tokens=NEW_TOKENS), "auto")
            t0 = time.perf_counter()
            set_id = generate(owner.store, owner.jobs, owner.settings, CLI_USER, spec)
            job = owner.jobs.wait(set_id, timeout=3600, poll=0.5)
            if job["status"] != "succeeded":
                raise RuntimeError(f"{set_id} {job['status']}: {job['error']}")
            return time.perf_counter() - t0, set_id

        _, first = one_set(16, "calibrate")  # the first auto set on this host calibrates
        events = owner.jobs.events(first)
        began = next(e["at"] for e in events if "calibrating" in e.get("stage", ""))
        calibration_s = next(e["at"] for e in events if e["type"] == "plan") - began
        import shutil

        shutil.rmtree(owner.settings.serving_dir / "merged", ignore_errors=True)  # P1 pays for its own merges
        total, set_id = one_set(PROMPTS, "P1")
        record = get_set(owner.store, CLI_USER, set_id)
        tokens = owner.store.scalar("SELECT sum(tokens_out) FROM generations WHERE set_id = ?", [set_id])
        return {"path": f"tuneboard ({record['chosen_path']})", "total_s": total, "tokens": tokens,
                "calibration_s": calibration_s, "reason": record["path_reason"], "outputs": record["n_outputs"]}
    finally:
        owner.close()


def run() -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _assets()  # build once, outside every timing
        runs = {p: _in_subprocess(p, tmp) for p in ("transformers", "vllm-lora", "vllm-merged")}
        ours = _tuneboard(tmp)
    for r in list(runs.values()) + [ours]:
        print(f"  {r['path']:28} {r['total_s']:7.1f} s total, {r.get('setup_s', 0):5.1f} s start-up, "
              f"{r['tokens']:6d} tokens, {r['tokens'] / r['total_s']:6.1f} tok/s overall"
              + (f", merges {r['merge_s']} s, engine start {r['engine_start_s']} s" if "merge_s" in r else ""),
              flush=True)
    print(f"  tuneboard chose {ours['path']}: {ours['reason']}", flush=True)
    print(f"  one-off calibration (cached per host and model): {ours['calibration_s']:.1f} s", flush=True)
    baseline = runs["transformers"]["total_s"]
    ratio = baseline / ours["total_s"]
    with_calibration = baseline / (ours["total_s"] + ours["calibration_s"])
    return Result("serving_p1", f"{ours['total_s']:.0f} s for 4x{PROMPTS}x{NEW_TOKENS} ({ours['path']})",
                  f"transformers+PEFT {baseline:.0f} s (x{with_calibration:.2f} incl. calibration)", ratio,
                  ">= 2.0", ratio >= 2.0)


if __name__ == "__main__":
    path_run(sys.argv[1], sys.argv[2])
