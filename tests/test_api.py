"""[api] The HTTP API's frame: tokens (log-in, create, list, revoke, expiry), errors as JSON with a
code, the failed-attempt limit, the body limit, the door of the audit trail, the OpenAPI schema and
its offline docs page. In-process (httpx over the ASGI app) on a real workspace; the live server
is exercised in tests/test_service.py and the browser tier."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core import owner as owners
from core.users import set_disabled
from tests.conftest import PASSWORD


@pytest.fixture
def client(owner, accounts):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    import api.app

    owners.install(owner)
    try:  # mounted as the server mounts it
        with TestClient(Starlette(routes=[Mount("/api/v1", app=api.app.build())]),
                        base_url="http://testserver/api/v1") as c:
            yield c
    finally:
        owners.install(None)


def token_of(client, username: str, password: str = PASSWORD, **extra) -> str:
    r = client.post("/login", json={"username": username, "password": password, "name": "test", **extra})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_from_a_password_acts_as_its_account_and_is_stored_hashed(client, owner):
    token = token_of(client, "leo")
    assert token.startswith("tb_")
    me = client.get("/me", headers=bearer(token))
    assert me.json() == {"username": "leo", "role": "lead"}
    stored = owner.store.row("SELECT * FROM api_tokens WHERE username = 'leo'")
    assert token not in str(stored) and token.split("_", 2)[2] not in str(stored)
    assert (stored["expires_at"] - stored["created_at"]).days in (89, 90)  # auth.token_days


def test_no_token_a_bad_token_and_an_unknown_route_answer_json_with_a_code(client):
    for headers in ({}, bearer("nope"), bearer("tb_000000000000_" + "x" * 43), {"Authorization": "Basic abc"}):
        r = client.get("/me", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated", r.text
        assert "Traceback" not in r.text and r.headers["www-authenticate"] == "Bearer"
    r = client.get("/no/such/route", headers=bearer(token_of(client, "leo")))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.post("/login", json={"username": "leo"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "password"


def test_revoked_expired_and_disabled_tokens_stop_working(client, owner, accounts):
    token = token_of(client, "leo")
    other = client.post("/tokens", headers=bearer(token), json={"name": "notebook", "days": 3})
    assert other.status_code == 201 and other.json()["name"] == "notebook"
    listed = client.get("/tokens", headers=bearer(token)).json()
    assert {t["name"] for t in listed} == {"test", "notebook"} and all("hash" not in str(t) for t in listed)
    assert client.delete(f"/tokens/{other.json()['token_id']}", headers=bearer(token)).status_code == 204
    assert client.get("/me", headers=bearer(other.json()["token"])).status_code == 401

    owner.store.execute("UPDATE api_tokens SET expires_at = now() - INTERVAL 1 SECOND WHERE token_id = ?",
                        [token.split("_")[1]])
    assert client.get("/me", headers=bearer(token)).status_code == 401

    fresh = token_of(client, "leo")
    set_disabled(owner.store, accounts["admin"], "leo", True)
    assert client.get("/me", headers=bearer(fresh)).status_code == 401
    # Someone else's token cannot be revoked by a non-engineer (and is not even said to exist).
    rita = token_of(client, "rita")
    r = client.delete(f"/tokens/{token_of(client, 'eve').split('_')[1]}", headers=bearer(rita))
    assert r.status_code == 404


def test_token_lifetimes_are_bounded_by_the_settings(client):
    r = client.post("/login", json={"username": "leo", "password": PASSWORD, "name": "x", "days": 10_000})
    assert r.status_code == 400 and "max_token_days" in r.json()["error"]["message"]


def test_ten_failed_log_ins_per_minute_then_429_for_that_user(client):
    from core.throttle import SIGN_IN

    SIGN_IN._failures.clear()
    try:
        for _ in range(10):
            r = client.post("/login", json={"username": "rita", "password": "wrong-password", "name": "x"})
            assert r.status_code == 401
        r = client.post("/login", json={"username": "rita", "password": PASSWORD, "name": "x"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "too_many_attempts"
    finally:
        SIGN_IN._failures.clear()


def test_the_throttle_counts_per_key_within_its_window():
    from core.throttle import Throttle, TooManyAttempts

    now = [0.0]
    t = Throttle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        t.check("user:a", "addr:1")
        t.fail("user:a", "addr:1")
    with pytest.raises(TooManyAttempts):
        t.check("user:a")
    with pytest.raises(TooManyAttempts):
        t.check("user:b", "addr:1")  # same address, other user
    t.check("user:b", "addr:2")
    now[0] = 60.5  # the failures left the window
    t.check("user:a", "addr:1")


def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(client, owner):
    owner.settings.data.max_upload_mb = 1
    r = client.post("/login", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_actions_through_the_api_are_audited_with_their_door(client, owner):
    token_of(client, "leo")
    row = owner.store.row("SELECT actor, action, door FROM audit_log WHERE action = 'token.create'")
    assert row == {"actor": "leo", "action": "token.create", "door": "api"}


def test_the_openapi_schema_validates_and_the_docs_are_served_locally(client):
    from openapi_spec_validator import validate

    schema = client.get("/openapi.json").json()
    validate(schema)
    assert "/login" in schema["paths"]
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert client.get(f"/docs/assets/{asset}").status_code == 200
