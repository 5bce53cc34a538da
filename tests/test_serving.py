"""Generation sets on the transformers path (no vLLM needed): real worker processes over the
tiny model and real PEFT adapters; outputs land in DuckDB once, with their decoding."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.datasets import ImportOptions, import_dataset
from core.demo.tiny import build_random_adapter
from core.errors import InvalidInput, PermissionDenied
from core.jobs.events import EVENTS_FILE
from core.serving import (Decoding, GenerationSpec, available_variants, generate, get_set, outputs,
                          parity_results, prompts_from_file, prompts_from_version, register_external, sanity)
from core.serving.checks import common_prefix, parity, repeats_prompt
from core.serving.checks import sanity as sanity_of
from tests.conftest import built_once


@pytest.fixture(scope="session")
def tiny_adapters(tiny_model, tmp_path_factory) -> list[str]:
    return [str(built_once(tmp_path_factory, f"tiny-adapter-{seed}",
                           lambda folder, seed=seed: build_random_adapter(tiny_model, folder, seed=seed)))
            for seed in (1, 2)]


def add_adapter(owner, tiny_model: str, path: str, name: str) -> str:
    """Register an adapter as a finished training run would (core.training's event handler)."""
    owner.store.execute("INSERT INTO model_variants (variant_id, kind, name, path, base_model) "
                        "VALUES (?, 'adapter', ?, ?, ?)", [f"adapter:{name}", name, path, tiny_model])
    return f"adapter:{name}"


@pytest.fixture
def tickets(owner, accounts, demo_files) -> str:
    good, _ = demo_files
    return import_dataset(owner.store, accounts["engineer"], good.read_bytes(), good.name,
                          ImportOptions(name="tickets")).version_id


# ---- pure checks ----------------------------------------------------------------------
def test_decoding_errors_name_the_field():
    assert Decoding().greedy and Decoding(temperature=0.7).greedy is False
    with pytest.raises(InvalidInput, match="max_tokens: 0 is outside"):
        Decoding(max_tokens=0)
    with pytest.raises(InvalidInput, match="top_p"):
        Decoding(top_p=1.5)
    with pytest.raises(InvalidInput, match="unknown field.*beam"):
        Decoding.from_dict({"beam": 4})
    assert Decoding.from_dict(Decoding(temperature=0.5, seed=3).to_dict()) == Decoding(temperature=0.5, seed=3)


def test_sanity_flags_runaways_empties_and_echoes():
    ticket = "My invoice shows a double charge for the March subscription."
    prompts = {i: [{"role": "user", "content": ticket}] for i in range(10)}
    rows = [{"variant_id": "good", "prompt_idx": i, "output": '{"category": "billing"}', "finish_reason": "stop"}
            for i in range(10)]
    rows += [{"variant_id": "bad", "prompt_idx": i, "output": "", "finish_reason": "stop"} for i in range(3)]
    rows += [{"variant_id": "bad", "prompt_idx": i, "output": f"Sure. {ticket.upper()}  again", "finish_reason":
              "length"} for i in range(3, 10)]
    by = {s.variant_id: s for s in sanity_of(rows, prompts)}
    assert by["good"].flags == []
    bad = by["bad"]
    assert (bad.n, bad.empty, bad.runaway, bad.repeats_prompt) == (10, 3, 7, 7)
    assert len(bad.flags) == 3 and bad.to_dict()["runaway_rate"] == 0.7
    assert not repeats_prompt("short", [{"role": "user", "content": "hi"}])  # too short to call an echo


def test_parity_summary_reports_agreement_and_first_divergence():
    pairs = [(0, [1, 2, 3], [1, 2, 3]), (1, [1, 2, 9, 9], [1, 2, 3, 4]), (2, [5], [6])]
    result = parity(pairs, decode=lambda ids: " ".join(map(str, ids)))
    assert (result["n"], result["exact"]) == (3, 1)
    assert result["mean_common_prefix"] == pytest.approx((3 + 2 + 0) / 3)
    first = result["first_divergence"]
    assert (first["prompt_idx"], first["position"], first["agreed"]) == (1, 2, "1 2")
    assert first["served"].endswith("9 9") and first["reference"].endswith("3 4")
    assert common_prefix([1, 2], [1, 2, 3]) == 2


def test_uploaded_prompt_lists_name_bad_lines():
    prompts, source = prompts_from_file(b"What is LoRA?\n\nExplain QLoRA.\n", "questions.txt")
    assert [p["messages"][-1]["content"] for p in prompts] == ["What is LoRA?", "Explain QLoRA."]
    assert source == {"kind": "file", "name": "questions.txt"}
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    good = (json.dumps({"prompt": "p1", "reference": "r1"}) + "\n" + json.dumps(chat) + "\n").encode()
    prompts, _ = prompts_from_file(good, "p.jsonl")
    assert prompts[1]["reference"] == "hello" and prompts[1]["messages"] == [{"role": "user", "content": "hi"}]
    bad = b'{"prompt": "ok"}\nnot json\n{"messages": [{"role": "robot", "content": "x"}]}\n{"x": 1}\n'
    with pytest.raises(InvalidInput) as err:
        prompts_from_file(bad, "p.jsonl")
    message = str(err.value)
    assert "line 2: not valid JSON" in message and "line 3: messages[0]" in message and "line 4" in message


# ---- generation sets ------------------------------------------------------------------
def test_test_split_prompts_hold_the_reference(owner, accounts, tickets):
    prompts, source = prompts_from_version(owner.store, accounts["lead"], tickets, "test", limit=5)
    assert len(prompts) == 5 and source["split"] == "test" and source["version_id"] == tickets
    assert all(p["messages"][-1]["role"] == "user" and p["reference"].startswith("{") for p in prompts)
    with pytest.raises(PermissionDenied):
        prompts_from_version(owner.store, accounts["rater"], tickets)


def test_set_generates_every_variant_once_with_its_decoding(owner, accounts, tickets, tiny_model, tiny_adapters):
    a1 = add_adapter(owner, tiny_model, tiny_adapters[0], "a1")
    a2 = add_adapter(owner, tiny_model, tiny_adapters[1], "a2")
    prompts, source = prompts_from_version(owner.store, accounts["engineer"], tickets, "test", limit=6)
    decoding = Decoding(max_tokens=24)
    set_id = generate(owner.store, owner.jobs, owner.settings, accounts["lead"],
                      GenerationSpec("tiny test split", ["base", a1, a2], prompts, source, decoding,
                                     path="transformers"))
    job = owner.jobs.wait(set_id, timeout=180, poll=0.2)
    assert job["status"] == "succeeded", owner.jobs.log_tail(set_id)
    rows = outputs(owner.store, accounts["lead"], set_id)
    assert len(rows) == 18 and {(r["prompt_idx"], r["variant_id"]) for r in rows} == {
        (i, v) for i in range(6) for v in ("base", a1, a2)}
    assert all(r["backend"] == "transformers" and r["decoding"] == decoding.to_dict() for r in rows)
    assert all(r["tokens_in"] > 20 and 0 < r["tokens_out"] <= 24 and r["latency_ms"] > 0 for r in rows)
    by_variant = {v: [r["output"] for r in rows if r["variant_id"] == v] for v in ("base", a1, a2)}
    assert by_variant["base"] != by_variant[a1] != by_variant[a2]  # the adapters change the outputs
    record = get_set(owner.store, accounts["lead"], set_id)
    assert record["chosen_path"] == "transformers" and "requested" in record["path_reason"]
    assert record["n_outputs"] == 18 and record["decoding"]["max_tokens"] == 24
    # The seeded adapters repeat one token until max_tokens: the runaway check must flag them.
    flags = {s.variant_id: s for s in sanity(owner.store, accounts["lead"], set_id)}
    assert all(r["finish_reason"] == "length" and r["tokens_out"] == 24 for r in rows if r["variant_id"] == a1)
    assert flags[a1].runaway == 6 and any("hit max_tokens" in f for f in flags[a1].flags)
    assert parity_results(owner.store, accounts["lead"], set_id) == []  # PEFT made them: nothing to compare


def test_greedy_batches_equal_one_at_a_time(tiny_model, tiny_adapters):
    """Left padding must not change greedy outputs: batch of 5 == five batches of 1."""
    from core.serving.backends import Request
    from core.serving.hf import TransformersBackend
    from core.variants import Variant

    variants = [Variant("base", "base", "base", tiny_model), Variant("a", "adapter", "a", tiny_adapters[0])]
    chats = [({"role": "user", "content": "ticket " * (i + 1)},) for i in range(5)]
    requests = [Request(i, v.variant_id, chats[i]) for v in variants for i in range(5)]
    batched = TransformersBackend(tiny_model, variants, batch_size=5).generate(requests, Decoding(max_tokens=12))
    single = TransformersBackend(tiny_model, variants, batch_size=1).generate(requests, Decoding(max_tokens=12))
    assert [r.token_ids for r in batched] == [r.token_ids for r in single]


def test_cancelled_set_resumes_without_redoing_rows(owner, accounts, tickets, tiny_model, tiny_adapters,
                                                    monkeypatch):
    monkeypatch.setattr(owner.settings.serving, "chunk", 2)
    a1 = add_adapter(owner, tiny_model, tiny_adapters[0], "a1")
    prompts, source = prompts_from_version(owner.store, accounts["engineer"], tickets, "test")
    set_id = generate(owner.store, owner.jobs, owner.settings, accounts["engineer"],
                      GenerationSpec("resume", ["base", a1], prompts, source, Decoding(max_tokens=200),
                                     path="transformers"))
    deadline = time.time() + 120
    while time.time() < deadline and not owner.jobs.events(set_id, "generated"):
        owner.jobs.reconcile()
        time.sleep(0.05)
    owner.jobs.cancel(accounts["engineer"], set_id)
    job = owner.jobs.wait(set_id, timeout=120, poll=0.2)
    assert job["status"] == "cancelled", owner.jobs.log_tail(set_id)
    before = get_set(owner.store, accounts["engineer"], set_id)["n_outputs"]
    total = 2 * len(prompts)
    assert 0 < before < total
    owner.jobs.resume(accounts["engineer"], set_id)
    assert owner.jobs.wait(set_id, timeout=300, poll=0.2)["status"] == "succeeded"
    assert get_set(owner.store, accounts["engineer"], set_id)["n_outputs"] == total
    made = [row for e in owner.jobs.events(set_id, "generated") for row in e["rows"]]
    assert len(made) == total  # nothing generated twice
    assert len(owner.jobs.events(set_id, "plan")) == 1  # the resumed worker kept the set's path
    lines = [json.loads(x) for x in Path(job["run_dir"], EVENTS_FILE).read_text().splitlines()]
    assert any(x["type"] == "progress" and x.get("stage") == "resuming" for x in lines)


def test_requests_are_checked_before_anything_runs(owner, accounts, tickets, tiny_model, monkeypatch):
    prompts, source = prompts_from_version(owner.store, accounts["engineer"], tickets, "test", limit=2)

    def start(variants, **kw):
        return generate(owner.store, owner.jobs, owner.settings, kw.pop("actor", accounts["engineer"]),
                        GenerationSpec(kw.pop("name", "x"), variants, kw.pop("prompts", prompts), source, **kw))

    with pytest.raises(InvalidInput, match="unknown adapter:nope"):
        start(["base", "adapter:nope"])
    with pytest.raises(InvalidInput, match="choose at least one"):
        start([])
    with pytest.raises(InvalidInput, match="path: 'fast'"):
        start(["base"], path="fast")
    with pytest.raises(PermissionDenied):
        start(["base"], actor=accounts["rater"])
    register_external(owner.store, accounts["engineer"], "rival", "http://127.0.0.1:9/v1", "gpt-x", "RIVAL_KEY")
    monkeypatch.delenv("RIVAL_KEY", raising=False)
    with pytest.raises(InvalidInput, match=r"\$RIVAL_KEY"):
        start(["base", "external:rival"])
    assert owner.store.scalar("SELECT count(*) FROM jobs") == 0
    assert owner.store.scalar("SELECT count(*) FROM generation_sets") == 0


def test_external_contender_stores_only_the_key_name(owner, accounts):
    register_external(owner.store, accounts["engineer"], "rival", "https://api.example/v1", "gpt-x", "RIVAL_KEY")
    variant = next(v for v in available_variants(owner.store, accounts["lead"], "/m") if v.kind == "external")
    assert (variant.path, variant.model, variant.api_key_env) == ("https://api.example/v1", "gpt-x", "RIVAL_KEY")
    before = owner.store.rows("SELECT * FROM model_variants")
    # A key pasted where the variable's name goes, or inside the URL, is refused and never echoed.
    for key in ("sk-abc-def", "AbCdEf0123456789xyz", "sk_live_0123456789"):
        with pytest.raises(InvalidInput, match="api_key_env") as err:
            register_external(owner.store, accounts["engineer"], "r2", "https://x/v1", "m", key)
        assert key not in str(err.value)
    for url in ("https://user:sk-abc@x/v1", "https://x/v1?api_key=sk-abc"):
        with pytest.raises(InvalidInput, match="base_url") as err:
            register_external(owner.store, accounts["engineer"], "r3", url, "m")
        assert "sk-abc" not in str(err.value)
    with pytest.raises(InvalidInput, match="name"):
        register_external(owner.store, accounts["engineer"], "<b>x</b>", "https://x/v1", "m")
    with pytest.raises(PermissionDenied):
        register_external(owner.store, accounts["lead"], "r4", "https://x/v1", "m")
    assert owner.store.rows("SELECT * FROM model_variants") == before
