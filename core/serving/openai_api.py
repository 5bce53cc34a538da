"""Generation through any OpenAI-compatible endpoint: an external contender, or a `VLLMServer`.

`OpenAIBackend` implements the Backend protocol over chat completions, one client per
variant, requests sent concurrently. `stream_chat` yields the text of one chat as it is
generated (the playground). The endpoint renders the chat itself, so token counts come
from its `usage`, not from our tokenizer.

API keys: a variant names the environment variable that holds its key (`api_key_env`);
the key is read from the environment when a client is built and lives only in that client.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

from core.errors import InvalidInput, JobError
from core.serving.backends import Choices, Decoding, Request, Result, request_seed
from core.variants import Variant

NO_KEY = "EMPTY"  # what vLLM and most local servers accept when they check no key


def _client(variant: Variant, timeout: float):
    import openai

    if not variant.path:
        raise InvalidInput(f"Variant {variant.variant_id!r} has no endpoint URL (e.g. http://127.0.0.1:8000/v1).")
    if not variant.model:
        raise InvalidInput(f"Variant {variant.variant_id!r} names no model to request from {variant.path}.")
    key = NO_KEY
    if variant.api_key_env:
        key = os.environ.get(variant.api_key_env, "")
        if not key:
            raise InvalidInput(f"Variant {variant.variant_id!r}: the environment variable {variant.api_key_env} "
                               f"holding its API key is not set. Export it (export {variant.api_key_env}=...) "
                               f"in the environment that runs tuneboard.")
    return openai.OpenAI(base_url=variant.path, api_key=key, timeout=timeout)


def _job_error(variant: Variant, error: Exception) -> JobError:
    """An endpoint's failure as a message a person can act on: which variant, which URL, what it said."""
    import openai

    if isinstance(error, openai.APIStatusError):
        body = error.body
        message = body.get("message") if isinstance(body, dict) else None
        detail = f"HTTP {error.status_code}: {message or body or error.message}"
    elif isinstance(error, openai.APIConnectionError):
        # The root cause ("Connection refused", a DNS failure) is a few exceptions down.
        cause, root = error.__cause__, None
        while cause is not None:
            root, cause = cause, cause.__cause__ or cause.__context__
        detail = f"{error.message}" + (f" ({root})" if root and str(root) else "")
    else:
        detail = f"{type(error).__name__}: {error}"
    return JobError(f"Variant {variant.variant_id!r} at {variant.path} (model {variant.model!r}) failed: {detail}")


def _sampling(decoding: Decoding, prompt_idx: int) -> dict:
    return {"temperature": decoding.temperature, "top_p": decoding.top_p, "max_tokens": decoding.max_tokens,
            "seed": request_seed(decoding, prompt_idx)}


class OpenAIBackend:
    name = "openai"

    def __init__(self, variants: list[Variant], concurrency: int = 8, timeout: float = 300,
                 choices: Choices | None = None):
        if concurrency < 1:
            raise InvalidInput(f"concurrency must be at least 1, not {concurrency}.")
        self.variants = {v.variant_id: v for v in variants}
        self.concurrency = concurrency
        self.choices = choices
        self._no_logprobs: set[str] = set()  # endpoints that refused a request for logprobs
        self._clients = {v.variant_id: _client(v, timeout) for v in variants}

    def _create(self, r: Request, decoding: Decoding):
        """One chat completion; with `choices`, asking for logprobs, and without them where the endpoint
        refuses that (some do: they are optional in the API)."""
        import openai

        variant = self.variants[r.variant_id]
        kwargs = {"model": variant.model, "messages": list(r.messages), **_sampling(decoding, r.prompt_idx)}
        if self.choices and variant.variant_id not in self._no_logprobs:
            try:
                return self._clients[r.variant_id].chat.completions.create(
                    **kwargs, logprobs=True, top_logprobs=min(self.choices.top, 20))
            except openai.BadRequestError:
                self._no_logprobs.add(variant.variant_id)
        return self._clients[r.variant_id].chat.completions.create(**kwargs)

    def _one(self, r: Request, decoding: Decoding) -> Result:
        import openai

        variant = self.variants[r.variant_id]
        t0 = time.perf_counter()
        try:
            response = self._create(r, decoding)
        except openai.OpenAIError as e:  # its transport's errors arrive wrapped as APIConnectionError
            raise _job_error(variant, e) from None
        latency_ms = (time.perf_counter() - t0) * 1000
        if not response.choices:
            raise JobError(f"Variant {variant.variant_id!r} at {variant.path} returned no choices.")
        choice = response.choices[0]
        usage = response.usage
        text = choice.message.content or ""
        steps = getattr(choice.logprobs, "content", None) if self.choices else None
        probabilities = self.choices.from_texts(text, [(s.token, [(c.token, c.logprob) for c in s.top_logprobs or []])
                                                       for s in steps]) if steps else None
        return Result(r.prompt_idx, r.variant_id, text,
                      getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0,
                      "length" if choice.finish_reason == "length" else "stop", latency_ms, self.name,
                      choices=probabilities)

    def generate(self, requests: list[Request], decoding: Decoding) -> list[Result]:
        unknown = sorted({r.variant_id for r in requests} - set(self.variants))
        if unknown:
            raise InvalidInput(f"This backend was not built for variant(s) {', '.join(unknown)}.")
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai")
        try:
            futures = [pool.submit(self._one, r, decoding) for r in requests]
            return [f.result() for f in futures]  # in request order; the first failure stops the set
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients = {}


def stream_chat(variant: Variant, messages, decoding: Decoding, timeout: float = 300) -> Iterator[str]:
    """Yield the text of one chat completion piece by piece, as the endpoint produces it."""
    import openai

    client = _client(variant, timeout)
    try:
        stream = client.chat.completions.create(model=variant.model, messages=list(messages), stream=True,
                                                **_sampling(decoding, 0))
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
    except openai.OpenAIError as e:
        raise _job_error(variant, e) from None
    finally:
        client.close()
