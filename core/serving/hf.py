"""transformers + PEFT: the backend that needs nothing but the training stack.

One base model in memory; every adapter loaded onto it under its variant id, switched per
batch; the base itself is served with the adapters disabled. Batches are left-padded so
every sequence's new tokens start at the same position. Worker side only.
"""

from __future__ import annotations

import time

from core.serving.backends import Choices, Decoding, Request, Result, chat_ids, request_seed
from core.variants import Variant
from core.weights import compute_dtype, load_base


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TransformersBackend:
    name = "transformers"

    def __init__(self, base_model: str, variants: list[Variant], batch_size: int = 16,
                 choices: Choices | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.batch_size = max(1, int(batch_size))
        self.choices = choices
        self.tokenizer = AutoTokenizer.from_pretrained(base_model)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.device = device()
        model = load_base(base_model).to(self.device)
        self.adapters: set[str] = set()
        self.separate: dict[str, object] = {}  # merged copies are whole models of their own
        for v in variants:
            if v.kind == "adapter":
                from peft import PeftModel

                if not self.adapters:
                    model = PeftModel.from_pretrained(model, v.path, adapter_name=v.variant_id)
                else:
                    model.load_adapter(v.path, adapter_name=v.variant_id)
                self.adapters.add(v.variant_id)
            elif v.kind == "merged":
                self.separate[v.variant_id] = AutoModelForCausalLM.from_pretrained(
                    v.path, dtype=compute_dtype()).to(self.device).eval()
            elif v.kind != "base":
                raise ValueError(f"the transformers backend cannot serve {v.kind} variant {v.variant_id}")
        self.model = model.eval()
        self.eos_ids = self._eos_ids()
        self._torch = torch

    def _eos_ids(self) -> set[int]:
        ids = set()
        config = getattr(self.model, "generation_config", None)
        eos = getattr(config, "eos_token_id", None) if config is not None else None
        for value in (eos, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif value:
                ids.update(value)
        return ids

    def _model_for(self, variant_id: str):
        """(model, context manager) serving this variant."""
        import contextlib

        if variant_id in self.separate:
            return self.separate[variant_id], contextlib.nullcontext()
        if variant_id in self.adapters:
            self.model.set_adapter(variant_id)
            return self.model, contextlib.nullcontext()
        if self.adapters:
            return self.model, self.model.disable_adapter()
        return self.model, contextlib.nullcontext()

    def generate(self, requests: list[Request], decoding: Decoding) -> list[Result]:
        by_variant: dict[str, list[Request]] = {}
        for r in requests:
            by_variant.setdefault(r.variant_id, []).append(r)
        results: list[Result] = []
        for variant_id, group in by_variant.items():
            for start in range(0, len(group), self.batch_size):
                results += self._batch(variant_id, group[start:start + self.batch_size], decoding)
        return results

    def _batch(self, variant_id: str, batch: list[Request], decoding: Decoding) -> list[Result]:
        torch = self._torch
        encoded = [chat_ids(self.tokenizer, r.messages) for r in batch]
        padded = self.tokenizer.pad({"input_ids": encoded}, return_tensors="pt").to(self.device)
        model, context = self._model_for(variant_id)
        kwargs = dict(max_new_tokens=decoding.max_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if decoding.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=decoding.temperature, top_p=decoding.top_p, top_k=None)
            torch.manual_seed(request_seed(decoding, batch[0].prompt_idx))
        steps: list = []  # per step, the top candidates of every row: (logprobs, token ids)
        if self.choices:
            from transformers import LogitsProcessor, LogitsProcessorList

            top = self.choices.top

            class Keep(LogitsProcessor):
                def __call__(self, input_ids, scores):
                    steps.append(torch.topk(torch.log_softmax(scores.float(), dim=-1), top, dim=-1))
                    return scores

            kwargs["logits_processor"] = LogitsProcessorList([Keep()])
        t0 = time.perf_counter()
        with torch.no_grad(), context:
            out = model.generate(**padded, **kwargs)
        latency = (time.perf_counter() - t0) * 1000
        width = padded["input_ids"].shape[1]
        results = []
        for b, (r, ids, row) in enumerate(zip(batch, encoded, out[:, width:].tolist())):
            new, finish = [], "length"
            for token in row:
                new.append(token)
                if token in self.eos_ids:
                    finish = "stop"
                    break
            if finish == "length" and len(new) < decoding.max_tokens:
                finish = "stop"  # padding after another stop condition
            # Padding after an end token is not output; the end token itself is counted, as vLLM does.
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            probabilities = self.choices.from_tokens(
                self.tokenizer, new, lambda i: dict(zip(steps[i].indices[b].tolist(), steps[i].values[b].tolist()))
            ) if self.choices and steps else None
            results.append(Result(r.prompt_idx, variant_id, text, len(ids), len(new), finish, latency, self.name,
                                  new, probabilities))
        return results

    def close(self) -> None:
        self.model = None
        self.separate.clear()
