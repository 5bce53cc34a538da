"""AppTest tier for the Regression page: the gate verdict with its categories and flipped
items, read-only for leads, promotion with an override reason for engineers; Home shows it."""

from __future__ import annotations

import pytest

from core.regression import suite
from tests.apptest import assert_clean, button, goto, titles
from tests.test_app import app, fast_password_hashing  # noqa: F401  (the same fixtures as the other pages)
from tests.test_regression_runs import seed_suite_set

pytestmark = pytest.mark.slow


@pytest.fixture
def failing(owner):
    category = suite.items()[0].category
    ids = [it.item_id for it in suite.items() if it.category == category]
    lost = set(ids[: len(ids) // 2])
    return seed_suite_set(owner.store, {"adapter:tuned": lost}), category, lost


def test_lead_reads_the_failed_gate_down_to_the_items(app, failing):
    set_id, category, lost = failing
    at = goto(app("leo"), "Regression")
    assert_clean(at)
    assert titles(at) == ["Regression"]
    assert [e.value for e in at.error] == ["Gate: **fail** for adapter:tuned against base."]
    assert any(t.value.startswith(f"• {category}: accuracy fell") for t in at.text)
    assert any("earlier checkpoint" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert set(table["category"]) == set(suite.CATEGORIES)
    row = table[table["category"] == category].iloc[0]
    assert row["verdict"] == "fail" and row["right_to_wrong"] == len(lost)
    flips = at.dataframe[1].value
    assert set(flips["item_id"]) == lost and {"prompt", "base_answer", "tuned_answer"} <= set(flips.columns)
    assert not any(b.label.startswith("Promote") for b in at.button)  # leads do not promote


def test_engineer_overrides_the_gate_with_a_reason(app, owner, failing):
    at = goto(app("eve"), "Regression")
    assert_clean(at)
    button(at, "Promote despite the gate").click().run()
    assert_clean(at)
    assert any("written reason" in e.value for e in at.error)
    assert owner.store.scalar("SELECT count(*) FROM promotions") == 0
    at.text_area(key="promote_reason").set_value("customers need the new format this week")
    button(at, "Promote despite the gate").click().run()
    assert_clean(at)
    assert [s.value for s in at.success] == ["Promoted adapter:tuned."]
    row = owner.store.row("SELECT * FROM promotions")
    assert row["override"] and row["gate_verdict"] == "fail" and row["promoted_by"] == "eve"


def test_home_shows_the_gate_of_the_best_version(app, owner, accounts, failing):
    from core.demo.review import seed_generation_set
    from core.metrics.scoring import start_scoring
    from core.regression import runs

    gen = seed_generation_set(owner.store, n_prompts=12, variants=("base", "adapter:tuned"), seed=1)
    owner.jobs.wait(start_scoring(owner.store, owner.jobs, accounts["engineer"], gen, ["chrf"]), timeout=120)
    runs.judge(owner.store, accounts["lead"], failing[0], "adapter:tuned", owner.settings.regression)
    at = app("leo")
    assert_clean(at)
    assert any(t.value.startswith("• fail against base (suite run") for t in at.text)
