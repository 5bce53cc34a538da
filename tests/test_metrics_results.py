"""Stored metric summaries, drill-down, exports and the Home verdict, over real score jobs.

The generation sets are the seeded review fixture (outputs written without a model: the
thing under test is scoring and reporting, not generation)."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest

from core.auth import Role, User
from core.config import MetricsSettings
from core.demo.review import rater_accounts, seed_generation_set, simulated_choice
from core.errors import PermissionDenied
from core.metrics import results, scoring
from core.metrics.scoring import start_scoring
from core.review import pairs
from core.review import results as review_results
from core.review.desk import RatingDesk
from core.review.pairs import PairSetSpec
from tests.apptest import use_fast_password_hashing

FAST = MetricsSettings(bootstrap_rounds=300)


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    use_fast_password_hashing(monkeypatch)


def _scored(owner, eng, n_prompts: int = 30, seed: int = 4, metrics=None) -> str:
    gen = seed_generation_set(owner.store, n_prompts=n_prompts, variants=("base", "adapter:tuned"), seed=seed)
    job = owner.jobs.wait(start_scoring(owner.store, owner.jobs, eng, gen, metrics), timeout=120)
    assert job["status"] == "succeeded", job["error"]
    return gen


def test_summary_is_stored_once_and_recomputed_only_when_scores_change(owner, accounts):
    store, lead = owner.store, accounts["lead"]
    gen = _scored(owner, accounts["engineer"])
    res = results.latest(store, lead, gen, FAST)
    # Means match an independent aggregate of the stored per-example rows.
    sql = {(r["variant_id"], r["metric"]): r["m"] for r in store.rows(
        "SELECT variant_id, metric, avg(value) AS m FROM metric_scores WHERE set_id = ? GROUP BY ALL", [gen])}
    got = {(r["variant"], r["metric"]): r["mean"] for r in res.summary.to_dict("records")}
    assert got == pytest.approx(sql)
    assert res.metrics[:2] == ["json_valid", "field_accuracy"]  # the order the scoring listed them
    assert all(r["lo"] <= r["mean"] <= r["hi"] for r in res.summary.to_dict("records"))
    field = res.deltas[res.deltas["metric"] == "field_accuracy"].iloc[0]
    assert field["delta"] == pytest.approx(got[("adapter:tuned", "field_accuracy")] - got[("base", "field_accuracy")])
    again = results.latest(store, lead, gen, FAST)
    assert again.computed_at == res.computed_at  # nothing changed: the stored summary is read back
    assert store.scalar("SELECT count(*) FROM metric_summary WHERE set_id = ?", [gen]) == len(res.summary)
    # Re-scoring one metric is a new score job: the summary is computed again.
    owner.jobs.wait(start_scoring(store, owner.jobs, accounts["engineer"], gen, ["chrf"]), timeout=120)
    newer = results.latest(store, lead, gen, FAST)
    assert newer.computed_at > res.computed_at
    assert results.latest(store, lead, gen, MetricsSettings(bootstrap_rounds=400)).settings["bootstrap_rounds"] == 400


def test_verdict_names_the_difference_its_interval_and_significance(owner, accounts):
    gen = _scored(owner, accounts["engineer"], n_prompts=60, seed=2)
    res = results.latest(owner.store, accounts["lead"], gen, FAST)
    lines = results.verdict(res)
    assert len(lines) == len(res.deltas) and all("tuned" in line for line in lines)
    tested = res.deltas[res.deltas["p_holm"].notna()]
    assert set(tested["metric"]) == {"json_valid", "field_accuracy", "exact_match", "chrf"}  # words: descriptive
    for d in tested.to_dict("records"):
        line = next(line for line in lines if f", {d['metric']}:" in line)
        assert "simultaneous 95% CI, each at 98.75%" in line and "Bonferroni-adjusted" in line
        assert f"{d['delta']:+.3f}" in line and f"{d['lo']:+.3f} to {d['hi']:+.3f}" in line
        assert ("not significant" in line) != bool(d["significant"])
        # The word follows from the interval shown beside it, and from the adjusted p.
        assert bool(d["significant"]) == (d["lo"] > 0 or d["hi"] < 0) == (d["p_holm"] < 0.05)
    words = next(line for line in lines if ", words:" in line)
    assert "descriptive" in words and "not tested" in words and "significant" not in words
    note = results.comparisons_note(res)
    assert "4 differences are tested together" in note and "words: descriptive" in note
    # 0/1 metrics read as counts with an interval that stays honest at 100%.
    assert results.figure(res, "base", "json_valid") == "60 of 60: 100% (95% CI 93%–100%)"


def test_the_family_is_what_the_dataset_declares_and_old_summaries_are_recomputed(owner, accounts, monkeypatch):
    store, lead = owner.store, accounts["lead"]
    gen = _scored(owner, accounts["engineer"], n_prompts=40, seed=5, metrics=["json_valid", "chrf", "words"])
    # A summary stored by the previous method (version 2) is recomputed on the next read.
    monkeypatch.setattr(results, "SUMMARY_VERSION", 2)
    old = results.latest(store, lead, gen, FAST)
    assert old.settings["summary_version"] == 2
    monkeypatch.setattr(results, "SUMMARY_VERSION", 3)
    # The set's dataset declares json_valid and words: chrf becomes exploratory, words stays descriptive.
    monkeypatch.setattr(scoring, "_declared", lambda store, source: ["json_valid", "words"])
    res = results.latest(store, lead, gen, FAST)
    assert res.computed_at > old.computed_at and res.settings["summary_version"] == 3
    assert res.settings["family"] == {"size": 1, "adjustment": "bonferroni", "level": 0.95, "metrics": ["json_valid"]}
    by = {d["metric"]: d for d in res.deltas.to_dict("records")}
    assert not np.isnan(by["json_valid"]["p_holm"]) and np.isnan(by["chrf"]["p_holm"]) and not by["chrf"]["significant"]
    assert np.isnan(by["words"]["p"]) and not by["words"]["significant"]
    lines = {line.split(", ")[1].split(":")[0]: line for line in results.verdict(res)}
    assert "exploratory" in lines["chrf"] and "no verdict" in lines["chrf"] and "descriptive" in lines["words"]
    note = results.comparisons_note(res)
    assert "One difference is tested (json_valid" in note and "chrf: not declared" in note
    assert [["base", "json_valid"], ["adapter:tuned", "json_valid"]] == \
        sorted(res.settings["proportions"], key=lambda r: r[0] != "base")


@pytest.mark.parametrize("order", list(results.ORDERS))
def test_drill_down_returns_the_extreme_examples_with_every_output(owner, accounts, order):
    store, lead = owner.store, accounts["lead"]
    gen = _scored(owner, accounts["engineer"], metrics=["chrf"])
    rows = results.examples(store, lead, gen, "chrf", "adapter:tuned", order, limit=4)
    frame = store.df("""SELECT s.prompt_idx, s.value, b.value AS base FROM metric_scores s JOIN metric_scores b
                        USING (set_id, metric, prompt_idx) WHERE s.set_id = ? AND s.metric = 'chrf'
                        AND s.variant_id = 'adapter:tuned' AND b.variant_id = 'base'""", [gen])
    key = frame["value"] - frame["base"] if order in ("improved", "regressed") else frame["value"]
    expect = key.sort_values(ascending=order in ("worst", "regressed")).iloc[:4].to_numpy()
    shown = np.array([next(o["value"] for o in r["outputs"] if o["variant_id"] == "adapter:tuned")
                      - (next(o["value"] for o in r["outputs"] if o["variant_id"] == "base")
                         if order in ("improved", "regressed") else 0) for r in rows])
    assert shown == pytest.approx(expect)
    for r in rows:
        assert {o["variant_id"] for o in r["outputs"]} == {"base", "adapter:tuned"}
        assert r["reference"] and r["messages"][-1]["role"] == "user"


def test_exports_round_trip_and_the_report_is_inert(owner, accounts):
    store, lead = owner.store, accounts["lead"]
    gen = seed_generation_set(store, n_prompts=20, variants=("base", "adapter:tuned"), seed=6)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    store.execute("UPDATE generations SET output = ? WHERE set_id = ? AND variant_id = 'adapter:tuned'",
                  [hostile, gen])
    owner.jobs.wait(start_scoring(store, owner.jobs, accounts["engineer"], gen, ["chrf", "exact_match"]), timeout=120)
    res = results.latest(store, lead, gen, FAST)
    data, name, _ = results.export(store, lead, res, "csv", "summary")
    assert name.endswith(".csv")
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(data)).drop(columns="set_id")[["variant", "metric", "mean"]],
                                  res.summary[["variant", "metric", "mean"]].reset_index(drop=True))
    data, _, _ = results.export(store, lead, res, "parquet", "scores")
    assert len(pd.read_parquet(io.BytesIO(data))) == 2 * 2 * 20
    report = results.export(store, lead, res, "html")[0].decode()
    assert "<script" not in report and "&lt;script&gt;" in report and "<img" not in report
    assert "chrf" in report and gen in report


def test_best_version_and_its_blind_review_verdict(owner, accounts):
    store, lead = owner.store, accounts["lead"]
    gen = _scored(owner, accounts["engineer"], n_prompts=24, seed=9)
    raters = rater_accounts(store, ["ann", "bob"], "correct-horse-battery")
    ps = pairs.create_pair_set(store, lead, PairSetSpec("Round 1", gen, ["base", "adapter:tuned"], raters=raters,
                                                        raters_per_pair=2, gold_rate=0.0, seed=1))
    desk, rng = RatingDesk(store, 0.0), np.random.default_rng(0)
    truth = {r["pair_id"]: r for r in store.rows(
        """SELECT p.*, gp.reference FROM pairs p JOIN generation_prompts gp ON gp.set_id = ? AND
           gp.prompt_idx = p.prompt_idx WHERE p.pair_set_id = ?""", [gen, ps])}
    for name in raters:
        while (view := desk.next_pair(User(name, Role.RATER), ps)) is not None:
            desk.vote(User(name, Role.RATER), ps, view.ticket, simulated_choice(truth[view.ticket], 0.9, rng))
    review_results.latest(store, lead, ps, owner.settings.review)
    best = results.best_version(store, lead, FAST)
    assert best["variant"] == "adapter:tuned" and best["primary"] == "json_valid"
    [line] = best["review"]
    assert line["other"] == "base" and line["pair_set_id"] == ps and 0 <= line["win_lo"] <= line["win_rate"] <= line["win_hi"]
    # Engineers see the metrics too; a rater may read none of it.
    assert results.best_version(store, accounts["engineer"], FAST)["variant"] == "adapter:tuned"
    for call in (lambda u: results.latest(store, u, gen, FAST), lambda u: results.best_version(store, u, FAST),
                 lambda u: results.examples(store, u, gen, "chrf", "base"), lambda u: results.scored_sets(store, u)):
        with pytest.raises(PermissionDenied):
            call(accounts["rater"])


def test_trend_has_every_scored_set_of_the_dataset(owner, accounts):
    first = _scored(owner, accounts["engineer"], n_prompts=12, seed=1, metrics=["chrf"])
    time.sleep(0.01)
    second = _scored(owner, accounts["engineer"], n_prompts=12, seed=2, metrics=["chrf"])
    frame = results.trend(owner.store, accounts["lead"], "fixture", FAST)
    assert set(frame["set_id"]) == {first, second}
    assert set(frame["variant"]) == {"base", "adapter:tuned"} and frame["delta"].notna().sum() == 2
    assert [s["set_id"] for s in results.scored_sets(owner.store, accounts["lead"])] == [second, first]
