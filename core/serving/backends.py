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
    # With `Choices`, the probability of each option where the answer starts, and "mass": how much of the
    # model's probability there the options hold; None where the backend gave no logprobs.
    choices: dict[str, float] | None = None

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


@dataclass(frozen=True)
class Choices:
    """Ask for the probability of each of a few answers at one place of an output: where the answer
    starts, the first non-space character after the last `marker` (a judge's "Verdict:" line).

    Backends that give logprobs ask for the `top` most likely tokens at every step and read the step
    that wrote that character: each candidate token counts for the option its text would begin there
    ("t" counts for "tie"); the options' probabilities are normalised to sum to 1, and "mass" says how
    much of the model's probability they held. Where the engine holds the output to a pattern (vLLM's
    structured outputs), only the answers are allowed at that step, so the mass is 1 and the options'
    shares are the model's probabilities given that it answers."""

    marker: str
    options: tuple[str, ...]
    # Candidates kept per step: enough for a few answers (measured on vLLM CPU, 128 judge calls: 64.1 s with
    # them, 63.3 s without).
    top: int = 5

    @classmethod
    def of(cls, serving: dict[str, Any]) -> "Choices | None":
        spec = serving.get("choices")
        return cls(spec["marker"], tuple(spec["options"]), int(spec.get("top", cls.top))) if spec else None

    def to_dict(self) -> dict[str, Any]:
        return {"marker": self.marker, "options": list(self.options), "top": self.top}

    def locate(self, text: str) -> int | None:
        """Where the answer starts in `text`, or None when the marker is not there."""
        at = text.rfind(self.marker)
        if at < 0:
            return None
        at += len(self.marker)
        while at < len(text) and text[at].isspace():
            at += 1
        return at if at < len(text) else None

    def probabilities(self, candidates) -> dict[str, float] | None:
        """`candidates`: (what the token would write from the answer's first character on, logprob)."""
        import math

        mass = dict.fromkeys(self.options, 0.0)
        for written, logprob in candidates:
            written = written.strip()
            option = next((o for o in self.options if written and self._begins(written, o)), None)
            if option is not None:
                mass[option] += math.exp(logprob)
        total = sum(mass.values())
        if total <= 0:
            return None
        return {**{o: m / total for o, m in mass.items()}, "mass": min(total, 1.0)}

    @staticmethod
    def _begins(written: str, option: str) -> bool:
        """Whether a token that writes `written` begins `option`: a part of it ("t" of "tie"), or all of
        it and then no more of a word ("2." but not "12" or "2a")."""
        if option.startswith(written):
            return True
        return written.startswith(option) and not written[len(option)].isalnum()

    def from_tokens(self, tokenizer, token_ids: list[int], step_logprobs) -> dict[str, float] | None:
        """For local engines: `step_logprobs(i)` gives {token id: logprob} of the candidates at step i."""
        def text(ids):
            return tokenizer.decode(ids, skip_special_tokens=True)

        at = self.locate(text(token_ids))
        if at is None:
            return None
        lo, hi = 0, len(token_ids) - 1  # the first step whose text reaches past `at`
        while lo < hi:
            mid = (lo + hi) // 2
            if len(text(token_ids[:mid + 1])) > at:
                hi = mid
            else:
                lo = mid + 1
        before = token_ids[:lo]
        return self.probabilities((text(before + [c])[at:], lp) for c, lp in step_logprobs(lo).items())

    def from_texts(self, text: str, steps: list[tuple[str, list[tuple[str, float]]]]) -> dict[str, float] | None:
        """For endpoints: `steps` are (the token's text, [(candidate text, logprob), ...]) in order."""
        at = self.locate(text)
        if at is None:
            return None
        start = 0
        for token, candidates in steps:
            if start + len(token) > at:
                return self.probabilities((c[at - start:], lp) for c, lp in candidates)
            start += len(token)
        return None


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
