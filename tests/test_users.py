"""Accounts: argon2 hashes, authentication, role rules, the first engineer."""

from __future__ import annotations

import pytest

from core.auth import CLI_USER, Role
from core.errors import AuthError, InvalidInput, NotFound
from core.users import (authenticate, change_own_password, create_user, ensure_admin, get_user, set_disabled,
                        set_role)
from tests.conftest import ADMIN_PASSWORD, PASSWORD


def test_passwords_are_argon2_hashes(owner, accounts):
    rows = owner.store.rows("SELECT username, password_hash FROM users")
    assert len(rows) == 4
    for row in rows:
        assert row["password_hash"].startswith("$argon2id$")
        assert PASSWORD not in row["password_hash"] and ADMIN_PASSWORD not in row["password_hash"]


def test_authenticate(owner, accounts):
    assert authenticate(owner.store, "admin", ADMIN_PASSWORD).role == Role.ENGINEER
    assert authenticate(owner.store, "rita", PASSWORD).role == Role.RATER
    for name, pw in (("rita", "wrong-password"), ("nobody", PASSWORD), ("", "")):
        with pytest.raises(AuthError, match="Wrong username or password"):
            authenticate(owner.store, name, pw)


def test_first_engineer_generated_once(tmp_path):
    from core.store import Store

    store = Store(tmp_path / "t.duckdb")
    password = ensure_admin(store, {})
    assert password and len(password) >= 12
    assert authenticate(store, "admin", password).role == Role.ENGINEER
    assert ensure_admin(store, {}) is None  # never again
    assert ensure_admin(store, {"TUNEBOARD_ADMIN_PASSWORD": "x" * 12}) is None
    store.close()


def test_validation_of_new_accounts(owner, accounts):
    with pytest.raises(InvalidInput, match="username"):
        create_user(owner.store, CLI_USER, "Bad Name!", PASSWORD, "rater")
    with pytest.raises(InvalidInput, match="role"):
        create_user(owner.store, CLI_USER, "okname", PASSWORD, "superuser")
    with pytest.raises(InvalidInput, match="at least 10"):
        create_user(owner.store, CLI_USER, "okname", "short", "rater")
    with pytest.raises(InvalidInput, match="already taken"):
        create_user(owner.store, CLI_USER, "rita", PASSWORD, "rater")
    assert owner.store.scalar("SELECT count(*) FROM users") == 4


def test_role_changes_and_disabling_take_effect_at_once(owner, accounts):
    set_role(owner.store, accounts["engineer"], "rita", "lead")
    assert get_user(owner.store, "rita").role == Role.LEAD
    set_disabled(owner.store, accounts["engineer"], "rita", True)
    assert get_user(owner.store, "rita") is None
    with pytest.raises(AuthError, match="disabled"):
        authenticate(owner.store, "rita", PASSWORD)
    with pytest.raises(NotFound):
        set_role(owner.store, accounts["engineer"], "ghost", "lead")


def test_last_engineer_is_protected(owner, accounts):
    set_role(owner.store, accounts["engineer"], "eve", "lead")
    with pytest.raises(InvalidInput, match="last engineer"):
        set_role(owner.store, CLI_USER, "admin", "rater")
    with pytest.raises(InvalidInput):
        set_disabled(owner.store, accounts["admin"], "admin", True)


def test_change_own_password(owner, accounts):
    rater = accounts["rater"]
    with pytest.raises(AuthError):
        change_own_password(owner.store, rater, "not-the-password", "another-password-1")
    change_own_password(owner.store, rater, PASSWORD, "another-password-1")
    assert authenticate(owner.store, "rita", "another-password-1")
    audit = owner.store.rows("SELECT actor, action FROM audit_log WHERE target = 'rita'")
    assert {"actor": "rita", "action": "users.change_password"} in audit
