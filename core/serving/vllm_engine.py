"""vLLM offline engines in the worker process: the multi-LoRA path and the merged path.

`VLLMLoraBackend`: one `LLM(enable_lora=True)` over the base; every request carries its
adapter's `LoRARequest` (none for the base), and base and adapter requests go through the
engine together in mixed batches. `VLLMMergedBackend`: a plain engine over each variant's
own weights (the base, or an adapter merged into it), started once and given the next
variant's weights in place (plain engines run 2.5-5x faster than LoRA ones on CPUs;
STACK.md). Prompts arrive as token ids rendered with the base's chat template.

vLLM spawns processes: whatever creates these must run under a `__main__` guard.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any

from core.serving.backends import Choices, Decoding, Request, Result, chat_ids, lora_rank, request_seed
from core.serving.server import round_rank
from core.variants import Variant

def vllm_available() -> str | None:
    """None when vLLM can be imported here, else why not."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (`pip install -e '.[cpu]'` or `.[cuda]`)"
    return None


def context_limit(model_dir: str) -> int | None:
    """The model's own longest context, when its config says (max_model_len may not exceed it)."""
    import json

    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings") or config.get("text_config", {}).get("max_position_embeddings")
    return int(value) if value else None


def engine_options(settings: dict[str, Any], model_dir: str) -> dict[str, Any]:
    """LLM(...) keyword arguments shared by every engine tuneboard starts."""
    import torch

    from core.serving.vllm_cpu_fix import extension_cls

    limit = context_limit(model_dir)
    wanted = int(settings.get("max_model_len", 2048))
    options: dict[str, Any] = {
        "max_model_len": min(wanted, limit) if limit else wanted,
        "enforce_eager": not settings.get("compile", False),
        "seed": 0,
        "worker_extension_cls": extension_cls(),  # the CPU build's LoRA fix
    }
    if not torch.cuda.is_available():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.get("kv_cache_gib", 2)))
        if (os.cpu_count() or 1) <= 4:
            # vLLM keeps one core for its front end by default; on a 2-core host that halves the
            # engine (STACK.md: 181 -> 228 tok/s with none reserved).
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        options["dtype"] = "float32"  # fp32 matches PEFT greedy outputs; bf16 drifts (STACK.md)
    else:
        options["gpu_memory_utilization"] = float(settings.get("gpu_memory_utilization", 0.85))
        if settings.get("tensor_parallel_size", 1) > 1:
            options["tensor_parallel_size"] = int(settings["tensor_parallel_size"])
    return options


def _sampling(decoding: Decoding, requests: list[Request], settings: dict[str, Any]):
    """vLLM's sampling parameters; with a "pattern" setting, every output is constrained to match that
    regex; with "choices" (core.serving.backends.Choices), the top candidates of every step are kept."""
    from vllm import SamplingParams

    extra: dict[str, Any] = {}
    if settings.get("pattern"):
        from vllm.sampling_params import StructuredOutputsParams

        extra["structured_outputs"] = StructuredOutputsParams(regex=settings["pattern"])
    choices = Choices.of(settings)
    if choices:
        extra["logprobs"] = choices.top
    if decoding.greedy:
        return SamplingParams(temperature=0.0, max_tokens=decoding.max_tokens, **extra)
    return [SamplingParams(temperature=decoding.temperature, top_p=decoding.top_p, max_tokens=decoding.max_tokens,
                           seed=request_seed(decoding, r.prompt_idx), **extra) for r in requests]


def _results(outputs, requests: list[Request], prompt_ids: list[list[int]], latency_ms: float,
             backend: str, tokenizer, settings: dict[str, Any]) -> list[Result]:
    choices = Choices.of(settings)
    results = []
    for r, ids, out in zip(requests, prompt_ids, outputs):
        completion = out.outputs[0]
        finish = "length" if completion.finish_reason == "length" else "stop"
        steps = completion.logprobs
        probabilities = choices.from_tokens(
            tokenizer, list(completion.token_ids),
            lambda i: {t: p.logprob for t, p in steps[i].items()}) if choices and steps else None
        results.append(Result(r.prompt_idx, r.variant_id, completion.text, len(ids), len(completion.token_ids),
                              finish, latency_ms, backend, list(completion.token_ids), probabilities))
    return results


def shutdown(llm) -> None:
    """Stop an engine's processes now rather than whenever the garbage collector gets to it."""
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception:  # already stopped, or an engine without a separate core process
        pass
    del llm
    gc.collect()


class VLLMLoraBackend:
    name = "vllm-lora"

    def __init__(self, base_model: str, variants: list[Variant], settings: dict[str, Any] | None = None):
        from transformers import AutoTokenizer
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        settings = self.settings = settings or {}
        self.tokenizer = AutoTokenizer.from_pretrained(base_model)
        adapters = [v for v in variants if v.kind == "adapter"]
        unsupported = [v.variant_id for v in variants if v.kind not in ("base", "adapter")]
        if unsupported:
            raise ValueError(f"the multi-LoRA engine serves the base and its adapters, not {', '.join(unsupported)}")
        self.lora = {v.variant_id: LoRARequest(v.variant_id, i + 1, v.path) for i, v in enumerate(adapters)}
        options = engine_options(settings, base_model)
        if adapters:
            rank = max(lora_rank(v.path) for v in adapters)
            options.update(enable_lora=True, max_loras=len(self.lora),
                           max_lora_rank=round_rank(rank))
        t0 = time.perf_counter()
        self.llm = LLM(model=base_model, tokenizer=base_model, **options)
        self.start_s = time.perf_counter() - t0

    def generate(self, requests: list[Request], decoding: Decoding) -> list[Result]:
        prompt_ids = [chat_ids(self.tokenizer, r.messages) for r in requests]
        t0 = time.perf_counter()
        sampling = _sampling(decoding, requests, self.settings)
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], sampling,
                                    lora_request=[self.lora.get(r.variant_id) for r in requests], use_tqdm=False)
        return _results(outputs, requests, prompt_ids, (time.perf_counter() - t0) * 1000, self.name,
                        self.tokenizer, self.settings)

    def close(self) -> None:
        if getattr(self, "llm", None) is not None:
            shutdown(self.llm)
            self.llm = None


class VLLMMergedBackend:
    """Plain (LoRA-free) engines over full-weight folders: `model_dirs` maps each variant to its
    folder (the base, or an adapter merged into it). One engine starts once; a variant whose
    folder has the same architecture gets its weights reloaded into it (vLLM's in-place
    `reload_weights`, prefix cache reset), so every variant runs at plain speed after one
    start-up. A folder of another shape gets an engine of its own."""

    name = "vllm-merged"

    def __init__(self, base_model: str, model_dirs: dict[str, str], settings: dict[str, Any] | None = None):
        from transformers import AutoTokenizer

        self.settings = settings or {}
        self.tokenizer = AutoTokenizer.from_pretrained(base_model)
        self.model_dirs = dict(model_dirs)
        self.llm = None
        self.loaded: str | None = None  # the variant whose weights the engine holds
        self.shape: dict | None = None
        self.start_s: dict[str, float] = {}
        self.swap_s: dict[str, float] = {}

    @staticmethod
    def _shape(folder: str) -> dict:
        """The architecture of a model folder or hub id: equal shapes can share an engine."""
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(folder).to_dict()
        return {k: v for k, v in config.items() if k not in ("torch_dtype", "dtype", "transformers_version",
                                                              "_name_or_path", "architectures")}

    def _engine_for(self, variant_id: str):
        if self.loaded == variant_id:
            return self.llm
        folder = self.model_dirs[variant_id]
        if self.llm is not None and folder == self.model_dirs.get(self.loaded):
            self.loaded = variant_id  # the same weights (e.g. a prompted base): nothing to load
            return self.llm
        shape = self._shape(folder)
        if self.llm is not None and shape == self.shape:
            t0 = time.perf_counter()
            # vLLM's in-place reload handles weights its CPU/GPU kernels have repacked.
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": folder})
            self.llm.reset_prefix_cache()  # cached KV was computed with the previous weights
            self.swap_s[variant_id] = time.perf_counter() - t0
        else:
            self.close()
            from vllm import LLM

            t0 = time.perf_counter()
            self.llm = LLM(model=folder, tokenizer=folder, **engine_options(self.settings, folder))
            self.start_s[variant_id] = time.perf_counter() - t0
            self.shape = shape
        self.loaded = variant_id
        return self.llm

    def generate(self, requests: list[Request], decoding: Decoding) -> list[Result]:
        by_variant: dict[str, list[Request]] = {}
        for r in requests:
            by_variant.setdefault(r.variant_id, []).append(r)
        # The weights already loaded go first: a chunk never swaps back and forth.
        order = sorted(by_variant, key=lambda v: v != self.loaded)
        results = []
        for variant_id in order:
            group = by_variant[variant_id]
            llm = self._engine_for(variant_id)
            prompt_ids = [chat_ids(self.tokenizer, r.messages) for r in group]
            t0 = time.perf_counter()
            sampling = _sampling(decoding, group, self.settings)
            outputs = llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], sampling, use_tqdm=False)
            results += _results(outputs, group, prompt_ids, (time.perf_counter() - t0) * 1000, self.name,
                                self.tokenizer, self.settings)
        return results

    def close(self) -> None:
        if self.llm is not None:
            shutdown(self.llm)
            self.llm, self.loaded, self.shape = None, None, None
