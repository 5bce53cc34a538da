"""AppTest tier: personal API tokens on the Account page (shown once, listed, revoked) and the audit
trail on the Users page; what a page does is audited through the door 'page'."""

from __future__ import annotations

from core import tokens
from tests.apptest import assert_clean, button, goto, texts
from tests.test_app import app, fast_password_hashing  # noqa: F401  (the dashboard's fixtures)


def _last(owner, action: str) -> dict:
    return owner.store.row("SELECT actor, action, target, door FROM audit_log WHERE action = ? ORDER BY id DESC "
                           "LIMIT 1", [action])


def test_a_token_is_made_shown_once_listed_and_revoked_on_the_account_page(app, owner):  # noqa: F811
    at = goto(app("leo"), "Account")
    assert not at.code and texts(at.caption)[-1] == "You have no tokens yet."
    [name] = [t for t in at.text_input if t.label == "Token name"]
    [days] = [n for n in at.number_input if n.label == "Days it lives"]
    assert days.value == owner.settings.auth.token_days
    name.set_value("notebook")
    days.set_value(7)
    at = button(at, "Create token").click().run()
    assert_clean(at)
    [shown] = [c.value for c in at.code]
    assert shown.startswith("tb_") and tokens.token_user(owner.store, shown).username == "leo"
    assert any("will not be shown again" in w for w in texts(at.warning))
    token_id = shown.split("_")[1]
    assert _last(owner, "token.create") == {"actor": "leo", "action": "token.create", "target": token_id,
                                            "door": "page"}
    listed = at.dataframe[0].value
    assert list(listed.columns) == ["name", "id", "created", "expires", "last used", "active"]
    assert listed.iloc[0]["id"] == token_id and bool(listed.iloc[0]["active"])
    assert shown not in listed.to_string()

    at = at.run()  # any later run: the token itself is gone from the page
    assert not at.code
    [chosen] = [s for s in at.selectbox if s.label == "Token to revoke"]
    chosen.set_value(token_id)
    at = button(at, "Revoke token").click().run()
    assert_clean(at)
    assert texts(at.success) == [f"Revoked {token_id}; it stops working at once."]
    assert tokens.token_user(owner.store, shown) is None
    assert not bool(at.dataframe[0].value.iloc[0]["active"])
    assert _last(owner, "token.revoke")["door"] == "page"


def test_a_bad_token_request_shows_an_error_and_makes_nothing(app, owner):  # noqa: F811
    at = goto(app("rita"), "Account")
    at = button(at, "Create token").click().run()  # no name
    assert_clean(at)
    assert texts(at.error) == ["name: give the token a name of 1 to 100 characters (what it is for, e.g. 'ci')."]
    assert not at.code and owner.store.scalar("SELECT count(*) FROM api_tokens") == 0


def test_engineers_read_and_filter_the_audit_trail_on_the_users_page(app, owner):  # noqa: F811
    at = goto(app("eve"), "Users")
    [role] = [s for s in at.selectbox if s.label == "New role"]
    [account] = [s for s in at.selectbox if s.label == "Account"]
    account.set_value("rita")
    role.set_value("lead")
    at = button(at, "Apply").click().run()
    assert_clean(at)
    assert _last(owner, "users.set_role") == {"actor": "eve", "action": "users.set_role", "target": "rita",
                                              "door": "page"}
    trail = at.dataframe[1].value
    assert list(trail.columns) == ["id", "created_at", "actor", "action", "target", "detail", "door"]
    assert trail.iloc[0]["action"] == "users.set_role" and trail.iloc[0]["door"] == "page"
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV"]
    [door] = [s for s in at.selectbox if s.label == "Door"]
    door.set_value("page")
    at = at.run()
    assert set(at.dataframe[1].value["door"]) == {"page"}
    [who] = [s for s in at.selectbox if s.label == "Who"]
    assert "cli" in who.options and "leo" not in who.options  # who appears in the trail
    who.set_value("cli")
    at = at.run()
    assert "No entries match." in texts(at.caption)
    assert_clean(at)
