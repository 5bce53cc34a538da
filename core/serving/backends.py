"""The one small interface every generation backend implements, and what flows through it.

A backend is built for one base model and a set of variants (`core.variants.Variant`: the base
itself, LoRA adapters of it, merged copies, or an external OpenAI-compatible model), then asked to
generate a list of requests. Local backends render each chat prompt with the base's chat
template into token ids once (`render_prompts`), so every path sees the same tokens and a
difference in output is the backend's, never the prompt's.

This module imports neither torch nor vLLM: the owner reads these types too.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from core.errors import InvalidInput
from core.fields import out_of_range, setting

PROMPTS_FILE = "prompts.jsonl"  # a generation set's frozen prompts in its run folder

# How a set of variants is served locally. "auto" measures and picks (core.serving.calibration).
PATHS = ("vllm-lora", "vllm-merged", "transformers")
PATH_HELP = {
    "vllm-lora": "one vLLM engine with LoRA enabled serves the base and every adapter in mixed batches",
    "vllm-merged": "one plain vLLM engine (no LoRA kernels) started once; each adapter is merged into the "
                   "base and its weights are reloaded into the warm engine in place",
    "transformers": "transformers + PEFT in the worker process, batched with left padding",
    "openai": "an OpenAI-compatible endpoint (an external contender or a vLLM server)",
}


@dataclass(frozen=True)
class Decoding:
    """Decoding parameters of a generation set; greedy by default (evaluation)."""

    temperature: float = setting(0.0, "0 is greedy (deterministic; the default for evaluation); above 0 samples.",
                                 min=0.0, max=5.0)
    top_p: float = setting(1.0, "Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p.",
                           min=1e-6, max=1.0)
    max_tokens: int = setting(128, "Most new tokens per output; an output that reaches it is flagged as a runaway.",
                              min=1, max=32768)
    seed: int = setting(0, "Seed of sampling: each request gets seed + its prompt index on vLLM and "
                        "OpenAI-compatible paths; transformers seeds each batch (a sampled output there depends "
                        "on its batch).", min=0, max=2**31 - 1)

    def __post_init__(self):
        problems = []
        for name in ("temperature", "top_p", "max_tokens", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    name in ("max_tokens", "seed") and not float(value).is_integer()):
                problems.append(f"{name}: {value!r} is not a number")
        problems = problems or out_of_range(self)
        if problems:
            raise InvalidInput("Decoding parameters: " + "; ".join(problems) + ".")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Decoding":
        unknown = set(data) - {"temperature", "top_p", "max_tokens", "seed"}
        if unknown:
            raise InvalidInput(f"Decoding parameters: unknown field(s) {', '.join(sorted(unknown))}.")
        return cls(**{k: (int(v) if k in ("max_tokens", "seed") and isinstance(v, float) and v.is_integer()
                          else v) for k, v in data.items()})


@dataclass(frozen=True)
class Request:
    prompt_idx: int
    variant_id: str
    messages: tuple  # the chat up to the answer to generate; a tuple of role/content dicts


@dataclass
class Result:
    prompt_idx: int
    variant_id: str
    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str       # "stop" (end of sequence or a stop string) or "length" (hit max_tokens)
    latency_ms: float        # wall time of the call that produced it (a batch for batched backends)
    backend: str
    token_ids: list[int] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """What is stored (token ids stay in the worker)."""
        return {k: v for k, v in asdict(self).items() if k != "token_ids"}


class Backend(Protocol):
    """Generates requests for the variants it was built with."""

    name: str

    def generate(self, requests: list[Request], decoding: Decoding) -> list[Result]:
        ...

    def close(self) -> None:
        ...


def request_seed(decoding: Decoding, prompt_idx: int) -> int:
    """Per-request seed: reproducible whatever batch a request lands in."""
    return (decoding.seed + prompt_idx) % (2**31 - 1)


def lora_rank(adapter_dir: str) -> int:
    import json
    from pathlib import Path

    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    return int(config.get("r", 8))


def sample_indices(n: int, k: int, seed: int = 0) -> list[int]:
    """k prompt indices out of n, spread by a seeded shuffle (the parity sample)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[:k])


def chat_ids(tokenizer, messages) -> list[int]:
    """The prompt's token ids: the chat template applied, ready for the assistant's answer."""
    ids = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
