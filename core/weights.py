"""Model weights: the one dtype rule and the one merge of a LoRA adapter into its base.

Imports no torch at module level (the owner imports the modules that import this one). Used by
training (its model and its merge job), the transformers backend and the vLLM merged path.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def compute_dtype():
    """bf16 on a GPU that has it; fp32 otherwise: on a CPU fp32 is faster than bf16 without AMX and
    gives exact parity between PEFT, a merged copy and vLLM (STACK.md). Never 4-bit for a merge:
    merging into quantized weights degrades quality."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_base(model: str | Path):
    """A causal LM's weights in the compute dtype, on the CPU."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model, dtype=compute_dtype())


def merge_adapter(base_model: str, adapter_dir: str | Path, output: Path, tokenizer_from: str | Path | None = None,
                  replace: bool = False) -> Path:
    """The adapter merged into a full-precision copy of the base, saved at `output` with the tokenizer of
    `tokenizer_from` (default: the base). Whole or absent: written to a private folder and renamed into
    place. A cache (replace=False) keeps a copy already there, so two merges of one adapter at once each
    write their own and the first rename wins; an export (replace=True) replaces it."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output.parent, prefix=output.name + ".partial-"))
    try:
        merged = PeftModel.from_pretrained(load_base(base_model), str(adapter_dir)).merge_and_unload()
        merged.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(tokenizer_from or base_model).save_pretrained(tmp)
        if not replace and (output / "config.json").exists():
            return output  # someone else finished first
        shutil.rmtree(output, ignore_errors=True)
        tmp.rename(output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output
