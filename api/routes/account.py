"""Signing in and personal tokens: log in with a password for a token (the one route without a
token), see who a token is, list, create and revoke one's own tokens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.auth import address, caller, the_owner
from core import tokens
from core.auth import User
from core.errors import AuthError
from core.owner import Owner
from core.throttle import SIGN_IN
from core.users import authenticate

router = APIRouter(tags=["account"])


class Login(BaseModel):
    username: str = Field(max_length=100)
    password: str = Field(max_length=1000)
    name: str = Field("api", max_length=100, description="What the token is for (shown in token lists).")
    days: int | None = Field(None, description="Days the token lives (default: auth.token_days).")


class NewToken(BaseModel):
    name: str = Field(max_length=100, description="What the token is for, e.g. 'ci' or 'notebook'.")
    days: int | None = Field(None, description="Days the token lives (default: auth.token_days).")


class TokenOut(BaseModel):
    token_id: str
    username: str
    role: str = Field(description="The account's role now (the token acts with it).")
    name: str
    expires_at: datetime
    token: str = Field(description="The token itself: shown this once, stored only as a hash.")


class Me(BaseModel):
    username: str
    role: str


@router.post("/login", response_model=TokenOut, status_code=201,
             summary="Exchange a username and password for a personal token")
def login(body: Login, request: Request, owner: Owner = Depends(the_owner)) -> TokenOut:
    keys = (f"user:{body.username}", f"addr:{address(request)}")
    SIGN_IN.check(*keys)
    try:
        user = authenticate(owner.store, body.username, body.password)
    except AuthError:
        SIGN_IN.fail(*keys)
        raise
    return _issue(owner, user, body.name, body.days)


def _issue(owner: Owner, user: User, name: str, days: int | None) -> TokenOut:
    auth = owner.settings.auth
    record, token = tokens.create_token(owner.store, user, name, days or auth.token_days, auth.max_token_days)
    return TokenOut(**record, role=user.role.value, token=token)


@router.get("/me", response_model=Me, summary="The account a token acts as")
def me(user: User = Depends(caller)) -> Me:
    return Me(username=user.username, role=user.role.value)


@router.get("/tokens", summary="Your tokens (engineers: everyone's with ?everyone=true)")
def list_tokens(everyone: bool = False, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return tokens.list_tokens(owner.store, user, everyone)


@router.post("/tokens", response_model=TokenOut, status_code=201, summary="Create another token of your own")
def create_token(body: NewToken, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> TokenOut:
    return _issue(owner, user, body.name, body.days)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke one of your tokens (engineers: anyone's)")
def revoke_token(token_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> None:
    tokens.revoke_token(owner.store, user, token_id)
