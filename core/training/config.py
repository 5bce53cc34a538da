"""The one typed training config: the CLI's TOML, the Train page's form and the run record.

Hard limits refuse a value with a reason; the guide's recommended ranges (per method) are
returned as advice, shown next to the field, but do not block a run: a tiny test model or
an unusual dataset may need to step outside them on purpose.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.fields import fields_of, out_of_range, setting

METHODS = ("lora", "qlora", "full")
TARGETS = {
    # Attention projections: the standard LoRA target.
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    # Attention plus MLP: for complex tasks (more capacity, more memory).
    "all-linear": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
CHECKPOINTS = "checkpoints"  # the run folder's sub-folder holding checkpoint-STEP folders
SCHEDULERS = ("cosine", "linear", "constant_with_warmup")


@dataclass
class TrainConfig:
    base_model: str = setting("", "Hugging Face id or local folder of the base model.")
    dataset_version: str = setting("", "Dataset version id (its train and validation splits are used).")
    method: str = setting("lora", "lora: adapters on a full-precision base; qlora: adapters on a 4-bit NF4 base "
                          "(CUDA; on CPU only with the bitsandbytes workaround); full: all weights.",
                          choices=METHODS)
    learning_rate: float = setting(2e-4, "Peak learning rate. Guide: LoRA 1e-4..3e-4, full fine-tuning 1e-5..5e-5.",
                                   min=1e-7, max=1e-2)
    epochs: float = setting(3.0, "Passes over the train split. Guide: 1-3 for large datasets, 3-5 for small ones.",
                            min=0.01, max=50)
    max_steps: int = setting(-1, "Stop after this many optimizer steps (-1: run the epochs).", min=-1, max=10_000_000)
    batch_size: int = setting(8, "Examples per device per step.", min=1, max=1024)
    grad_accum: int = setting(1, "Steps whose gradients are summed before an update (effective batch = "
                              "batch_size x grad_accum).", min=1, max=1024)
    max_seq_len: int = setting(512, "Tokens per example after the chat template; longer ones are cut.",
                               min=16, max=131072)
    lora_rank: int = setting(16, "LoRA rank r. Guide: 8-64; higher for harder tasks.", min=1, max=512)
    lora_alpha: int = setting(32, "LoRA scaling alpha (commonly 2 x rank).", min=1, max=4096)
    lora_dropout: float = setting(0.05, "Dropout on the LoRA path.", min=0.0, max=0.5)
    target_modules: str = setting("attention", "attention: q/k/v/o projections (standard); all-linear: "
                                  "attention plus MLP, for complex tasks.", choices=tuple(TARGETS))
    modules_to_save: list = setting([], "Modules trained in full beside the adapters (e.g. lm_head for a new "
                                    "output format on a tiny model).")
    warmup_ratio: float = setting(0.05, "Share of steps with a linear warm-up before the schedule.", min=0.0, max=0.5)
    lr_scheduler: str = setting("cosine", "Learning-rate schedule after warm-up.", choices=SCHEDULERS)
    eval_every: int = setting(20, "Validation loss (and a checkpoint) every N steps.", min=1, max=1_000_000)
    keep_checkpoints: int = setting(3, "Checkpoints kept on disk (the newest and the best); keep more to compare "
                                    "earlier checkpoints in a regression sweep.", min=1, max=1000)
    eval_max_examples: int = setting(0, "Validation loss on at most this many validation examples, the same ones "
                                     "each time (0: all of them).", min=0, max=10_000_000)
    early_stopping_patience: int = setting(3, "Stop after this many evaluations without a better validation loss "
                                           "(0: never stop early).", min=0, max=1000)
    seed: int = setting(13, "Seed of initialisation, shuffling and dropout.", min=0, max=2**31 - 1)
    packing: bool = setting(False, "Pack several examples into one sequence (the 'wrapped' strategy, faster on CPU).")
    assistant_only_loss: bool = setting(True, "Loss on the assistant's tokens only (needs a chat template that "
                                        "marks them with {% generation %}).")

    def __post_init__(self) -> None:
        problems = self._check_types()
        if problems:  # ranges of wrongly typed values would only add noise
            raise InvalidInput("Training config:\n" + "\n".join(f"  - {p}" for p in problems))
        problems += out_of_range(self, with_help=True)
        if not self.base_model:
            problems.append("base_model: name a Hugging Face id or a local model folder")
        if not self.dataset_version:
            problems.append("dataset_version: choose a dataset version (`tuneboard data list`)")
        if self.method == "full" and self.learning_rate > 1e-3:
            problems.append(f"learning_rate: {self.learning_rate} is far too high for full fine-tuning "
                               "(guide 1e-5..5e-5; refused above 1e-3)")
        if problems:
            raise InvalidInput("Training config:\n" + "\n".join(f"  - {p}" for p in problems))

    def _check_types(self) -> list[str]:
        """Each value has its field's type (TOML and forms give strings, floats, booleans)."""
        problems = []
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), f.default
            if f.name == "modules_to_save":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    problems.append(f"{f.name}: {value!r} must be a list of module names, e.g. [\"lm_head\"]")
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    problems.append(f"{f.name}: {value!r} must be true or false")
            elif isinstance(default, int):
                whole = (isinstance(value, (int, float)) and not isinstance(value, bool)
                            and math.isfinite(value) and value == int(value))
                if not whole:
                    problems.append(f"{f.name}: {value!r} must be a whole number")
                else:
                    setattr(self, f.name, int(value))
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    problems.append(f"{f.name}: {value!r} must be a finite number")
                else:
                    setattr(self, f.name, float(value))
            elif isinstance(default, str) and not isinstance(value, str):
                problems.append(f"{f.name}: {value!r} must be text")
        return problems

    @property
    def target_module_names(self) -> list[str]:
        return TARGETS[self.target_modules]

    def advice(self) -> list[str]:
        """Where the config leaves the guide's recommended ranges (shown, not enforced)."""
        notes = []
        if self.method in ("lora", "qlora") and not 1e-4 <= self.learning_rate <= 3e-4:
            notes.append(f"learning_rate {self.learning_rate:g} is outside the LoRA guide range 1e-4..3e-4")
        if self.method == "full" and not 1e-5 <= self.learning_rate <= 5e-5:
            notes.append(f"learning_rate {self.learning_rate:g} is outside the full fine-tuning guide range 1e-5..5e-5")
        if self.method != "full" and not 8 <= self.lora_rank <= 64:
            notes.append(f"lora_rank {self.lora_rank} is outside the guide range 8-64")
        if self.warmup_ratio == 0:
            notes.append("no warm-up: the guide recommends a cosine schedule with warm-up")
        return notes

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidInput(f"{where}: {exc}") from None

    @classmethod
    def from_toml(cls, path: str | Path, defaults: dict[str, Any] | None = None) -> "TrainConfig":
        """The [train] table of a TOML file (or the whole file), over `defaults` (e.g. a preset)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInput(f"{path}: no such file") from None
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot be read ({exc.strerror})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path}: not valid TOML ({exc})") from None
        data = data.get("train", data)
        if not isinstance(data, dict):
            raise InvalidInput(f"{path}: [train] must be a table of settings")
        return cls.from_dict({**(defaults or {}), **data}, str(path))

    def field_help(self) -> dict[str, str]:
        return {f.name: spec.help for f, spec in fields_of(self)}


@dataclass(frozen=True)
class Preset:
    name: str
    guidance: str
    values: dict[str, Any]


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("lora-standard", "LoRA on the attention projections, lr 2e-4, rank 16, cosine with 5% warm-up, "
              "3 epochs: the guide's default for a small-to-medium dataset.",
              dict(method="lora", learning_rate=2e-4, lora_rank=16, lora_alpha=32, target_modules="attention",
                   epochs=3, warmup_ratio=0.05, lr_scheduler="cosine")),
    Preset("lora-small-data", "Few examples (under ~1,000): more passes (3-5 epochs), lr 1e-4 and rank 8 to "
              "limit overfitting; early stopping watches validation loss.",
              dict(method="lora", learning_rate=1e-4, lora_rank=8, lora_alpha=16, target_modules="attention",
                   epochs=5, warmup_ratio=0.1, lr_scheduler="cosine", early_stopping_patience=2)),
    Preset("lora-large-data", "Many examples: 1-2 epochs are enough; lr 3e-4, rank 32.",
              dict(method="lora", learning_rate=3e-4, lora_rank=32, lora_alpha=64, target_modules="attention",
                   epochs=1, warmup_ratio=0.03, lr_scheduler="cosine")),
    Preset("lora-complex-task", "A harder task: add the MLP projections to the targets (all linear layers) "
              "and raise the rank to 64.",
              dict(method="lora", learning_rate=2e-4, lora_rank=64, lora_alpha=128, target_modules="all-linear",
                   epochs=3, warmup_ratio=0.05, lr_scheduler="cosine")),
    Preset("qlora-standard", "QLoRA on a CUDA GPU: 4-bit NF4 base with double quantization and bf16 compute; "
              "same adapter settings as lora-standard, a fraction of the memory.",
              dict(method="qlora", learning_rate=2e-4, lora_rank=16, lora_alpha=32, target_modules="attention",
                   epochs=3, warmup_ratio=0.05, lr_scheduler="cosine")),
    Preset("full-finetune", "All weights, lr 2e-5 (guide 1e-5..5e-5): most capacity, most memory, most "
              "forgetting risk; keep the regression gate close.",
              dict(method="full", learning_rate=2e-5, epochs=2, warmup_ratio=0.05, lr_scheduler="cosine")),
]}


def from_preset(name: str, **overrides: Any) -> TrainConfig:
    if name not in PRESETS:
        raise InvalidInput(f"preset {name!r}: choose one of {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name].values, **overrides})
