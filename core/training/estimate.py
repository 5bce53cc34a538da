"""Estimate a run before launch: tokens, time from throughput measured on this host, cost."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from core.store import Store
from core.training.config import TrainConfig


@dataclass
class Estimate:
    train_examples: int
    tokens_per_epoch: int        # after the chat template, each example cut at max_seq_len
    steps: int                   # optimizer steps
    training_tokens: int         # tokens the run will process
    tokens_per_s: float | None   # measured on this host for this base model and method
    measured_from: str | None    # which runs the throughput comes from
    seconds: float | None
    hours: float | None
    cost: float | None
    currency: str

    def summary(self) -> str:
        text = (f"{self.train_examples} train examples, {self.tokens_per_epoch:,} tokens per epoch, "
                f"{self.steps} steps, {self.training_tokens:,} training tokens")
        if self.seconds is None:
            return text + "; no throughput measured on this host yet for this base model (a first short run " \
                          "calibrates it)"
        text += f"; about {_duration(self.seconds)} at {self.tokens_per_s:,.0f} tokens/s ({self.measured_from})"
        if self.cost is not None:
            text += f"; {self.hours:.2f} machine-hours, about {self.cost:.2f} {self.currency}"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def measured_throughput(store: Store, base_model: str, method: str) -> tuple[float | None, str | None]:
    """Median tokens/s over the last runs of this base model and method on this workspace's host."""
    rows = store.rows("""SELECT e.payload FROM job_events e JOIN runs r USING (job_id)
                         WHERE r.base_model = ? AND r.method = ? AND e.type = 'train'
                         ORDER BY e.emitted_at DESC LIMIT 200""", [base_model, method])
    rates = sorted(json.loads(r["payload"]).get("tokens_per_s") or 0 for r in rows)
    rates = [r for r in rates if r > 0]
    if not rates:
        return None, None
    runs = store.scalar("""SELECT count(DISTINCT e.job_id) FROM job_events e JOIN runs r USING (job_id)
                           WHERE r.base_model = ? AND r.method = ? AND e.type = 'train'""", [base_model, method])
    return rates[len(rates) // 2], f"median of {len(rates)} steps over {runs} earlier run(s)"


def estimate(store: Store, config: TrainConfig, hourly_price: float = 0.0, currency: str = "USD") -> Estimate:
    rows = store.rows("SELECT n_tokens FROM examples WHERE version_id = ? AND split = 'train'",
                      [config.dataset_version])
    lengths = [min(r["n_tokens"] or config.max_seq_len, config.max_seq_len) for r in rows]
    per_epoch = sum(lengths)
    batch = config.batch_size * config.grad_accum
    steps_per_epoch = max(1, math.ceil(len(lengths) / batch))
    if config.max_steps > 0:
        steps = config.max_steps
        tokens = int(per_epoch * steps / steps_per_epoch)
    else:
        steps = math.ceil(steps_per_epoch * config.epochs)
        tokens = int(per_epoch * config.epochs)
    rate, source = measured_throughput(store, config.base_model, config.method)
    seconds = tokens / rate if rate else None
    hours = seconds / 3600 if seconds is not None else None
    cost = hours * hourly_price if hours is not None and hourly_price > 0 else None
    return Estimate(len(lengths), per_epoch, steps, tokens, rate, source, seconds, hours, cost, currency)
