"""A tiny, seeded Llama for tests: builds in a second, trains in seconds on one CPU thread.

Shape from ../shared/STACK.md: hidden 64, 2 layers, head_dim 32 (vLLM needs >= 32),
intermediate 128, vocab 1024 from a byte-level BPE trained on the spot on the demo task's
text, and a chat template that marks assistant turns with {% generation %} so TRL can
train on assistant tokens only.
"""

from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
# A second family, for a contender that is really another model: other special tokens and another
# template (turns as in Gemma's), another vocabulary size.
TURNS_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<start_of_turn>model\n' }}{% generation %}{{ message['content'] + '<end_of_turn>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<start_of_turn>' + message['role'] + '\n' + message['content'] + '<end_of_turn>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
STYLES = {  # style: (special tokens, bos, eos, pad, unk, template)
    "chatml": (SPECIALS, "<|im_start|>", "<|im_end|>", "<pad>", "<|endoftext|>", CHAT_TEMPLATE),
    "turns": (["<unk>", "<bos>", "<pad>", "<start_of_turn>", "<end_of_turn>"], "<bos>", "<end_of_turn>", "<pad>",
              "<unk>", TURNS_TEMPLATE),
}


def _corpus(seed: int) -> list[str]:
    from core.demo.tickets import make_dataset

    texts = []
    for example in make_dataset(400, seed):
        texts += [m["content"] for m in example["messages"]]
    return texts


def build_tiny_model(folder: str | Path, seed: int = 0, vocab_size: int = 1024, style: str = "chatml") -> Path:
    """Write a random-initialised tiny Llama and its tokenizer to `folder` (cached). `style` "turns" makes
    another family: other special tokens, chat template and (with `vocab_size`) vocabulary."""
    folder = Path(folder)
    if (folder / "config.json").exists() and (folder / "tokenizer.json").exists():
        return folder
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials, bos, eos, pad, unk, template = STYLES[style]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk)
    fast.chat_template = template
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, head_dim=32, intermediate_size=128, max_position_embeddings=1024,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    tmp = folder.with_name(folder.name + ".partial")
    model.save_pretrained(tmp)
    fast.save_pretrained(tmp)
    (tmp / "tuneboard_fixture.json").write_text(json.dumps({"seed": seed, "kind": "tiny-llama", "style": style}))
    tmp.rename(folder)
    return folder


def build_random_adapter(base: str | Path, folder: str | Path, seed: int = 1, rank: int = 8,
                         scale: float = 0.5, target_modules: tuple[str, ...] = ("q_proj", "v_proj")) -> Path:
    """A LoRA adapter of `base` (the tiny model, or any Llama) whose B matrices are seeded noise
    (PEFT starts them at zero, which would make the adapter a no-op): its outputs differ from
    the base's. Cached."""
    folder = Path(folder)
    if (folder / "adapter_config.json").exists():
        return folder
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(target_modules),
                                                  lora_dropout=0.0, task_type="CAUSAL_LM"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    tmp = folder.with_name(folder.name + ".partial")
    peft_model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(base).save_pretrained(tmp)
    tmp.rename(folder)
    return folder
