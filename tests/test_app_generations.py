"""AppTest tier for the Generations page: a stored set read side by side, model output kept
inert, a parity failure shown with its first divergence, and a set started from the form."""

from __future__ import annotations

import json

import pytest

from core.datasets import ImportOptions, import_dataset
from core.serving import list_sets
from tests.apptest import assert_clean, button, goto, titles, wait_for_job
from tests.test_app import app, fast_password_hashing  # noqa: F401  (the same fixtures as the other pages)

pytestmark = pytest.mark.slow

HOSTILE = '**bold** <script>alert("x")</script> [link](http://evil.example)'


def _stored_set(owner) -> str:
    """A finished set as the owner would have stored it (job, prompts, outputs, parity)."""
    store, set_id = owner.store, "generate-stored"
    decoding = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 32, "seed": 0}
    variants = [{"variant_id": "base", "kind": "base", "name": "base (tiny)", "path": "/m", "model": "",
                 "api_key_env": ""},
                {"variant_id": "adapter:r1", "kind": "adapter", "name": "r1", "path": "/a", "model": "",
                 "api_key_env": ""}]
    store.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES (?, 'generate', "
                  "'succeeded', '/nowhere', '{}', 'eve')", [set_id])
    store.execute("INSERT INTO generation_sets (set_id, name, source, base_model, variants, decoding, requested_path, "
                  "chosen_path, path_reason, n_prompts) VALUES (?, 'stored', '{}', '/m', ?, ?, 'vllm-lora', "
                  "'vllm-lora', 'vllm-lora was requested', 1)", [set_id, json.dumps(variants), json.dumps(decoding)])
    store.execute("INSERT INTO generation_prompts VALUES (?, 0, ?, 'the reference', 'x:0')",
                  [set_id, json.dumps([{"role": "user", "content": "My parcel is late again, please help me."}])])
    for variant, text, finish in (("base", HOSTILE, "length"), ("adapter:r1", '{"category": "shipping"}', "stop")):
        store.execute("INSERT INTO generations (set_id, prompt_idx, variant_id, output, tokens_in, tokens_out, "
                      "finish_reason, latency_ms, backend, decoding) VALUES (?, 0, ?, ?, 20, 12, ?, 50, 'vllm-lora', ?)",
                      [set_id, variant, text, finish, json.dumps(decoding)])
    detail = {"exact_rate": 0.5, "mean_length": 12, "first_divergence": {
        "prompt_idx": 0, "position": 3, "agreed": "the same", "served": "vllm went here", "reference": "peft went there"}}
    store.execute("INSERT INTO parity_checks VALUES (?, 'adapter:r1', 'vllm-lora', 'transformers+peft', 2, 1, 3.5, ?)",
                  [set_id, json.dumps(detail)])
    return set_id


def test_lead_reads_a_set_side_by_side_with_flags_and_parity(app, owner):
    _stored_set(owner)
    at = goto(app("leo"), "Generations")
    assert_clean(at)
    assert titles(at) == ["Generations"]
    assert any("succeeded · 2/2 outputs" in (p.proto.text or "") for p in at.get("progress"))
    # Model output goes through st.text: the markup arrives as literal text, never rendered.
    assert HOSTILE in [t.value for t in at.text]
    assert not any(HOSTILE in m.value for m in at.markdown)
    assert any("base (tiny): 100% of 1 outputs hit max_tokens" in w.value for w in at.warning)
    [parity] = [e.value for e in at.error if "greedy outputs identical" in e.value]
    assert "r1: 1/2" in parity and "do not rate or score" in parity
    assert "vllm went here" in [t.value for t in at.text] and "peft went there" in [t.value for t in at.text]


def test_engineer_starts_a_set_from_the_form(app, owner, accounts, demo_files):
    good, _ = demo_files
    import_dataset(owner.store, accounts["engineer"], good.read_bytes(), good.name, ImportOptions(name="tickets"))
    at = goto(app("eve"), "Generations")
    assert_clean(at)
    [limit] = [w for w in at.number_input if w.label == "Only the first"]
    limit.set_value(2)
    [path] = [s for s in at.selectbox if s.label == "Serving path"]
    path.set_value("transformers")
    [max_tokens] = [w for w in at.number_input if w.label == "max_tokens"]
    max_tokens.set_value(8)
    button(at, "Generate").click().run()
    assert_clean(at)
    assert any("2 prompts x 1 variants" in s.value for s in at.success)
    (record,) = list_sets(owner.store, accounts["engineer"])
    assert record["requested_path"] == "transformers" and json.loads(record["decoding"])["max_tokens"] == 8
    job = wait_for_job(owner, record["set_id"], timeout=120)
    assert job["status"] == "succeeded", owner.jobs.log_tail(record["set_id"])


def test_playground_offers_to_start_the_model_server(app):
    at = goto(app("leo"), "Playground")
    assert_clean(at)
    assert titles(at) == ["Playground"]
    assert any("No model server is running" in i.value for i in at.info)
    assert [b for b in at.button if b.label == "Start model server"]
    assert not at.text_area  # no prompt form before a server is ready
