"""The FastAPI application of /api/v1 (mounted by server/app.py; the owner is opened by the
server's lifespan, not here: a mounted app's own lifespan does not run).

Also here: the door of the audit trail ("api" for everything under this app), the limit on body
size (`data.max_upload_mb`), and the OpenAPI schema with its docs page, whose assets are served
from this process (no CDN: it works offline).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.staticfiles import StaticFiles

from api import errors
from api.routes import ROUTERS
from core import audit, tokens
from core import owner as owners

VERSION = "1"
ASSETS = Path(fastapi_offline.__file__).with_name("static")  # Swagger UI 5, vendored by fastapi-offline
DESCRIPTION = """tuneboard's HTTP API: data, training runs, generations, scores, blind review, regression
gates, promotion, schedules and users, each acting as the account of the token sent
(`Authorization: Bearer tb_...`). Errors are JSON: `{"error": {"code": ..., "message": ...}}`."""


class Door:
    """ASGI middleware: every request to this app is audited as coming through the API door (the command
    line's through its own), and its
    body may not exceed `data.max_upload_mb` (413 before the route reads it)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        owner = owners.running()
        limit = (owner.settings.data.max_upload_mb if owner else 200) * 1024 * 1024
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = errors.error_response(413, "too_large", f"The request body is larger than data.max_upload_mb "
                                             f"({limit // (1024 * 1024)} MiB).")
            return await response(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise errors.ApiError(413, "too_large", "The request body is larger than data.max_upload_mb "
                                          f"({limit // (1024 * 1024)} MiB).")
            return message

        # The command line's own token: what it does is audited as done through the command line.
        bearer = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        door = "cli" if tokens.is_cli_token(bearer.partition(" ")[2].strip()) else "api"
        with audit.through(door):
            await self.app(scope, counted, send)


def build() -> FastAPI:
    app = FastAPI(title="tuneboard", version=VERSION, description=DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json")
    errors.install(app)
    app.add_middleware(Door)
    app.mount("/docs/assets", StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request):
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title="tuneboard API",
                                   swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
                                   swagger_favicon_url=f"{root}/docs/assets/favicon.png")

    for router in ROUTERS:
        app.include_router(router)
    return app
