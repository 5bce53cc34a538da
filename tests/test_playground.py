"""The playground's model server as a job: started from core, ready with its URL, streams a
chat, loads an adapter trained after it started without a restart, and stops on cancel."""

from __future__ import annotations

import time

import pytest

from core.demo.tiny import build_random_adapter
from core.errors import InvalidInput, PermissionDenied
from core.serving import Decoding, available_variants
from core.serving.playground import model_server, start_model_server, stop_model_server, stream
from tests.test_serving import add_adapter

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def _wait_ready(owner, actor, timeout=500):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owner.jobs.reconcile()
        server = model_server(owner.store, owner.jobs, actor)
        assert server is not None, owner.store.rows("SELECT status, error FROM jobs WHERE kind = 'serve'")
        if server["ready"]:
            return server
        time.sleep(1)
    raise AssertionError("the model server did not become ready")


def test_model_server_job_streams_and_loads_new_adapters_at_run_time(owner, accounts, tiny_model, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setattr(owner.settings.serving, "server_port", 0)  # 0: let the server pick a free port
    lead = accounts["lead"]
    with pytest.raises(PermissionDenied):
        start_model_server(owner.store, owner.jobs, owner.settings, accounts["rater"])
    first = add_adapter(owner, tiny_model, str(build_random_adapter(tiny_model, tmp_path / "a1", seed=1)), "a1")
    job_id = start_model_server(owner.store, owner.jobs, owner.settings, lead)
    with pytest.raises(InvalidInput, match="already running"):
        start_model_server(owner.store, owner.jobs, owner.settings, lead)
    try:
        server = _wait_ready(owner, lead)
        assert set(server["ready"]["models"]) == {"base", first}
        later = add_adapter(owner, tiny_model, str(build_random_adapter(tiny_model, tmp_path / "a2", seed=2)), "a2")
        variants = {v.variant_id: v for v in available_variants(owner.store, lead, owner.settings.base_model)}
        chat = [{"role": "user", "content": "My parcel is late."}]
        texts = {}
        for variant_id in ("base", first, later):  # `later` is loaded into the running server now
            texts[variant_id] = "".join(stream(server, variants[variant_id], chat, Decoding(max_tokens=12)))
        # Three different models answered. (Not "each said something": the tiny model's weights are
        # random, and its greedy first token can be the end of the answer; this failed once in a
        # parallel run, where one answer came back empty.)
        assert len(set(texts.values())) == 3, texts
        # Streaming again does not try to load the adapter twice.
        assert "".join(stream(server, variants[later], chat, Decoding(max_tokens=12))) == texts[later]
    finally:
        stop_model_server(owner.store, owner.jobs, lead)
    job = owner.jobs.wait(job_id, timeout=120, poll=0.5)
    assert job["status"] == "cancelled"
    assert model_server(owner.store, owner.jobs, lead) is None
