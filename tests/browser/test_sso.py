"""Single sign-on in a real browser against an OpenID Connect provider this module starts itself
(tests/oidc_provider.py, on loopback; never an outside service): Streamlit's st.login runs the
code flow with PKCE, Authlib checks the signed ID token, core.sso maps the groups to a role.
The identity then makes a personal API token that acts as the same account, and the audit
trail shows each step."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import IDLE
from tests.oidc_provider import SETTINGS, Provider, Running, free_port

pytestmark = pytest.mark.browser

PORT = free_port()
PROVIDER = Provider()
LABEL = "the test provider"
SERVER_ENV = {
    "TUNEBOARD_SSO_METADATA_URL": f"http://127.0.0.1:{PORT}/.well-known/openid-configuration",
    "TUNEBOARD_SSO_CLIENT_ID": PROVIDER.client_id, "TUNEBOARD_SSO_CLIENT_SECRET": PROVIDER.client_secret,
    "TUNEBOARD_SSO_LABEL": LABEL, **{f"TUNEBOARD_SSO_{k.upper()}": v for k, v in SETTINGS.items()},
}


@pytest.fixture(scope="module")
def provider():
    running = Running(PROVIDER, PORT)
    yield PROVIDER
    running.stop()


@pytest.fixture(scope="module")
def sso_server(provider, server):
    PROVIDER.redirects[:] = [f"{server.url}/oauth2callback"]  # only tuneboard's own callback is accepted
    return server


def sign_in_as(page, url: str, who: str, go: bool = True) -> None:
    if go:
        page.goto(url)
    page.get_by_role("button", name=f"Sign in with {LABEL}").click()
    expect(page).to_have_title("Test identity provider")
    page.get_by_label("Who are you?").fill(who)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{url}/**")
    page.wait_for_selector(IDLE)


def sign_out_by(page, button: str) -> None:
    """Click a button that ends the provider's sign-in too: the browser goes to the provider's
    end-session page and back to the login page."""
    with page.expect_response(lambda r: "/oauth2callback" in r.url):
        page.get_by_role("button", name=button).click()
    page.wait_for_load_state()
    expect(page.get_by_role("button", name=f"Sign in with {LABEL}")).to_be_visible()


def test_a_person_signs_in_with_the_provider_and_their_token_acts_as_them(sso_server, page):
    url = sso_server.url
    sign_in_as(page, url, "ana")
    expect(page.get_by_text("Signed in as ana · engineer")).to_be_visible()
    assert PROVIDER.issued == ["ana"]

    # The same identity makes a personal API token; the API sees ana, an engineer.
    page.goto(f"{url}/account")
    page.wait_for_selector(IDLE)
    expect(page.get_by_text("You sign in with the test provider")).to_be_visible()
    expect(page.get_by_role("button", name="Change password")).to_have_count(0)
    page.get_by_label("Token name").fill("notebook")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("code").filter(has_text="tb_").first.inner_text().strip()
    me = httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["username"], me["role"]) == ("ana", "engineer")

    # A password sign-in to the account made by the provider fails like a wrong password.
    login = httpx.post(f"{url}/api/v1/login", json={"username": "ana", "password": "anything-at-all"})
    assert login.status_code == 401

    # Log out ends the provider's sign-in too: the next visit shows the login page.
    sign_out_by(page, "Log out")
    page.goto(url)
    expect(page.get_by_role("button", name=f"Sign in with {LABEL}")).to_be_visible()

    audit = httpx.get(f"{url}/api/v1/audit", headers={"Authorization": f"Bearer {token}"},
                      params={"who": "ana"}).json()
    actions = {(e["action"], e["door"]) for e in audit}
    assert {("users.add", "page"), ("sso.sign_in", "page"), ("token.create", "page")} <= actions, actions


def test_groups_decide_the_role_and_a_person_in_none_is_refused(sso_server, page):
    url = sso_server.url
    sign_in_as(page, url, "zoe")  # marketing: mapped to no role
    expect(page.get_by_text("has no tuneboard role")).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_have_count(0)

    sign_out_by(page, f"Sign out of {LABEL} to use another account")
    sign_in_as(page, url, "rui", go=False)  # domain-experts: a rater, who sees the Rate page and no other
    expect(page.get_by_text("Signed in as rui · rater")).to_be_visible()
    links = page.locator("[data-testid='stSidebarNav'] a")
    assert sorted(text.split()[-1] for text in links.all_inner_texts()) == ["Account", "Rate"]
