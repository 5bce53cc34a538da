"""A team's own Hugging Face `evaluate` metrics, registered from the settings and used like the
built-ins: declared by a dataset version, scored by a real score job (per example when the
module gives one number per example, corpus-level when it gives one per set), summarized with
the same intervals and deltas. The modules are local files this test writes; no hub is
reached (HF_HUB_OFFLINE, and a hub name that is not cached must say so)."""

from __future__ import annotations

import json
import textwrap

import pytest
from sacrebleu.metrics import BLEU  # noqa: F401  (the built-ins stay on sacrebleu/rouge-score)

from core.auth import CLI_USER
from core.config import load_settings
from core.errors import ConfigError
from core.metrics import custom
from core.metrics.registry import METRICS, check_metrics
from core.metrics.scoring import start_scoring, summary
from core.owner import Owner
from core.serving import prompts_from_version
from core.users import create_user
from tests.conftest import PASSWORD
from tests.test_dataset_metrics import _import, _stored_set, _wait, jsonl, rows

HEADER = "import datasets\nimport evaluate\n\n\n"
FEATURES = ('datasets.Features({"predictions": datasets.Value("string"), '
            '"references": datasets.Value("string")})')

PER_EXAMPLE = HEADER + textwrap.dedent(f"""
    class TeamOverlap(evaluate.Metric):
        def _info(self):
            return evaluate.MetricInfo(description="reference words the answer repeats", citation="",
                                       inputs_description="", features={FEATURES})

        def _compute(self, predictions, references):
            share = [len(set(p.split()) & set(r.split())) / max(1, len(set(r.split())))
                     for p, r in zip(predictions, references)]
            return {{"overlap": share, "mean": sum(share) / len(share)}}
    """)

CORPUS = HEADER + textwrap.dedent(f"""
    class TeamRecall(evaluate.Metric):
        def _info(self):
            return evaluate.MetricInfo(description="pooled word recall", citation="", inputs_description="",
                                       features={FEATURES})

        def _compute(self, predictions, references, scale=1.0):
            hit = sum(len(set(p.split()) & set(r.split())) for p, r in zip(predictions, references))
            return {{"recall": scale * hit / max(1, sum(len(set(r.split())) for r in references))}}
    """)


@pytest.fixture
def team(tmp_path, env, monkeypatch):
    """An owner whose tuneboard.toml registers two evaluate metrics kept in the project's folder."""
    (tmp_path / "metrics" / "team_overlap").mkdir(parents=True)
    (tmp_path / "metrics" / "team_overlap" / "team_overlap.py").write_text(PER_EXAMPLE)
    (tmp_path / "metrics" / "team_recall.py").write_text(CORPUS)
    (tmp_path / "tuneboard.toml").write_text(textwrap.dedent("""
        [metrics.evaluate.team_overlap]
        module = "metrics/team_overlap"
        key = "overlap"
        bounds = [0, 1]

        [metrics.evaluate.team_recall]
        module = "metrics/team_recall.py"
        arguments = { scale = 100.0 }
        help = "Pooled word recall, 0-100."
        """))
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(tmp_path / "tuneboard.toml", env=env)
    owner = Owner.open(settings, monitor=False, env=env)
    yield owner, create_user(owner.store, CLI_USER, "eve", PASSWORD, "engineer")
    owner.close()
    for name in ("team_overlap", "team_recall", "team_hub"):
        METRICS.pop(name, None)  # registration is per process: leave the built-ins to the next test


def test_a_dataset_declares_team_metrics_and_a_score_job_scores_them(team):
    owner, eng = team
    store = owner.store
    assert METRICS["team_overlap"].version.startswith("evaluate 0.4.6 ") and METRICS["team_recall"].help.startswith(
        "Pooled")
    vid = _import(owner, eng, jsonl(rows(300))).version_id  # 30 test prompts
    from core.datasets import set_version_metrics

    set_version_metrics(store, eng, vid, ["team_overlap", "team_recall", "exact_match"])
    prompts, source = prompts_from_version(store, eng, vid)
    refs = [p["reference"] for p in prompts]
    worse = [" ".join(r.split()[: len(r.split()) // 2]) for r in refs]
    gen = _stored_set(store, prompts, source, {"base": worse, "adapter:tuned": refs})
    job = _wait(owner.jobs, start_scoring(store, owner.jobs, eng, gen), timeout=240)
    assert job["status"] == "succeeded", job["error"]
    assert json.loads(job["config"])["metrics"] == ["team_overlap", "team_recall", "exact_match"]
    per_example = store.rows("""SELECT variant_id, prompt_idx, value FROM metric_scores WHERE set_id = ?
                                AND metric = 'team_overlap' ORDER BY variant_id, prompt_idx""", [gen])
    expected = [len(set(w.split()) & set(r.split())) / len(set(r.split())) for w, r in zip(worse, refs)]
    assert [r["value"] for r in per_example if r["variant_id"] == "base"] == pytest.approx(expected)
    assert not store.scalar("SELECT count(*) FROM metric_scores WHERE set_id = ? AND metric = 'team_recall'", [gen])
    corpus = {r["variant_id"]: r for r in store.rows(
        "SELECT variant_id, value, n FROM metric_corpus WHERE set_id = ? AND metric = 'team_recall'", [gen])}
    assert corpus["adapter:tuned"]["value"] == pytest.approx(100.0) and corpus["base"]["value"] < 100.0
    means, deltas = summary(store, eng, gen, rounds=300)
    by_metric = {d["metric"]: d for d in deltas}
    assert by_metric["team_overlap"]["significant"] and by_metric["team_overlap"]["direction"] == "better"
    assert by_metric["team_recall"]["significant"] and by_metric["team_recall"]["in_family"]
    assert by_metric["team_recall"]["lo"] > 0 and "corpus-level" in by_metric["team_recall"]["method"]
    assert {m["metric"] for m in means} == {"team_overlap", "team_recall", "exact_match"}


def test_editing_the_module_makes_a_new_metric_version(team, tmp_path):
    before = METRICS["team_overlap"].version
    script = tmp_path / "metrics" / "team_overlap" / "team_overlap.py"
    script.write_text(script.read_text().replace("max(1,", "max(2,"))
    custom.register_all({"team_overlap": {"module": str(script.parent), "key": "overlap"}})
    assert METRICS["team_overlap"].version != before and check_metrics(["team_overlap"]) == ["team_overlap"]


def test_a_hub_name_that_is_not_cached_fails_its_job_with_a_clear_message(team):
    owner, eng = team
    custom.register_all({"team_hub": {"module": "team-org/no_such_metric"}})
    from core.demo.review import seed_generation_set

    gen = seed_generation_set(owner.store, n_prompts=4)
    job = _wait(owner.jobs, start_scoring(owner.store, owner.jobs, eng, gen, ["team_hub"]), timeout=240)
    assert job["status"] == "failed"
    assert "could not be loaded" in job["error"] and "evaluate cache" in job["error"]
    assert "Traceback" not in job["error"]


@pytest.mark.parametrize("table, problem", [
    ('[metrics.evaluate.bleu]\nmodule = "x.py"', "bleu is a built-in metric"),
    ('[metrics.evaluate.mine]\nkey = "f1"', "metrics.evaluate.mine.module: required"),
    ('[metrics.evaluate.mine]\nmodule = "./nowhere/mine.py"', "no metric folder or script at"),
    ('[metrics.evaluate.mine]\nmodule = "x"\nhigher = true', "metrics.evaluate.mine.higher: unknown"),
    ('[metrics.evaluate.mine]\nmodule = "x"\nbounds = [1, 0]', "metrics.evaluate.mine.bounds"),
    ('[metrics.evaluate.Mine]\nmodule = "x"', "lower-case letters"),
])
def test_bad_registrations_are_refused_naming_the_field(tmp_path, table, problem):
    (tmp_path / "tuneboard.toml").write_text(table)
    with pytest.raises(ConfigError, match=problem.replace(".", r"\.")):
        load_settings(tmp_path / "tuneboard.toml", env={})
