"""The optional lm-eval harness: the offline/missing message, input checks, lm-eval's result format
turned into rows, results stored exactly once from events, and a real run of the worker (lm-eval
itself, the tiny model) on a task whose YAML and data the test writes (no hub)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from core.errors import InvalidInput, PermissionDenied
from core.jobs.events import EventWriter
from core.regression import harness
from core.regression.harness_worker import is_offline_error, model_spec, result_rows
from core.serving import register_external
from tests.test_serving import add_adapter, tiny_adapters  # noqa: F401  (a fixture)

# What lm-eval 0.4's `simple_evaluate` returns (trimmed of config/samples): "METRIC,FILTER" keys
# with "METRIC_stderr,FILTER" beside them, "N/A" where it has no stderr (e.g. a single example),
# newer releases' "name"/"sample_len" next to "alias", and per-task example counts in "n-samples".
OUTPUT = {
    "results": {
        "arc_easy": {"alias": "arc_easy", "name": "arc_easy", "sample_len": 4,
                     "acc,none": 0.5, "acc_stderr,none": 0.28867513459481287,
                     "acc_norm,none": 0.75, "acc_norm_stderr,none": 0.25},
        "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 1.0, "exact_match_stderr,strict-match": "N/A",
                  "exact_match,flexible-extract": 0.0, "exact_match_stderr,flexible-extract": "N/A"},
    },
    "n-samples": {"arc_easy": {"original": 2376, "effective": 4}, "gsm8k": {"original": 1319, "effective": 1}},
    "versions": {"arc_easy": 1.0, "gsm8k": 3.0},
    "higher_is_better": {"arc_easy": {"acc": True, "acc_norm": True}, "gsm8k": {"exact_match": True}},
}


class IdleLauncher:
    """Starts nothing: the test plays the worker by writing its events."""

    def start(self, job_id, module, run_dir) -> int:
        return 999_999

    def alive(self, job_id, pid) -> bool:
        return False

    def stop(self, job_id, pid) -> None:
        pass

    def end(self, job_id, pid) -> int:
        return 0


def _find_spec(installed: bool):
    real = importlib.util.find_spec
    return lambda name, *a: (object() if installed else None) if name == "lm_eval" else real(name, *a)


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", _find_spec(True))


@pytest.fixture
def idle_jobs(owner, monkeypatch):
    monkeypatch.setattr(owner.jobs, "default_launcher", IdleLauncher())
    return owner.jobs


def test_missing_lm_eval_is_explained_and_nothing_is_written(owner, accounts, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", _find_spec(False))
    message = harness.missing()
    assert "pip install -e '.[harness]'" in message and "Hugging Face hub" in message and "probe suite" in message
    with pytest.raises(InvalidInput) as err:
        harness.start_harness(owner.store, owner.jobs, owner.settings, accounts["engineer"], "base", ["arc_easy"])
    assert str(err.value) == message
    assert owner.store.scalar("SELECT count(*) FROM jobs") == 0
    assert not any(Path(owner.settings.runs_dir).glob("harness-*"))


def test_missing_is_none_when_installed(installed):
    assert harness.missing() is None


@pytest.mark.parametrize("tasks, limit, path, field", [
    ([], None, "transformers", "tasks"),
    (["arc easy"], None, "transformers", "tasks"),
    (["arc_easy", "arc_easy"], None, "transformers", "tasks"),
    (["arc_easy"], 0, "transformers", "limit"),
    (["arc_easy"], 2.5, "transformers", "limit"),
    (["arc_easy"], None, "openai", "path"),
])
def test_inputs_are_checked_naming_the_field(owner, accounts, installed, idle_jobs, tasks, limit, path, field):
    with pytest.raises(InvalidInput, match=field):
        harness.start_harness(owner.store, idle_jobs, owner.settings, accounts["engineer"], "base", tasks, limit, path)
    assert owner.store.scalar("SELECT count(*) FROM jobs") == 0


def test_variants_are_resolved_and_external_ones_refused(owner, accounts, installed, idle_jobs):
    eng = accounts["engineer"]
    with pytest.raises(InvalidInput, match="variants: unknown adapter:nope"):
        harness.start_harness(owner.store, idle_jobs, owner.settings, eng, "adapter:nope", ["arc_easy"])
    external = register_external(owner.store, eng, "remote", "https://example.invalid/v1", "m")
    with pytest.raises(InvalidInput, match="variant: external:remote is an external endpoint"):
        harness.start_harness(owner.store, idle_jobs, owner.settings, eng, external, ["arc_easy"])
    assert owner.store.scalar("SELECT count(*) FROM jobs") == 0


def test_a_rater_may_not_start_or_read_the_harness(owner, accounts, installed, idle_jobs):
    with pytest.raises(PermissionDenied):
        harness.start_harness(owner.store, idle_jobs, owner.settings, accounts["rater"], "base", ["arc_easy"])
    with pytest.raises(PermissionDenied):
        harness.results(owner.store, accounts["rater"])


def test_result_rows_follow_lm_evals_format():
    rows = result_rows(OUTPUT)
    assert rows == [
        {"task": "arc_easy", "metric": "acc", "value": 0.5, "stderr": 0.28867513459481287, "n_samples": 4},
        {"task": "arc_easy", "metric": "acc_norm", "value": 0.75, "stderr": 0.25, "n_samples": 4},
        {"task": "gsm8k", "metric": "exact_match,strict-match", "value": 1.0, "stderr": None, "n_samples": 1},
        {"task": "gsm8k", "metric": "exact_match,flexible-extract", "value": 0.0, "stderr": None, "n_samples": 1},
    ]
    assert result_rows({}) == []


def test_model_args_per_variant_and_path(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8}))
    adapter = {"variant_id": "adapter:a", "kind": "adapter", "path": str(tmp_path)}
    config = {"base_model": "BASE", "variant": adapter, "path": "transformers"}
    assert model_spec(config) == ("hf", f"pretrained=BASE,peft={tmp_path}")
    assert model_spec({**config, "variant": {"kind": "merged", "path": "M"}}) == ("hf", "pretrained=M")
    assert model_spec({**config, "variant": {"kind": "base", "path": "BASE"}}) == ("hf", "pretrained=BASE")
    assert model_spec({**config, "path": "vllm"}) == (
        "vllm", f"pretrained=BASE,enable_lora=True,max_lora_rank=8,lora_local_path={tmp_path}")


def test_offline_errors_are_recognised_through_their_causes():
    class OfflineModeIsEnabled(ConnectionError):
        pass

    try:
        try:
            raise OfflineModeIsEnabled("offline")
        except OfflineModeIsEnabled as inner:
            raise RuntimeError("Couldn't reach 'allenai/ai2_arc' on the Hub") from inner
    except RuntimeError as exc:
        assert is_offline_error(exc)
    assert not is_offline_error(ValueError("bad metric"))


def test_result_events_are_stored_exactly_once(owner, accounts, installed, idle_jobs, tmp_path):
    variant = add_adapter(owner, owner.settings.base_model, str(tmp_path), "tuned")
    job_id = harness.start_harness(owner.store, idle_jobs, owner.settings, accounts["engineer"], variant,
                                   ["arc_easy", "gsm8k"], limit=4)
    job = idle_jobs.get(job_id)
    config = json.loads(job["config"])
    assert config["variant"]["variant_id"] == variant and config["tasks"] == ["arc_easy", "gsm8k"]
    assert config["limit"] == 4 and config["path"] == "transformers" and config["base_model"]
    rows = result_rows(OUTPUT)
    with EventWriter(job["run_dir"], fsync=False) as events:
        events.emit("started", lm_eval_version="0.4.13", tasks=["arc_easy", "gsm8k"])
        for task in ("arc_easy", "gsm8k"):
            events.emit("result", task=task, lm_eval_version="0.4.13", rows=[r for r in rows if r["task"] == task])
        events.emit("result", task="no_numbers", lm_eval_version="0.4.13", rows=[])
        events.emit("finished", tasks=3)
    assert idle_jobs.ingest(job_id).events == 5
    assert idle_jobs.ingest(job_id).events == 0
    assert idle_jobs.get(job_id)["status"] == "succeeded"
    assert owner.store.scalar("SELECT count(*) FROM harness_results") == len(rows)
    frame = harness.results(owner.store, accounts["lead"], variant)
    assert len(frame) == len(rows) and set(frame["job_id"]) == {job_id} and set(frame["lm_eval_version"]) == {"0.4.13"}
    stored = {(r.task, r.metric): (r.value, r.n_samples) for r in frame.itertuples()}
    assert stored[("arc_easy", "acc_norm")] == (0.75, 4)
    assert frame.loc[frame["metric"] == "exact_match,strict-match", "stderr"].isna().all()
    assert harness.results(owner.store, accounts["lead"], "base").empty


def test_the_owner_finds_the_harness_event_handler():
    """In a fresh interpreter: the dashboard's owner must store harness results it ingests (the kinds'
    table names each handler; nothing depends on which modules happen to be imported)."""
    import subprocess
    import sys

    code = ("import core.owner; from core.jobs.kinds import KINDS; "
            "print(sorted(k for k, v in KINDS.items() if v.event_handler() is not None))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "'harness'" in done.stdout and "'score'" in done.stdout, done.stderr


# ---- for real: the worker's lm-eval calls on a task written here ---------------------------------
QUIZ = [("What is the capital of France?", ["Paris", "Rome", "Berlin"], 0),
        ("What is 2 + 2?", ["3", "4", "5"], 1),
        ("Which animal barks?", ["cat", "dog", "fish"], 1),
        ("What colour is the sky on a clear day?", ["green", "blue", "red"], 1),
        ("How many legs does a spider have?", ["six", "eight", "ten"], 1)]


def _task_folder(folder: Path) -> Path:
    """An lm-eval task of our own: a YAML file and its local JSONL data (the `json` builder reads it)."""
    folder.mkdir()
    data = folder / "quiz.jsonl"
    data.write_text("".join(json.dumps({"question": q, "choices": c, "answer": a}) + "\n" for q, c, a in QUIZ))
    (folder / "tb_quiz.yaml").write_text(f"""task: tb_quiz
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
""")
    return folder


@pytest.mark.slow
def test_the_worker_runs_lm_eval_for_real_on_a_local_task(owner, accounts, tiny_model, tiny_adapters,  # noqa: F811
                                                         tmp_path):
    pytest.importorskip("lm_eval", reason="lm-eval is in the dev extra (pinned); `make install` installs it")
    from importlib import metadata

    eng = accounts["engineer"]
    folder = _task_folder(tmp_path / "tasks")
    adapter = add_adapter(owner, tiny_model, tiny_adapters[0], "a1")
    for variant in ("base", adapter):
        job_id = harness.start_harness(owner.store, owner.jobs, owner.settings, eng, variant, ["tb_quiz"],
                                       task_folder=str(folder))
        job = owner.jobs.wait(job_id, timeout=300, poll=0.5)
        assert job["status"] == "succeeded", owner.jobs.log_tail(job_id, 40)
        [row] = [r for r in harness.results(owner.store, eng, variant).to_dict("records") if r["job_id"] == job_id]
        assert (row["task"], row["metric"], row["n_samples"]) == ("tb_quiz", "acc", len(QUIZ))
        assert row["value"] in {k / len(QUIZ) for k in range(len(QUIZ) + 1)} and row["stderr"] is not None
        assert row["lm_eval_version"] == metadata.version("lm_eval") == "0.4.13"
    # A task folder that is not one is refused naming the field, before a job starts.
    with pytest.raises(InvalidInput, match="task_folder"):
        harness.start_harness(owner.store, owner.jobs, owner.settings, eng, "base", ["tb_quiz"],
                              task_folder=str(tmp_path / "nowhere"))
