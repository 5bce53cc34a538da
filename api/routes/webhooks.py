"""Webhooks (engineers): register a URL for events (its signing secret is shown once), list,
delete, read each hook's delivery log, and send a test ping. The rules live in core.webhooks."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.auth import caller, the_owner
from core import webhooks
from core.auth import User
from core.owner import Owner

router = APIRouter(tags=["webhooks"])


class NewHook(BaseModel):
    url: str = Field(max_length=2000, description="Where events are POSTed (http:// or https://).")
    events: list[str] = Field(min_length=1, max_length=len(webhooks.EVENTS),
                              description="Any of: " + ", ".join(webhooks.EVENTS) + ".")
    name: str = Field("", max_length=100, description="What the hook is for (default: the URL's host).")


class Hook(BaseModel):
    hook_id: str
    name: str
    url: str
    events: list[str]
    created_by: str
    created_at: datetime
    delivered: int = 0
    pending: int = 0
    gave_up: int = 0


class NewHookOut(Hook):
    secret: str = Field(description="Signs every delivery (X-Tuneboard-Signature: sha256=<hex HMAC-SHA256 of the "
                                    "raw body>). Shown this once.")


class Attempt(BaseModel):
    attempt: int
    at: str
    code: int | None = None
    error: str | None = None
    ms: int | None = None


class Delivery(BaseModel):
    delivery_id: str
    hook_id: str
    event: str
    event_id: str = Field(description="The body's `id`: the same on every retry, for the receiver to drop repeats.")
    status: str = Field(description="pending, delivered, gave_up or cancelled (the hook was deleted).")
    attempts: int
    last_code: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    created_at: datetime
    log: list[Attempt] = []


class Queued(BaseModel):
    delivery_id: str
    event: str = webhooks.PING


@router.post("/webhooks", response_model=NewHookOut, status_code=201,
             summary="Register a URL for events (the signing secret is shown once)")
def create_hook(body: NewHook, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> NewHookOut:
    hook, _ = webhooks.create_hook(owner.store, user, body.url, body.events, body.name)
    return NewHookOut(**hook)


@router.get("/webhooks", response_model=list[Hook], summary="Registered webhooks with their delivery counts")
def list_hooks(user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> list[Hook]:
    return [Hook(**h) for h in webhooks.list_hooks(owner.store, user)]


@router.delete("/webhooks/{hook_id}", status_code=204,
                summary="Delete a webhook (its pending deliveries are cancelled)")
def delete_hook(hook_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> None:
    webhooks.delete_hook(owner.store, user, hook_id)


@router.get("/webhooks/{hook_id}/deliveries", response_model=list[Delivery],
            summary="A webhook's deliveries, newest first: status, attempts, last code or error, next attempt")
def deliveries(hook_id: str, limit: int = 100, user: User = Depends(caller),
               owner: Owner = Depends(the_owner)) -> list[Delivery]:
    return [Delivery(**d) for d in webhooks.deliveries(owner.store, user, hook_id, limit)]


@router.post("/webhooks/{hook_id}/test", response_model=Queued, status_code=202,
             summary="Send a signed 'ping' event to a webhook (its outcome shows in the deliveries)")
def send_test(hook_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Queued:
    delivery_id = webhooks.send_test(owner.store, user, hook_id)
    if owner.hooks is not None:
        owner.hooks.wake()
    return Queued(delivery_id=delivery_id)
