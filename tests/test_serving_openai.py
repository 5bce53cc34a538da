"""OpenAIBackend's failures are typed and actionable, with no endpoint or model needed."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput, JobError
from core.serving.backends import Decoding, Request
from core.serving.openai_api import OpenAIBackend, stream_chat
from core.serving.server import free_port
from core.variants import Variant

MESSAGES = ({"role": "user", "content": "hello"},)


def external(url: str = "http://127.0.0.1:9/v1", key_env: str = "") -> Variant:
    return Variant("external:x", "external", "x", path=url, model="some-model", api_key_env=key_env)


def test_missing_api_key_env_names_the_variable(monkeypatch):
    monkeypatch.delenv("TUNEBOARD_TEST_MISSING_KEY", raising=False)
    with pytest.raises(InvalidInput, match="TUNEBOARD_TEST_MISSING_KEY") as info:
        OpenAIBackend([external(key_env="TUNEBOARD_TEST_MISSING_KEY")])
    assert "export" in str(info.value).lower()


def test_present_api_key_env_is_accepted(monkeypatch):
    monkeypatch.setenv("TUNEBOARD_TEST_KEY", "sk-test")
    OpenAIBackend([external(key_env="TUNEBOARD_TEST_KEY")]).close()


def test_closed_port_is_a_job_error_naming_variant_and_url():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    backend = OpenAIBackend([external(url)], timeout=10)
    try:
        with pytest.raises(JobError) as info:
            backend.generate([Request(0, "external:x", MESSAGES)], Decoding(max_tokens=4))
    finally:
        backend.close()
    assert "external:x" in str(info.value) and url in str(info.value)
    with pytest.raises(JobError, match="external:x"):
        list(stream_chat(external(url), MESSAGES, Decoding(max_tokens=4), timeout=10))


def test_request_for_unknown_variant_is_invalid_input():
    backend = OpenAIBackend([external()])
    with pytest.raises(InvalidInput, match="other"):
        backend.generate([Request(0, "other", MESSAGES)], Decoding())
