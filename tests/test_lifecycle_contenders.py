"""Contenders: a newer base model (its own engine and tokenizer) and a prompted base (system prompt
and few-shot examples as part of the variant), answering the same prompts as the fine-tunes."""

from __future__ import annotations

import json

import pytest

from core.errors import InvalidInput, PermissionDenied
from core.lifecycle import contenders
from core.serving import GenerationSpec, available_variants, generate
from core.variants import Variant

SHOTS = [{"user": "My card was charged twice.", "assistant": '{"category": "billing"}'}]


def test_a_prompt_goes_in_front_of_every_chat_and_replaces_its_system_message():
    chat = ({"role": "system", "content": "old"}, {"role": "user", "content": "Hi"})
    v = Variant("contender:p", "base", "p", "/m", system_prompt="Answer in JSON.",
                few_shot=[["a?", "A"], ["b?", "B"]])
    assert [m["content"] for m in v.prompted(chat)] == ["Answer in JSON.", "a?", "A", "b?", "B", "Hi"]
    assert [m["role"] for m in v.prompted(chat)] == ["system", "user", "assistant", "user", "assistant", "user"]
    shots_only = Variant("contender:q", "base", "q", "/m", few_shot=[["a?", "A"]])
    assert [m["content"] for m in shots_only.prompted(chat)] == ["old", "a?", "A", "Hi"]  # its own system stays
    assert Variant("base", "base", "b", "/m").prompted(chat) == chat
    assert Variant(**json.loads(json.dumps(v.to_dict()))) == v  # survives the set's config file


def test_registering_contenders_checks_what_people_give(owner, accounts, tiny_model, tmp_path):
    eng = accounts["engineer"]
    with pytest.raises(InvalidInput, match="needs a system prompt or few-shot examples"):
        contenders.register(owner.store, eng, "plain", tiny_model)
    with pytest.raises(InvalidInput, match="few_shot example 1: both the user message and the answer"):
        contenders.register(owner.store, eng, "p", tiny_model, few_shot=[{"user": "x", "assistant": ""}])
    with pytest.raises(InvalidInput, match="is not a model folder"):
        contenders.register(owner.store, eng, "newer", tiny_model, model=str(tmp_path))
    with pytest.raises(InvalidInput, match="tasks: no dataset named nope"):
        contenders.register(owner.store, eng, "p", tiny_model, system_prompt="Be brief.", tasks=["nope"])
    with pytest.raises(PermissionDenied):
        contenders.register(owner.store, accounts["lead"], "p", tiny_model, system_prompt="Be brief.")
    with pytest.raises(InvalidInput, match="line 2: not JSON"):
        contenders.read_few_shot(b'{"user": "a", "assistant": "b"}\n{oops\n', "shots.jsonl")
    prompted = contenders.register(owner.store, eng, "prompted-base", tiny_model, system_prompt="Answer in JSON.",
                                   few_shot=SHOTS)
    listed = {v.variant_id: v for v in available_variants(owner.store, accounts["lead"], tiny_model)}
    assert listed[prompted].kind == "base" and listed[prompted].system_prompt == "Answer in JSON."
    assert listed[prompted].few_shot == (("My card was charged twice.", '{"category": "billing"}'),)
    assert [c["variant_id"] for c in contenders.contenders(owner.store, accounts["lead"])] == [prompted]


@pytest.mark.slow
def test_a_newer_model_and_a_prompted_base_answer_the_same_prompts(owner, accounts, tiny_model, tmp_path):
    from core.demo.tiny import build_tiny_model

    eng = accounts["engineer"]
    newer = str(build_tiny_model(tmp_path / "newer-tiny", seed=5))  # another model: other weights
    model_id = contenders.register(owner.store, eng, "newer", tiny_model, model=newer)
    prompted = contenders.register(owner.store, eng, "prompted", tiny_model, system_prompt="Answer in JSON.",
                                   few_shot=SHOTS)
    prompts = [{"messages": [{"role": "user", "content": f"Ticket {i}: my order is late."}], "reference": "x",
                "source_ref": f"t:{i}"} for i in range(3)]
    set_id = generate(owner.store, owner.jobs, owner.settings, eng,
                      GenerationSpec("contenders", ["base", prompted, model_id], prompts, {"kind": "file"},
                                     path="transformers"))
    job = owner.jobs.wait(set_id, timeout=300, poll=0.3)
    assert job["status"] == "succeeded", owner.jobs.log_tail(set_id)
    rows = {(r["variant_id"], r["prompt_idx"]): r for r in owner.store.rows(
        "SELECT variant_id, prompt_idx, output, tokens_in FROM generations WHERE set_id = ?", [set_id])}
    assert len(rows) == 9
    # The prompted base read its system prompt and example first: a longer prompt than the base's.
    assert all(rows[(prompted, i)]["tokens_in"] > rows[("base", i)]["tokens_in"] + 10 for i in range(3))
    # The newer model answered with its own weights.
    assert [rows[(model_id, i)]["output"] for i in range(3)] != [rows[("base", i)]["output"] for i in range(3)]
    stored = {v["variant_id"]: v for v in json.loads(owner.store.row(
        "SELECT variants FROM generation_sets WHERE set_id = ?", [set_id])["variants"])}
    assert stored[prompted]["system_prompt"] == "Answer in JSON." and stored[model_id]["path"] == newer
