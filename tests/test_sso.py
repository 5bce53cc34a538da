"""Single sign-on's rules (core/sso.py) and its Streamlit secrets (server/sso.py). The browser flow
against a real OIDC provider is tests/browser/test_sso.py."""

from __future__ import annotations

import stat
import tomllib
from dataclasses import replace

import pytest

from core import audit, sso
from core.auth import CLI_USER, Role
from core.errors import AuthError, InvalidInput
from core.tokens import create_token, token_user
from core.users import authenticate, create_user, list_users, reset_password, set_disabled, set_role
from server import sso as sso_secrets
from server.__main__ import main as serve_main
from tests.conftest import PASSWORD

ISSUER = "https://id.example.org"


@pytest.fixture
def on(settings):
    """The settings with single sign-on configured: three groups, one per role."""
    return replace(settings, sso=replace(settings.sso, metadata_url=f"{ISSUER}/.well-known/openid-configuration",
                                         client_id="tuneboard", engineer_groups="ml, platform",
                                         lead_groups="leads", rater_groups="experts"))


def claims(who: str, groups, **more) -> dict:
    return {"iss": ISSUER, "sub": f"id-{who}", "preferred_username": who, "email": f"{who}@example.org",
            "groups": groups, **more}


def test_the_highest_role_any_group_maps_to_wins(on):
    assert sso.role_of(on, claims("a", ["experts", "platform"])) == Role.ENGINEER
    assert sso.role_of(on, claims("a", ["experts", "leads"])) == Role.LEAD
    assert sso.role_of(on, claims("a", "experts")) == Role.RATER  # one string, not a list
    assert sso.role_of(on, claims("a", ["marketing", "Experts"])) is None  # values are exact
    assert sso.role_of(on, claims("a", None)) is None
    assert sso.role_of(on, {"groups": [{"nested": 1}]}) is None


def test_account_names_come_from_the_claim_or_the_email(on):
    assert sso.username_of(on, {"preferred_username": "Ana.Silva"}) == "ana.silva"
    assert sso.username_of(on, {"email": "Rui+x@example.org"}) == "rui-x"
    assert sso.username_of(on, {"preferred_username": "ana@corp.example"}) == "ana"
    with pytest.raises(AuthError, match="no usable account name"):
        sso.username_of(on, {"preferred_username": "é"})


def test_first_sign_in_makes_the_account_and_later_ones_follow_the_groups(owner, on):
    user = sso.sign_in(owner.store, on, claims("ana", ["leads"]))
    assert (user.username, user.role) == ("ana", Role.LEAD)
    row = owner.store.row("SELECT password_hash, created_by, sso_subject FROM users WHERE username = 'ana'")
    assert row == {"password_hash": sso.NO_PASSWORD, "created_by": "sso", "sso_subject": f"{ISSUER}|id-ana"}
    assert {"username": "ana", "sso": True}.items() <= next(
        u for u in list_users(owner.store, CLI_USER) if u["username"] == "ana").items()

    # The same subject, whatever name it now carries, is the same account; its role follows the groups.
    again = sso.sign_in(owner.store, on, claims("ana", ["platform"], preferred_username="ana-renamed"))
    assert (again.username, again.role) == ("ana", Role.ENGINEER)
    assert owner.store.scalar("SELECT count(*) FROM users WHERE sso_subject IS NOT NULL") == 1
    trail = [(e["action"], e["detail"]) for e in audit.entries(owner.store, CLI_USER, who="ana")]
    assert ("users.role", '{"by": "sso", "from": "lead", "to": "engineer"}') in trail
    assert [a for a, _ in trail].count("sso.sign_in") == 2

    # No password can sign in to it, and its password and role are the provider's to change.
    for guess in ("", sso.NO_PASSWORD, PASSWORD):
        with pytest.raises(AuthError, match="Wrong username or password"):
            authenticate(owner.store, "ana", guess)
    with pytest.raises(InvalidInput, match="managed by the provider"):
        reset_password(owner.store, CLI_USER, "ana", "a-new-password-1")
    with pytest.raises(InvalidInput, match="managed by the provider"):
        set_role(owner.store, CLI_USER, "ana", "rater")


def test_refusals_say_why_and_write_nothing(owner, on):
    create_user(owner.store, CLI_USER, "lee", PASSWORD, "rater")
    before = owner.store.scalar("SELECT count(*) FROM audit_log")
    with pytest.raises(AuthError, match="no tuneboard role.*rater: experts"):
        sso.sign_in(owner.store, on, claims("zoe", ["marketing"]))
    # A local account's name is never taken over by someone the provider names the same.
    with pytest.raises(AuthError, match="already exists here and is not tied to single sign-on"):
        sso.sign_in(owner.store, on, claims("lee", ["ml"]))
    assert authenticate(owner.store, "lee", PASSWORD).role == Role.RATER
    with pytest.raises(AuthError, match="no subject"):
        sso.sign_in(owner.store, on, {"preferred_username": "x", "groups": ["ml"]})
    assert owner.store.scalar("SELECT count(*) FROM audit_log") == before
    assert owner.store.scalar("SELECT count(*) FROM users WHERE username IN ('zoe', 'x')") == 0

    # Disabled here stays disabled, whatever the provider says; a group removed at the provider
    # refuses the next sign-in.
    sso.sign_in(owner.store, on, claims("rui", ["experts"]))
    set_disabled(owner.store, CLI_USER, "rui", True)
    with pytest.raises(AuthError, match="disabled"):
        sso.sign_in(owner.store, on, claims("rui", ["experts"]))
    set_disabled(owner.store, CLI_USER, "rui", False)
    rui = sso.sign_in(owner.store, on, claims("rui", ["experts"]))
    _, secret = create_token(owner.store, rui, "laptop", 30, 90)
    assert token_user(owner.store, secret).username == "rui"
    with pytest.raises(AuthError, match="no tuneboard role.*enable your account"):
        sso.sign_in(owner.store, on, claims("rui", []))
    # Removed from every mapped group: the account is disabled here, and its API token stops working.
    assert token_user(owner.store, secret) is None
    assert owner.store.scalar("SELECT disabled FROM users WHERE username = 'rui'")
    with pytest.raises(AuthError, match="disabled"):  # back in a group: an engineer enables it first
        sso.sign_in(owner.store, on, claims("rui", ["experts"]))


def test_what_is_missing_is_named(settings, on):
    assert sso.problems(settings, {}) == []  # off: nothing to check
    assert sso.problems(on, {sso.CLIENT_SECRET_ENV: "s"}) == []
    found = sso.problems(replace(on, sso=replace(on.sso, client_id="", engineer_groups="", lead_groups="",
                                                 rater_groups="", scopes="email")), {})
    assert [p.split()[0] for p in found] == ["sso.client_id", sso.CLIENT_SECRET_ENV, "sso.engineer_groups,",
                                             "sso.scopes"]


def test_the_server_refuses_to_start_with_half_a_configuration(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUNEBOARD_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("TUNEBOARD_SSO_METADATA_URL", f"{ISSUER}/.well-known/openid-configuration")
    monkeypatch.delenv(sso.CLIENT_SECRET_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert serve_main([]) == 2
    assert "sso.client_id is empty" in capsys.readouterr().err


def test_streamlit_reads_the_workspaces_secrets_only(on, settings, monkeypatch):
    monkeypatch.setenv(sso.CLIENT_SECRET_ENV, "the-secret")
    monkeypatch.delenv(sso_secrets.COOKIE_SECRET_ENV, raising=False)
    options = sso_secrets.streamlit_options(on, "http://localhost:8501")
    path = on.workspace_dir / sso_secrets.SECRETS_FILE
    assert options == {"secrets.files": [str(path)]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    auth = tomllib.loads(path.read_text())["auth"]
    assert auth["redirect_uri"] == "http://localhost:8501/oauth2callback"
    assert (auth["client_id"], auth["client_secret"]) == ("tuneboard", "the-secret")
    assert auth["server_metadata_url"] == on.sso.metadata_url and auth["client_kwargs"]["scope"] == "openid email profile"
    cookie = auth["cookie_secret"]
    assert len(cookie) >= 32
    # The cookie secret is kept (a restart signs nobody out); a public address replaces the server's.
    public = replace(on, sso=replace(on.sso, redirect_url="https://tb.example.org/oauth2callback"))
    sso_secrets.streamlit_options(public, "http://localhost:8501")
    auth = tomllib.loads(path.read_text())["auth"]
    assert (auth["cookie_secret"], auth["redirect_uri"]) == (cookie, "https://tb.example.org/oauth2callback")
    # Off: the file goes, and Streamlit still reads no other secrets file.
    assert sso_secrets.streamlit_options(settings, "http://localhost:8501") == {"secrets.files": [str(path)]}
    assert not path.exists()
