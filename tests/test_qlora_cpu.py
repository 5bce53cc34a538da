"""QLoRA on CPU: bitsandbytes repacks 4-bit weights for avx512_bf16 CPUs after an eval or
generate pass, and LoRA gradients through those layers then go silently wrong (STACK.md).
This test keeps the workaround (core.training.sft.disable_cpu_repacking) honest: with it,
gradients after an eval pass equal those without one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow
bnb = pytest.importorskip("bitsandbytes")


def _has_avx512_bf16() -> bool:
    """bitsandbytes' own test for the CPUs whose 4-bit weights it repacks."""
    from bitsandbytes.nn.modules import has_avx512bf16

    return bool(has_avx512bf16())


def _lora_grads(model_dir: str, *, eval_first: bool, workaround: bool) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from core.training.sft import disable_cpu_repacking

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=quant, dtype=torch.float32)
    if workaround:
        assert disable_cpu_repacking(model) == 2 * 7  # every linear layer of both blocks is 4-bit
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, init_lora_weights="gaussian",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                             task_type="CAUSAL_LM"))
    tok = AutoTokenizer.from_pretrained(model_dir)
    batch = tok(["My order #123456 has not arrived after ten days.",
                 "I was billed twice for my Team subscription."], return_tensors="pt", padding=True)
    batch["labels"] = batch["input_ids"].clone()
    if eval_first:
        model.eval()
        with torch.no_grad():
            model(**batch)
            model.generate(**{k: v for k, v in batch.items() if k != "labels"}, max_new_tokens=2, do_sample=False,
                           pad_token_id=tok.pad_token_id)
    model.train()
    model(**batch).loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_workaround_keeps_gradients_exact_after_an_eval_pass(tiny_model):
    import torch

    reference = _lora_grads(tiny_model, eval_first=False, workaround=True)
    after_eval = _lora_grads(tiny_model, eval_first=True, workaround=True)
    assert reference.keys() == after_eval.keys() and len(reference) == 16
    assert any(g.abs().sum() > 0 for g in reference.values())
    for name in reference:
        torch.testing.assert_close(after_eval[name], reference[name], rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.skipif(not _has_avx512_bf16(), reason="bitsandbytes repacks (and so corrupts) only on avx512_bf16 "
                    "CPUs; this one has none, so the bug cannot show here")
def test_without_the_workaround_the_bug_is_real(tiny_model):
    """Shows that the first test guards something: on this CPU the bug corrupts gradients."""
    reference = _lora_grads(tiny_model, eval_first=False, workaround=True)
    broken = _lora_grads(tiny_model, eval_first=True, workaround=False)
    worst = max(float((broken[n] - reference[n]).norm() / (reference[n].norm() + 1e-12)) for n in reference)
    assert worst > 0.05


def test_each_rank_loads_its_4bit_base_onto_its_own_gpu():
    """The device map of a QLoRA base (no GPU here: the choice itself). Under `accelerate launch` every rank
    has LOCAL_RANK; without a map of its own every rank would load onto GPU 0."""
    from core.training.sft import qlora_device_map

    assert qlora_device_map("cuda", {"LOCAL_RANK": "1", "RANK": "3"}) == {"": 1}
    assert qlora_device_map("cuda", {"LOCAL_RANK": "0"}) == {"": 0}
    assert qlora_device_map("cuda", {}) == {"": 0}  # one process
    assert qlora_device_map("cpu", {"LOCAL_RANK": "1"}) is None  # nothing to place on a CPU
