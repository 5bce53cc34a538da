"""AppTest tier for the Models page's lifecycle parts: the promoted version of each task with
its history, rollback with a reason (engineers), read-only for leads."""

from __future__ import annotations

import pytest

from core.lifecycle import promotion
from tests.apptest import assert_clean, goto
from tests.test_app import app, fast_password_hashing  # noqa: F401  (the same fixtures as the other pages)
from tests.test_lifecycle_promotion import WHY, world  # noqa: F401

pytestmark = pytest.mark.slow


def test_engineer_rolls_back_the_promoted_version_with_a_reason(app, world):
    store, acc = world
    promotion.promote(store, acc["engineer"], "adapter:a", WHY)
    promotion.promote(store, acc["engineer"], "adapter:b", WHY)
    lead = goto(app("leo"), "Models")
    assert_clean(lead)
    assert any(m.value.startswith("**tickets** → `adapter:b` (gate pass)") for m in lead.markdown)
    assert not any(b.label == "Roll back" for b in lead.button)  # leads read only
    at = goto(app("eve"), "Models")
    assert_clean(at)
    at.text_input(key="rollback_reason_tickets").set_value("too short")
    next(b for b in at.button if b.label == "Roll back").click().run()
    assert any("at least 15 characters" in e.value for e in at.error)
    assert promotion.current(store, acc["engineer"], "tickets") == "adapter:b"
    at.text_input(key="rollback_reason_tickets").set_value("b mislabels refund tickets")
    next(b for b in at.button if b.label == "Roll back").click().run()
    assert_clean(at)
    assert promotion.current(store, acc["engineer"], "tickets") == "adapter:a"
    assert any(m.value.startswith("**tickets** → `adapter:a` (gate pass) · rolled back to") for m in at.markdown)
    history = at.dataframe[0].value
    assert list(history["action"]) == ["rollback", "promote", "promote"]
