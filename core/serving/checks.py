"""Checks on generated outputs: sanity flags per variant and serving parity.

Sanity: a variant whose outputs often hit max_tokens (a runaway: usually a chat template
or end-of-sequence problem), come back empty, or repeat the prompt is flagged before anyone
rates or scores it. Parity: the same greedy request through two backends must give the
same tokens; the check reports how often they agree, how far they agree on average, and
the first place they part. Pure functions; no model code.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

# A rate above these is flagged on the page.
THRESHOLDS = {"runaway": 0.10, "empty": 0.05, "repeats_prompt": 0.10}
FLAG_TEXT = {
    "runaway": "outputs hit max_tokens: check the chat template and end-of-sequence token, or raise max_tokens",
    "empty": "outputs are empty: the model stops at once (template, EOS or an adapter problem)",
    "repeats_prompt": "outputs repeat the prompt: the model may be continuing the input instead of answering",
}
MIN_ECHO_CHARS = 20  # a shorter user message is too likely to appear in a good answer


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def repeats_prompt(output: str, messages: list[dict]) -> bool:
    """The output contains the last user message verbatim (whitespace and case aside)."""
    users = [m["content"] for m in messages if m.get("role") == "user"]
    if not users:
        return False
    prompt = _norm(users[-1])
    return len(prompt) >= MIN_ECHO_CHARS and prompt in _norm(output)


@dataclass
class Sanity:
    variant_id: str
    n: int
    runaway: int
    empty: int
    repeats_prompt: int
    flags: list[str] = field(default_factory=list)

    def rate(self, name: str) -> float:
        return getattr(self, name) / self.n if self.n else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), **{f"{k}_rate": self.rate(k) for k in THRESHOLDS}}


def sanity(rows: list[dict], prompts: dict[int, list[dict]]) -> list[Sanity]:
    """rows: generations (variant_id, prompt_idx, output, finish_reason); prompts: idx -> messages."""
    by_variant: dict[str, Sanity] = {}
    for r in rows:
        s = by_variant.setdefault(r["variant_id"], Sanity(r["variant_id"], 0, 0, 0, 0))
        s.n += 1
        s.runaway += r["finish_reason"] == "length"
        s.empty += not r["output"].strip()
        s.repeats_prompt += repeats_prompt(r["output"], prompts.get(r["prompt_idx"], []))
    for s in by_variant.values():
        s.flags = [f"{s.rate(k):.0%} of {s.n} {FLAG_TEXT[k]}" for k, limit in THRESHOLDS.items() if s.rate(k) > limit]
    return list(by_variant.values())


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def parity(pairs: list[tuple[int, list[int], list[int]]], decode) -> dict:
    """pairs: (prompt_idx, served token ids, reference token ids); decode: ids -> text.

    Returns n, exact (identical sequences), mean_common_prefix (tokens), mean_length, and
    the first divergence: the prompt, the token position, and both texts from a few tokens
    before the split.
    """
    exact, prefixes, lengths, first = 0, [], [], None
    for prompt_idx, served, reference in pairs:
        k = common_prefix(served, reference)
        prefixes.append(k)
        lengths.append(max(len(served), len(reference)))
        if served == reference:
            exact += 1
        elif first is None:
            start = max(0, k - 8)
            first = {"prompt_idx": prompt_idx, "position": k, "agreed": decode(served[:k]),
                     "served": decode(served[start:]), "reference": decode(reference[start:])}
    n = len(pairs)
    return {"n": n, "exact": exact, "exact_rate": exact / n if n else 0.0,
            "mean_common_prefix": sum(prefixes) / n if n else 0.0,
            "mean_length": sum(lengths) / n if n else 0.0, "first_divergence": first}
