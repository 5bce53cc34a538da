"""AppTest tier for the Metrics and Home pages: a scored set shows its figures with intervals,
the differences with significance, the drill-down and the exports; Home names the best
version with its verdicts; an engineer starts a scoring job from the page."""

from __future__ import annotations

import pytest

from core.demo.review import seed_generation_set
from core.metrics import results
from core.metrics.scoring import start_scoring
from tests.apptest import assert_clean, button, goto, texts, titles, wait_for_job
from tests.test_app import app, fast_password_hashing  # noqa: F401  (the same fixtures as the other pages)

pytestmark = pytest.mark.slow


@pytest.fixture
def scored(owner, accounts):
    gen = seed_generation_set(owner.store, n_prompts=30, variants=("base", "adapter:tuned"), seed=3)
    job = owner.jobs.wait(start_scoring(owner.store, owner.jobs, accounts["engineer"], gen), timeout=120)
    assert job["status"] == "succeeded", job["error"]
    return gen


def test_lead_lands_on_home_and_sees_the_best_version_with_its_verdicts(app, owner, scored):
    at = app("leo")
    assert_clean(at)
    assert titles(at) == ["Home"]
    assert [s.value for s in at.subheader] == ["Best version: adapter:tuned"]
    labels = [m.label for m in at.metric]
    assert labels[:2] == ["json_valid", "field_accuracy"]
    res = results.latest(owner.store, owner_user(), scored, owner.settings.metrics)
    field = res.deltas[res.deltas["metric"] == "field_accuracy"].iloc[0]
    card = next(m for m in at.metric if m.label == "field_accuracy")
    assert f"{field['delta']:+.3f} vs base" in card.delta
    assert any(t.value.startswith("• adapter:tuned vs base, field_accuracy:") for t in at.text)
    assert any("No blind-review results" in t.value for t in at.text)


def owner_user():
    from core.auth import Role, User

    return User("leo", Role.LEAD)


def test_metrics_page_shows_intervals_differences_examples_and_exports(app, owner, scored):
    at = goto(app("leo"), "Metrics")
    assert_clean(at)
    assert [t.label for t in at.tabs] == ["Metrics", "Difference vs base", "Trend", "Examples", "Export"]
    assert any("simultaneous 95% intervals" in c.value for c in at.caption)
    assert any(" of 30: " in c.value and "% (95% CI " in c.value for c in at.caption)  # json_valid as a count
    overview = at.dataframe[0].value
    assert {"version", "metric", "mean", "lo", "hi", "n"} <= set(overview.columns)
    assert (overview["lo"] <= overview["mean"]).all() and (overview["mean"] <= overview["hi"]).all()
    deltas = at.dataframe[1].value
    assert set(deltas["metric"]) == set(overview["metric"]) - set() and {"p_holm", "significant"} <= set(deltas.columns)
    # The drill-down shows the worst examples of the fine-tune with every variant's output (inert).
    assert any(m.value.startswith("**Prompt ") for m in at.markdown)
    assert any(m.value.startswith("**adapter:tuned** · json_valid") for m in at.markdown)
    assert len(at.get("download_button")) == 2
    # Filters: one metric only.
    at.multiselect(key=f"metrics_pick_{scored}").set_value(["chrf"]).run()
    assert_clean(at)
    assert set(at.dataframe[0].value["metric"]) == {"chrf"}


def test_engineer_scores_a_generation_set_from_the_page(app, owner, accounts):
    gen = seed_generation_set(owner.store, n_prompts=6, variants=("base", "adapter:tuned"), seed=5)
    at = goto(app("eve"), "Metrics")
    assert_clean(at)
    assert texts(at.info)[-1].startswith("No scored generation sets yet")
    at.multiselect[0].set_value(["exact_match", "chrf"])
    button(at, "Score").click().run()
    assert_clean(at)
    assert any("Scoring started" in s.value for s in at.success)
    [job] = owner.jobs.list(accounts["engineer"], "score")
    assert wait_for_job(owner, job["job_id"], timeout=120)["status"] == "succeeded"
    at.run()
    assert_clean(at)
    assert set(at.dataframe[0].value["metric"]) == {"exact_match", "chrf"}
    assert gen in at.selectbox(key="metrics_set").value


def test_corpus_bleu_is_shown_with_its_interval_and_left_out_of_the_drill_down(app, owner, accounts):
    gen = seed_generation_set(owner.store, n_prompts=30, variants=("base", "adapter:tuned"), seed=3)
    job = owner.jobs.wait(start_scoring(owner.store, owner.jobs, accounts["engineer"], gen,
                                        ["bleu_corpus", "exact_match"]), timeout=120)
    assert job["status"] == "succeeded", job["error"]
    at = goto(app("leo"), "Metrics")
    assert_clean(at)
    overview, deltas = at.dataframe[0].value, at.dataframe[1].value
    row = overview[(overview["metric"] == "bleu_corpus") & (overview["version"].str.startswith("base"))].iloc[0]
    assert row["lo"] <= row["mean"] <= row["hi"] and row["n"] == 30
    assert "bleu_corpus" in set(deltas["metric"])
    assert any(m.value.startswith("**bleu_corpus** — Corpus BLEU") for m in at.markdown)
    drill = next(s for s in at.selectbox if s.label == "Metric" and s.key == "drill_metric")
    assert drill.options == ["exact_match"]  # one score per set: nothing to rank examples by
