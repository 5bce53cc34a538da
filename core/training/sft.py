"""Supervised fine-tuning with TRL's SFTTrainer and PEFT, composed with callbacks.

Imported only by the training worker (it pulls in torch and transformers). Runs inside a
worker process: reads its run folder (config, data snapshot), writes events
and checkpoints there, never opens the database. CPU traps from ../shared/STACK.md are
handled here: fp32 without bf16 or gradient checkpointing on CPU, the 'wrapped' packing
strategy, and the bitsandbytes 4-bit repacking bug (see `disable_cpu_repacking`).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from transformers import TrainerCallback

from core.jobs.events import EventWriter, cancel_requested
from core.training import tracking
from core.training.config import CHECKPOINTS, TrainConfig
from core.weights import compute_dtype, load_base

ADAPTER = "adapter"
DATA = "data"


@dataclass
class TrainOutcome:
    status: str                 # finished | cancelled
    global_step: int
    best_checkpoint: str | None
    best_eval_loss: float | None
    adapter_dir: str | None


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def disable_cpu_repacking(model) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for avx512_bf16 CPUs.

    After an eval or generate pass it repacks them, and LoRA gradients through those layers
    silently become wrong (85-92% off in STACK.md's measurement). Returns how many layers
    were switched off; tests compare gradients with and without a prior eval pass.
    """
    import bitsandbytes as bnb

    count = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def qlora_device_map(device_name: str, environ: Mapping[str, str] = os.environ) -> dict | None:
    """Where a 4-bit base goes. bitsandbytes places quantized weights when they load, so on CUDA each
    process names its own GPU: LOCAL_RANK under `accelerate launch` (without it every rank would load
    onto the first GPU), else GPU 0. On a CPU there is nothing to place (None)."""
    if device_name != "cuda":
        return None
    return {"": int(environ.get("LOCAL_RANK", "0"))}


def load_model(config: TrainConfig):
    from transformers import AutoModelForCausalLM

    on_cuda = device() == "cuda"
    if config.method == "qlora":
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=compute_dtype())
        model = AutoModelForCausalLM.from_pretrained(config.base_model, quantization_config=quant,
                                                     dtype=compute_dtype(), device_map=qlora_device_map(device()))
        if not on_cuda:
            disable_cpu_repacking(model)
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=on_cuda)
        return model
    return load_base(config.base_model)


def read_split(run_dir: Path, split: str) -> list[dict]:
    path = run_dir / DATA / f"{split}.jsonl"
    if not path.exists():
        return []
    return [{"messages": json.loads(line)} for line in path.read_text(encoding="utf-8").splitlines() if line]


def last_checkpoint(run_dir: Path) -> str | None:
    folder = run_dir / CHECKPOINTS
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1])) if folder.exists() else []
    return str(found[-1]) if found else None


def agreed(stop: bool, device) -> bool:
    """Whether any rank wants to stop, the same answer on every rank: under `accelerate launch` each
    rank sees SIGTERM or the cancel file at its own moment, and ranks that stop on different steps
    wait on each other's collectives for ever. One process: `stop` itself."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return stop
    import torch

    flag = torch.tensor([1 if stop else 0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


class TrackingCallback(TrainerCallback):
    """After transformers' MLflow / W&B callbacks started their runs: tuneboard's config and lineage."""

    def __init__(self, tracking: dict, run_dir: Path, config: TrainConfig, lineage: dict):
        self.tracking, self.run_dir, self.config, self.lineage = tracking, run_dir, config, lineage

    def on_train_begin(self, args, state, control, **kw):
        if state.is_world_process_zero:
            tracking.log_run_facts(self.tracking, self.run_dir, self.config.to_dict(), self.lineage)


class EventCallback(TrainerCallback):
    """Turns the trainer's logs into events, warns on overfitting, and watches for cancel."""

    def __init__(self, events: EventWriter, run_dir: Path, should_stop: Callable[[], bool]):
        self.events, self.run_dir, self.should_stop = events, run_dir, should_stop
        self.cancelled = False
        self._t_last = time.monotonic()
        self._step_last = 0
        self._tokens_last = 0
        self._step_times: list[float] = []
        self._evals: list[tuple[int, float, float | None]] = []  # step, eval loss, train loss then
        self._last_train_loss: float | None = None

    def on_train_begin(self, args, state, control, **kw):
        self._t_last = time.monotonic()
        self._step_last = state.global_step
        self._tokens_last = getattr(state, "num_input_tokens_seen", 0) or 0
        self.events.emit("train_begin", max_steps=state.max_steps, start_step=state.global_step,
                         epochs=args.num_train_epochs, world_size=args.world_size)

    def on_step_end(self, args, state, control, **kw):
        if agreed(self.should_stop(), args.device):
            self.cancelled = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kw):
        logs = dict(logs or {})
        now = time.monotonic()
        step = state.global_step
        if "eval_loss" in logs:
            self._on_eval(step, state, float(logs["eval_loss"]))
            return
        if "loss" not in logs:
            return
        steps = max(1, step - self._step_last)
        per_step = (now - self._t_last) / steps
        self._step_times.append(per_step)
        tokens = getattr(state, "num_input_tokens_seen", 0) or 0
        tokens_per_s = (tokens - self._tokens_last) / max(1e-9, now - self._t_last)
        recent = self._step_times[-20:]
        eta = (state.max_steps - step) * (sum(recent) / len(recent))
        self._t_last, self._step_last, self._tokens_last = now, step, tokens
        self._last_train_loss = float(logs["loss"])
        self.events.emit("train", step=step, max_steps=state.max_steps, epoch=round(state.epoch or 0.0, 4),
                         loss=float(logs["loss"]), learning_rate=float(logs.get("learning_rate", 0.0)),
                         grad_norm=_finite(logs.get("grad_norm")), tokens_per_s=round(tokens_per_s, 1),
                         tokens_seen=tokens, eta_s=round(eta, 1))

    def _on_eval(self, step: int, state, eval_loss: float) -> None:
        best = min([loss for _, loss, _ in self._evals], default=math.inf)
        self._evals.append((step, eval_loss, self._last_train_loss))
        self.events.emit("eval", step=step, epoch=round(state.epoch or 0.0, 4), eval_loss=eval_loss,
                         best=eval_loss < best)
        if len(self._evals) >= 2:
            (_, prev_eval, prev_train), (_, cur_eval, cur_train) = self._evals[-2], self._evals[-1]
            if cur_eval > prev_eval and prev_train is not None and cur_train is not None and cur_train < prev_train:
                self.events.emit("warning", step=step, kind="overfitting",
                                 message=f"validation loss rose {prev_eval:.4f} -> {cur_eval:.4f} while training "
                                         f"loss fell {prev_train:.4f} -> {cur_train:.4f}: the model may be "
                                         "overfitting")

    def on_save(self, args, state, control, **kw):
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.events.emit("checkpoint", step=state.global_step, path=str(path),
                         best_checkpoint=state.best_model_checkpoint, best_eval_loss=state.best_metric)


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def supports_assistant_masks(tokenizer) -> bool:
    return "{% generation %}" in (tokenizer.chat_template or "").replace("{%- generation %}", "{% generation %}")


def as_prompt_completion(rows: list[dict]) -> list[dict]:
    """Conversation -> (prompt: all turns before the last answer, completion: the last answer).

    TRL then applies the chat template to both and computes the loss on the completion only:
    the same masking as assistant-only loss for single-turn data, on any chat template.
    """
    out = []
    for row in rows:
        messages = row["messages"]
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        out.append({"prompt": messages[:last], "completion": messages[last:last + 1]})
    return out


def sft_config(config: TrainConfig, run_dir: Path, has_eval: bool, assistant_masks: bool = True,
               trackers: dict | None = None):
    from trl import SFTConfig

    on_cuda = device() == "cuda"
    return SFTConfig(
        output_dir=str(run_dir / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=float(config.warmup_ratio),  # transformers 5: a float in [0, 1) is a ratio
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_every,
        save_strategy="steps",
        save_steps=config.eval_every,
        save_total_limit=config.keep_checkpoints,
        load_best_model_at_end=has_eval,
        metric_for_best_model="eval_loss" if has_eval else None,
        greater_is_better=False if has_eval else None,
        logging_steps=1,
        seed=config.seed,
        data_seed=config.seed,
        max_length=config.max_seq_len,
        packing=config.packing,
        packing_strategy="wrapped",  # 'bfd' was slower and broke one tiny model (STACK.md)
        assistant_only_loss=config.assistant_only_loss and assistant_masks,
        # SFTConfig defaults to bf16 and gradient checkpointing: both wrong on CPU.
        bf16=on_cuda and config.method == "qlora",
        gradient_checkpointing=on_cuda and config.method == "qlora",
        use_cpu=not on_cuda,
        include_num_input_tokens_seen="non_padding",
        report_to=tracking.report_to(trackers),
        run_name=run_dir.name,  # the job id: the run's name in MLflow / W&B
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def train(config: TrainConfig, run_dir: str | Path, events: EventWriter,
          should_stop: Callable[[], bool] | None = None, trackers: dict | None = None,
          lineage: dict | None = None) -> TrainOutcome:
    """Train (or resume) in `run_dir`; the best model's adapter lands in `run_dir/adapter`. `trackers`
    (core.training.tracking.plan) names the experiment trackers the run reports to."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, EarlyStoppingCallback, set_seed
    from trl import SFTTrainer

    run_dir = Path(run_dir)
    should_stop = should_stop or (lambda: cancel_requested(run_dir))
    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_rows, eval_rows = read_split(run_dir, "train"), read_split(run_dir, "validation")
    if config.eval_max_examples:
        eval_rows = eval_rows[: config.eval_max_examples]
    model = load_model(config)
    peft_config = None
    if config.method in ("lora", "qlora"):
        peft_config = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                 target_modules=config.target_module_names,
                                 modules_to_save=list(config.modules_to_save) or None, task_type="CAUSAL_LM")
    masks = supports_assistant_masks(tokenizer)
    if config.assistant_only_loss and not masks:
        # The base's template cannot mark assistant tokens (SmolLM2's cannot): train on the
        # last answer as a completion instead, which masks the prompt the same way.
        train_rows, eval_rows = as_prompt_completion(train_rows), as_prompt_completion(eval_rows)
        events.emit("note", message="the chat template has no {% generation %} markers: the loss is on each "
                    "conversation's last assistant answer (prompt-completion), not on every assistant turn")
    bridge = EventCallback(events, run_dir, should_stop)
    callbacks = [bridge]
    if trackers:
        tracking.prepare(trackers, run_dir, run_dir.name)
        callbacks.append(TrackingCallback(trackers, run_dir, config, lineage or {}))
    if eval_rows and config.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = SFTTrainer(model=model, args=sft_config(config, run_dir, bool(eval_rows), masks, trackers),
                         train_dataset=Dataset.from_list(train_rows),
                         eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
                         processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
    if config.method == "qlora" and device() == "cpu":
        disable_cpu_repacking(trainer.model)
    try:
        trainer.train(resume_from_checkpoint=last_checkpoint(run_dir))
    except BaseException:
        tracking.finish(trackers, failed=True)
        raise
    tracking.finish(trackers)
    state = trainer.state
    if bridge.cancelled:
        return TrainOutcome("cancelled", state.global_step, state.best_model_checkpoint, state.best_metric, None)
    adapter_dir = run_dir / ADAPTER
    trainer.save_model(str(adapter_dir))  # the best model when load_best_model_at_end
    tokenizer.save_pretrained(str(adapter_dir))
    return TrainOutcome("finished", state.global_step, state.best_model_checkpoint, state.best_metric,
                        str(adapter_dir))
