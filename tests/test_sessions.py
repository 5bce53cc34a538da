"""Login sessions that survive a reload: hashed tokens, expiry, revocation."""

from __future__ import annotations

import hashlib

from core.sessions import end_session, resume_session, start_session
from core.users import change_own_password, reset_password, set_disabled, set_role
from tests.conftest import PASSWORD


def test_token_resumes_the_account_and_is_stored_hashed(owner, accounts):
    token = start_session(owner.store, accounts["rater"], hours=1)
    assert resume_session(owner.store, token).username == "rita"
    stored = owner.store.rows("SELECT token_hash FROM login_sessions")
    assert stored == [{"token_hash": hashlib.sha256(token.encode()).hexdigest()}]
    assert resume_session(owner.store, token + "x") is None
    assert resume_session(owner.store, None) is None
    end_session(owner.store, token)
    assert resume_session(owner.store, token) is None


def test_expired_session_is_refused(owner, accounts):
    token = start_session(owner.store, accounts["lead"], hours=1)
    owner.store.execute("UPDATE login_sessions SET expires_at = now() - INTERVAL 1 MINUTE")
    assert resume_session(owner.store, token) is None


def test_role_change_applies_and_disable_or_password_change_revokes(owner, accounts):
    engineer = accounts["engineer"]
    token = start_session(owner.store, accounts["rater"], hours=1)
    set_role(owner.store, engineer, "rita", "lead")
    assert resume_session(owner.store, token).role.value == "lead"  # the role as it is now
    set_disabled(owner.store, engineer, "rita", True)
    assert resume_session(owner.store, token) is None
    set_disabled(owner.store, engineer, "rita", False)
    assert resume_session(owner.store, token) is None  # re-enabling does not revive old sessions

    token = start_session(owner.store, accounts["lead"], hours=1)
    reset_password(owner.store, engineer, "leo", "a-brand-new-password")
    assert resume_session(owner.store, token) is None

    token = start_session(owner.store, accounts["engineer"], hours=1)
    change_own_password(owner.store, accounts["engineer"], PASSWORD, "another-password-2")
    assert resume_session(owner.store, token) is None
