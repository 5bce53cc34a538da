"""A base model's tokenizer and the token counts of chats (a Hugging Face id or a local folder, same code)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from core.datasets import TokenCounter


@functools.lru_cache(maxsize=4)
def load_tokenizer(base: str):
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base)


def token_counter(base: str) -> tuple[TokenCounter | None, str, str | None]:
    """(counter, tokenizer name, why unavailable). Counts tokens of the chat template applied."""
    if not base:
        return None, "", "no base model configured"
    if (base.startswith("/") or base.startswith(".")) and not Path(base).exists():
        return None, base, f"the base model folder {base} does not exist yet (run `tuneboard demo` to build it)"
    try:
        tok = load_tokenizer(base)
    except Exception as exc:  # hub unreachable, missing files: report, don't crash validation
        return None, base, f"could not load the tokenizer of {base}: {str(exc).splitlines()[0][:200]}"
    name = Path(base).name if Path(base).exists() else base

    def count(messages: list[dict]) -> int:
        if tok.chat_template:
            ids = tok.apply_chat_template(messages, tokenize=True)
            if hasattr(ids, "keys"):
                ids = ids["input_ids"]
            return len(ids)
        return len(tok("\n".join(m["content"] for m in messages))["input_ids"])

    return count, name, None
