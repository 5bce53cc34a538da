"""Who is calling: a personal API token (`Authorization: Bearer tb_...`) names an account, which
then acts through the same core checks as the pages. Failed attempts are counted per address and
per token id (core/throttle.py): the eleventh within a minute is answered 429 without a look."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from api.errors import ApiError
from core import owner as owners
from core import tokens
from core.auth import User
from core.owner import Owner
from core.throttle import SIGN_IN

HOW = "Send `Authorization: Bearer <token>`; make a token on the Account page or with `tuneboard tokens create`."


def the_owner() -> Owner:
    owner = owners.running()
    if owner is None:
        raise ApiError(503, "unavailable", "The server is starting or stopping; try again in a moment.",
                       {"Retry-After": "2"})
    return owner


def address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# Declares the scheme in the OpenAPI schema (the docs page's "Authorize" button); the header is read
# below, so a missing or malformed one gets tuneboard's own message.
BEARER = HTTPBearer(auto_error=False, description="A personal token: tb_<id>_<secret>.")


def caller(request: Request, owner: Owner = Depends(the_owner), _scheme=Depends(BEARER)) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", f"No API token. {HOW}", {"WWW-Authenticate": "Bearer"})
    token = token.strip()
    keys = (f"addr:{address(request)}", f"token:{tokens.token_id_of(token)}" if tokens.token_id_of(token) else None)
    SIGN_IN.check(*keys)
    user = tokens.token_user(owner.store, token)
    if user is None:
        SIGN_IN.fail(*keys)
        raise ApiError(401, "unauthenticated", "This token is unknown, expired or revoked, or its account is "
                       f"disabled. {HOW}", {"WWW-Authenticate": "Bearer"})
    return user
