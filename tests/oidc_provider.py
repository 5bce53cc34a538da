"""A small OpenID Connect provider, for the single sign-on tests and for trying it locally: no
outside service is ever used. It speaks the authorization-code flow with PKCE as real
providers do: a discovery document, an authorize page where a person picks who they are, a
token endpoint that checks the client's secret, the code, its redirect and its PKCE verifier,
RS256 ID tokens signed with a key made at start (joserfc, Authlib's JOSE library), its JWKS,
userinfo and an end-session endpoint.

    python -m tests.oidc_provider --port 9100 --redirect http://localhost:8501/oauth2callback

prints the `[sso]` settings and the environment tuneboard needs to use it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import secrets
import socket
import threading
import time
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import Route

CLIENT_ID = "tuneboard"
# Who can sign in, and the groups the provider says they are in.
PEOPLE = {
    "ana": {"email": "ana@example.org", "name": "Ana Engineer", "groups": ["ml-engineers", "staff"]},
    "lee": {"email": "lee@example.org", "name": "Lee Lead", "groups": ["team-leads", "staff"]},
    "rui": {"email": "rui@example.org", "name": "Rui Rater", "groups": ["domain-experts"]},
    "zoe": {"email": "zoe@example.org", "name": "Zoe Outsider", "groups": ["marketing"]},
}
SETTINGS = {"engineer_groups": "ml-engineers", "lead_groups": "team-leads", "rater_groups": "domain-experts"}


class Provider:
    def __init__(self, client_secret: str | None = None, redirects: list[str] | None = None):
        self.client_id, self.client_secret = CLIENT_ID, client_secret or secrets.token_urlsafe(24)
        self.redirects = list(redirects or [])  # empty: any redirect (for trying it by hand)
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "alg": "RS256", "use": "sig"})
        self.people = {k: dict(v) for k, v in PEOPLE.items()}
        self.codes: dict[str, dict] = {}
        self.access: dict[str, dict] = {}
        self.issued: list[str] = []  # who got an ID token, in order
        self.url = ""
        self.app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/jwks", self.jwks),
            Route("/userinfo", self.userinfo),
            Route("/logout", self.logout),
        ])

    # ---- endpoints ---------------------------------------------------------------------------
    async def discovery(self, request: Request):
        u = self.url
        return JSONResponse({
            "issuer": u, "authorization_endpoint": f"{u}/authorize", "token_endpoint": f"{u}/token",
            "jwks_uri": f"{u}/jwks", "userinfo_endpoint": f"{u}/userinfo", "end_session_endpoint": f"{u}/logout",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "claims_supported": ["sub", "email", "name", "preferred_username", "groups"]})

    def _bad_client(self, params) -> str | None:
        if params.get("client_id") != self.client_id:
            return "unknown client_id"
        if self.redirects and params.get("redirect_uri") not in self.redirects:
            return "redirect_uri is not registered for this client"
        if params.get("response_type", "code") != "code" or "openid" not in (params.get("scope") or "").split():
            return "only response_type=code with scope openid"
        return None

    async def authorize(self, request: Request):
        params = dict(request.query_params) if request.method == "GET" else dict(await request.form())
        problem = self._bad_client(params)
        if problem:
            return HTMLResponse(f"<h1>Sign-in refused</h1><p>{html.escape(problem)}</p>", status_code=400)
        who = params.get("username", "")
        if request.method == "GET" or who not in self.people:
            hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                             for k, v in params.items() if k != "username")
            wrong = "<p>No such person here.</p>" if request.method == "POST" else ""
            return HTMLResponse(f"<html><head><title>Test identity provider</title></head><body>"
                                f"<h1>Test identity provider</h1>{wrong}<form method='post' action='/authorize'>"
                                f"{hidden}<label>Who are you? <input name='username' autofocus></label>"
                                f"<button type='submit'>Continue</button></form>"
                                f"<p>People: {', '.join(self.people)}</p></body></html>")
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"who": who, "nonce": params.get("nonce"), "redirect_uri": params.get("redirect_uri"),
                            "challenge": params.get("code_challenge"),
                            "method": params.get("code_challenge_method"), "at": time.time()}
        answer = {"code": code}
        if params.get("state"):
            answer["state"] = params["state"]
        return RedirectResponse(f"{params['redirect_uri']}?{urlencode(answer)}", status_code=302)

    def _client_ok(self, request: Request, form) -> bool:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        return cid == self.client_id and secrets.compare_digest(secret, self.client_secret)

    async def token(self, request: Request):
        form = dict(await request.form())
        if not self._client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None or time.time() - grant["at"] > 60 \
                or grant["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if grant["challenge"]:
            verifier = form.get("code_verifier", "").encode()
            made = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            if grant["method"] != "S256" or made != grant["challenge"]:
                return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        who, now = grant["who"], int(time.time())
        claims = {"iss": self.url, "sub": f"subject-{who}", "aud": self.client_id, "iat": now, "exp": now + 300,
                  "preferred_username": who, **self.people[who]}
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)
        access = secrets.token_urlsafe(24)
        self.access[access] = claims
        self.issued.append(who)
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token,
                             "scope": "openid email profile"})

    async def jwks(self, request: Request):
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def userinfo(self, request: Request):
        claims = self.access.get(request.headers.get("authorization", "")[7:])
        if claims is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({k: v for k, v in claims.items() if k not in ("aud", "iat", "exp", "nonce", "iss")})

    async def logout(self, request: Request):
        back = request.query_params.get("post_logout_redirect_uri")
        return RedirectResponse(back, status_code=302) if back else HTMLResponse("Signed out.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """The provider served by uvicorn on a thread of this process (tests): `.url`, `.stop()`."""

    def __init__(self, provider: Provider, port: int | None = None, host: str = "127.0.0.1"):
        port = port or free_port()
        provider.url = f"http://{host}:{port}"
        self.provider, self.url = provider, provider.url
        self.server = uvicorn.Server(uvicorn.Config(provider.app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test identity provider did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--redirect", action="append", default=[],
                        help="tuneboard's <address>/oauth2callback (repeatable; none: any)")
    args = parser.parse_args()
    provider = Provider(redirects=args.redirect)
    running = Running(provider, args.port, host="localhost")
    print(f"""Test identity provider at {running.url} (people: {', '.join(PEOPLE)}). Start tuneboard with:

  export TUNEBOARD_SSO_CLIENT_SECRET={provider.client_secret}
  export TUNEBOARD_SSO_METADATA_URL={running.url}/.well-known/openid-configuration
  export TUNEBOARD_SSO_CLIENT_ID={CLIENT_ID} TUNEBOARD_SSO_LABEL="the test provider"
  export TUNEBOARD_SSO_ENGINEER_GROUPS={SETTINGS['engineer_groups']} TUNEBOARD_SSO_LEAD_GROUPS={SETTINGS['lead_groups']}
  export TUNEBOARD_SSO_RATER_GROUPS={SETTINGS['rater_groups']}
  tuneboard serve

Ctrl-C stops it.""", flush=True)
    try:
        running.thread.join()
    except KeyboardInterrupt:
        running.stop()


if __name__ == "__main__":
    main()
