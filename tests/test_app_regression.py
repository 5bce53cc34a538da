"""AppTest tier for the Regression page: the gate verdict with its categories and flipped
items, read-only for leads, promotion with an override reason for engineers; Home shows it."""

from __future__ import annotations

import pytest

from core.regression import suite
from tests.apptest import assert_clean, button, goto, registered_pages, titles
from tests.test_app import app, fast_password_hashing  # noqa: F401  (the same fixtures as the other pages)
from tests.test_regression_runs import seed_suite_set

pytestmark = pytest.mark.slow


@pytest.fixture
def failing(owner, accounts, demo_files):
    from core.datasets import ImportOptions, import_dataset
    from tests.conftest import known_versions

    good, _ = demo_files  # the task the promoted version serves
    import_dataset(owner.store, accounts["engineer"], good.read_bytes(), good.name, ImportOptions(name="tickets"))
    category = suite.items()[0].category
    ids = [it.item_id for it in suite.items() if it.category == category]
    lost = set(ids[: len(ids) // 2])
    known_versions(owner.store, "adapter:tuned")  # the version an engineer may promote over its gate
    return seed_suite_set(owner.store, {"adapter:tuned": lost}), category, lost


def test_lead_reads_the_failed_gate_down_to_the_items(app, failing):
    set_id, category, lost = failing
    at = goto(app("leo"), "Regression")
    assert_clean(at)
    assert titles(at) == ["Regression"]
    assert [e.value for e in at.error] == ["Gate: **fail** for adapter:tuned against base."]
    assert any(t.value.startswith(f"• {category}: accuracy fell") for t in at.text)
    assert any(t.value.startswith(f"Pooled over all {len(suite.items())} items: fail; accuracy fell") for t in at.text)
    assert any(t.value.startswith("At 80% power this suite detects a drop of") for t in at.text)
    assert any("earlier checkpoint" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert set(table["category"]) == set(suite.CATEGORIES)
    row = table[table["category"] == category].iloc[0]
    assert row["verdict"] == "fail" and row["right_to_wrong"] == len(lost)
    assert row["p_adjusted"] < 0.05 and row["detectable_drop_points"] > row["max_drop_points"]
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
    assert row["task"] == "tickets" and row["action"] == "promote"


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
    assert any(t.value.startswith(f"Pooled over all {len(suite.items())} items: fail; accuracy fell") for t in at.text)
    assert any(t.value.startswith("At 80% power this suite detects") for t in at.text)


def test_the_sweep_tab_shows_task_vs_general_per_checkpoint(app, owner, accounts, tiny_model, demo_files):
    from core.datasets import ImportOptions, import_dataset
    from tests.test_regression_sweep import seed_ready_sweep

    good, _ = demo_files
    version = import_dataset(owner.store, accounts["engineer"], good.read_bytes(), good.name,
                             ImportOptions(name="tickets")).version_id
    _, ids, _ = seed_ready_sweep(owner, accounts["engineer"], tiny_model, version)
    at = goto(app("leo"), "Regression")
    assert_clean(at)
    assert [t.label for t in at.tabs] == ["Gate", "Checkpoint sweep", "lm-eval harness"]
    # lm-eval is installed (dev extra): the tab offers its form, with a task folder of your own (runs offline).
    assert [t.label for t in at.tabs[2].text_input] == ["lm-eval tasks (comma-separated)",
                                                        "Task folder on the server (optional)"]
    sweep_tab = at.tabs[1]
    assert any(m.value.startswith("**Step 10 has the best task score") for m in sweep_tab.markdown)
    table = sweep_tab.dataframe[0].value
    assert list(table["variant_id"]) == ["base", *ids] and list(table["gate"]) == ["", "pass", "fail"]
    assert [c.type for c in sweep_tab.children.values() if c.type.endswith("chart")] == ["vega_lite_chart"]
    assert any(e.label == "Start a sweep" for e in sweep_tab.expander)  # a sweep is generation: leads may start one
    assert "Regression" not in registered_pages(app("rita"))  # raters never reach it
