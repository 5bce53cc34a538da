"""The playground's model server: one vLLM OpenAI server job per workspace, and streaming
chats through it.

Starting it is a job (`serve`, core.serving.serve_worker) so the dashboard never hosts an
engine; the page streams from the server's URL. Adapters trained after the server started
are loaded into it at run time, without a restart.
"""

from __future__ import annotations

import json
from typing import Iterator

from core.auth import Action, User, require
from core.config import Settings
from core.errors import InvalidInput
from core.jobs import ACTIVE, Jobs
from core.serving import available_variants, vllm_missing
from core.serving.backends import Decoding
from core.store import Store
from core.variants import Variant


def model_server(store: Store, jobs: Jobs, actor: User) -> dict | None:
    """The running (or starting) model server job: its row plus `ready` (url, models) once up."""
    require(actor, Action.GENERATE)
    job = store.row("SELECT * FROM jobs WHERE kind = 'serve' AND status IN ('queued', 'running') "
                    "ORDER BY created_at DESC LIMIT 1")
    if job is None:
        return None
    ready = jobs.events(job["job_id"], "ready")
    job["ready"] = ready[-1] if ready else None
    progress = jobs.events(job["job_id"], "progress")
    job["stage"] = progress[-1].get("stage") if progress else "starting"
    return job


def last_server_failure(store: Store, actor: User) -> str | None:
    """Why the most recent model server failed, if it did (shown until another one starts)."""
    require(actor, Action.GENERATE)
    last = store.row("SELECT status, error FROM jobs WHERE kind = 'serve' ORDER BY created_at DESC LIMIT 1")
    return last["error"] if last and last["status"] == "failed" else None


def start_model_server(store: Store, jobs: Jobs, settings: Settings, actor: User, port: int | None = None) -> str:
    """Start vLLM's OpenAI server over the base and every adapter of it (a job)."""
    require(actor, Action.GENERATE)
    why = vllm_missing()
    if why:
        raise InvalidInput(f"The playground streams from a vLLM server, but {why}.")
    running = model_server(store, jobs, actor)
    if running:
        raise InvalidInput(f"A model server is already running ({running['job_id']}); stop it first.")
    config = {"base_model": settings.base_model, "adapters": server_adapters(store, actor, settings.base_model),
              "host": "127.0.0.1", "port": port or settings.serving.server_port,
              "max_model_len": server_max_model_len(settings)}
    return jobs.submit(actor, "serve", config)


def server_adapters(store: Store, actor: User, base_model: str) -> dict[str, str]:
    """The adapters of `base_model` a model server loads at start, by variant id (their paths)."""
    require(actor, Action.GENERATE)
    return {v.variant_id: v.path for v in available_variants(store, actor, base_model) if v.kind == "adapter"}


def server_max_model_len(settings: Settings) -> int:
    """serving.max_model_len, capped at the base model's own context where its config says."""
    from core.serving.vllm_engine import context_limit

    limit = context_limit(settings.base_model)
    return min(settings.serving.max_model_len, limit) if limit else settings.serving.max_model_len


def stop_model_server(store: Store, jobs: Jobs, actor: User) -> None:
    running = model_server(store, jobs, actor)
    if running is None:
        raise InvalidInput("No model server is running.")
    jobs.cancel(actor, running["job_id"])


def serve_variant(server: dict, variant: Variant) -> Variant:
    """The variant as the server serves it, loading an adapter trained since the server started."""
    from urllib.parse import urlparse

    from core.serving.server import VLLMServer

    ready = server.get("ready")
    if not ready or server["status"] not in ACTIVE:
        raise InvalidInput("The model server is not ready yet.")
    if variant.kind == "external":
        return variant
    if variant.kind in ("merged", "model"):
        raise InvalidInput(f"{variant.name} is a whole model of its own: the playground serves the base and its "
                           "adapters (compare it in a generation set instead).")
    name = "base" if variant.kind == "base" else variant.variant_id
    url = urlparse(ready["url"])
    handle = VLLMServer(json.loads(server["config"])["base_model"], host=url.hostname, port=url.port,
                        max_lora_rank=ready["max_lora_rank"])
    if name not in handle.models():
        handle.load_adapter(name, variant.path)
    return Variant(variant.variant_id, "external", variant.name, ready["url"], name,
                   system_prompt=variant.system_prompt, few_shot=variant.few_shot)


def stream(server: dict, variant: Variant, messages: list[dict], decoding: Decoding) -> Iterator[str]:
    """Text deltas of one chat from one variant."""
    from core.serving.openai_api import stream_chat

    served = serve_variant(server, variant)
    return stream_chat(served, list(served.prompted(tuple(messages))), decoding)


def playground_variants(store: Store, actor: User, settings: Settings) -> list[Variant]:
    return [v for v in available_variants(store, actor, settings.base_model) if v.kind not in ("merged", "model")]


