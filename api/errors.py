"""Errors as JSON: {"error": {"code": ..., "message": ...}}, with the HTTP status a client acts on.

Core raises typed errors with messages meant for a person (core/errors.py); this is the one place
that maps them to statuses. An unexpected failure is logged with an id and answered 500 with that
id and nothing else: no traceback, no internals.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (AuthError, ConfigError, InvalidInput, JobError, NotFound, PermissionDenied, StoreBusy,
                         StoreError, TuneboardError)
from core.throttle import TooManyAttempts

log = logging.getLogger("tuneboard.api")

# Most specific first: the first class an error is an instance of decides.
STATUS: list[tuple[type[Exception], int, str]] = [
    (TooManyAttempts, 429, "too_many_attempts"),
    (AuthError, 401, "unauthenticated"),
    (PermissionDenied, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (JobError, 409, "job_conflict"),
    (StoreBusy, 503, "busy"),
    (StoreError, 503, "storage"),
    (ConfigError, 400, "config"),
    (InvalidInput, 400, "invalid_input"),
    (TuneboardError, 400, "rejected"),
]
HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
              429: "too_many_attempts", 503: "unavailable"}


class ApiError(Exception):
    """An error the API itself raises (a missing token, a body too large)."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status,
                        headers=headers)


def for_exception(exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    for kind, status, code in STATUS:
        if isinstance(exc, kind):
            headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
            if status == 401:
                headers = {"WWW-Authenticate": "Bearer"}
            return error_response(status, code, str(exc), headers)
    incident = secrets.token_hex(4)
    log.error("API request failed (incident %s)", incident, exc_info=exc)
    return error_response(500, "internal", f"Something went wrong inside tuneboard (incident {incident}); the "
                          "server's log has the details.", incident=incident)


def _where(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(TuneboardError)
    async def _core(request: Request, exc: TuneboardError):
        return for_exception(exc)

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return for_exception(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        fields = [{"field": _where(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors()]
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_response(422, "invalid_request", message or "The request does not match the API's schema.",
                              fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"No API route {request.url.path}; the routes are listed at /api/v1/docs."
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        return for_exception(exc)
