"""tuneboard's code inside vLLM's worker process (vLLM's `worker_extension_cls`).

vLLM imports this module in the process that holds the model, before the model runs, so
importing it applies the CPU build's LoRA fix (core.serving.vllm_cpu_fix) there. Never imported
by tuneboard's own processes.
"""

from __future__ import annotations

from core.serving.vllm_cpu_fix import cpu_build, patch_cpu_lora_ops

if cpu_build():
    patch_cpu_lora_ops()


class WorkerExtension:
    """Mixed into vLLM's worker class; importing this module is what matters."""
