"""A dataset version declares which metrics apply; rows may carry the tests of a code task;
a split can be generated several times per prompt (samples for pass@k)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import time

import pytest

from core.datasets import ImportOptions, get_version, import_dataset, list_versions, set_version_metrics, validate
from core.errors import DatasetError, InvalidInput, PermissionDenied
from core.metrics.scoring import start_scoring
from core.serving import Decoding, GenerationSpec, generate, prompts_from_version
from tests.test_cli import cli  # noqa: F401  (the fixture running the real command)

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu amber basil cedar dune ember fjord "
         "garnet harbor iris jade kelp lumen maple nectar onyx pepper quartz raven saffron tundra").split()


def rows(n: int, tests: bool = False, seed: int = 0) -> list[dict]:
    """n distinct prompt/completion rows (random words: no near-duplicates), optionally with tests."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = " ".join(rng.sample(WORDS, 12))
        row = {"prompt": f"Write add_{i}(x) returning x plus {i}. Notes: {words}",
               "completion": f"def add_{i}(x):\n    return x + {i}"}
        if tests:
            row["tests"] = f"assert add_{i}(1) == {1 + i}\nassert add_{i}(-{i}) == 0"
        out.append(row)
    return out


def jsonl(items: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in items).encode()


def csv_bytes(items: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=sorted({k for r in items for k in r}))
    writer.writeheader()
    writer.writerows(items)
    return buf.getvalue().encode()


def _import(owner, user, data: bytes, file: str = "code.jsonl", **options):
    return import_dataset(owner.store, user, data, file, ImportOptions(**options))


def _wait(jobs, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs.reconcile()
        job = jobs.get(job_id)
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"{job_id} still running")


# ---- declared metrics -----------------------------------------------------------------------
def test_declared_metrics_are_stored_and_read_back(owner, accounts):
    eng = accounts["engineer"]
    result = _import(owner, eng, jsonl(rows(20)), metrics=["exact_match", "chrf", "exact_match"])
    assert result.created
    assert get_version(owner.store, eng, result.version_id)["metrics"] == ["exact_match", "chrf"]
    assert list_versions(owner.store, eng)[0]["metrics"] == ["exact_match", "chrf"]
    other = _import(owner, eng, jsonl(rows(20, seed=1)), file="plain.jsonl", metrics=[])
    assert get_version(owner.store, eng, other.version_id)["metrics"] is None


def test_unknown_metric_is_refused_naming_the_field():
    with pytest.raises(InvalidInput, match=r"metrics: unknown meteor, bertscore; known: exact_match"):
        ImportOptions(metrics=["exact_match", "meteor", "bertscore"])


def test_reimport_keeps_declared_metrics_unless_new_ones_are_given(owner, accounts):
    eng, store = accounts["engineer"], owner.store
    data = jsonl(rows(20))
    vid = _import(owner, eng, data, metrics=["exact_match"]).version_id
    again = _import(owner, eng, data)
    assert (again.version_id, again.created, again.metrics_updated) == (vid, False, False)
    assert get_version(store, eng, vid)["metrics"] == ["exact_match"]
    same = _import(owner, eng, data, metrics=["exact_match"])
    assert not same.metrics_updated
    assert store.scalar("SELECT count(*) FROM audit_log WHERE action = 'data.metrics'") == 0
    changed = _import(owner, eng, data, metrics=["chrf", "words"])
    assert changed.metrics_updated and not changed.created
    assert get_version(store, eng, vid)["metrics"] == ["chrf", "words"]
    audit = store.rows("SELECT actor, target, detail FROM audit_log WHERE action = 'data.metrics'")
    assert len(audit) == 1 and audit[0]["target"] == vid and "chrf, words" in audit[0]["detail"]


def test_metrics_are_changed_later_with_an_audit_row_and_only_by_an_engineer(owner, accounts):
    eng, store = accounts["engineer"], owner.store
    vid = _import(owner, eng, jsonl(rows(20))).version_id
    assert set_version_metrics(store, eng, vid[:8], ["rouge1", "bleu"]) == ["rouge1", "bleu"]
    assert get_version(store, eng, vid)["metrics"] == ["rouge1", "bleu"]
    assert set_version_metrics(store, eng, vid, []) is None
    assert get_version(store, eng, vid)["metrics"] is None
    details = [r["detail"] for r in store.rows("SELECT detail FROM audit_log WHERE action = 'data.metrics' "
                                               "AND target = ? ORDER BY id", [vid])]
    assert details == ["changed: rouge1, bleu", "changed: none declared"]
    for role in ("rater", "lead"):
        with pytest.raises(PermissionDenied):
            set_version_metrics(store, accounts[role], vid, ["bleu"])
    with pytest.raises(InvalidInput, match="unknown meteor"):
        set_version_metrics(store, eng, vid, ["meteor"])
    with pytest.raises(InvalidInput, match="tests_pass needs tests on every example"):
        set_version_metrics(store, eng, vid, ["tests_pass"])
    assert get_version(store, eng, vid)["metrics"] is None


def test_declaring_tests_pass_needs_tests_on_every_row(owner, accounts):
    items = rows(20, tests=True)
    del items[3]["tests"]
    with pytest.raises(DatasetError) as caught:
        _import(owner, accounts["engineer"], jsonl(items), metrics=["tests_pass"])
    assert [(p.code, p.line, p.field) for p in caught.value.problems] == [("missing_tests", 4, "tests")]
    assert owner.store.scalar("SELECT count(*) FROM dataset_versions") == 0


def _stored_set(store, prompts: list[dict], source: dict, outputs: dict[str, list[str]]) -> str:
    """A finished generation set written straight into the store (as the generate job would)."""
    set_id = f"generate-test-{random.randrange(16**8):08x}"
    with store.transaction() as cur:
        cur.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) "
                    "VALUES (?, 'generate', 'succeeded', '', '{}', 'test')", [set_id])
        cur.execute("INSERT INTO generation_sets (set_id, name, source, base_model, variants, decoding, "
                    "requested_path, n_prompts) VALUES (?, 'test', ?, 'tiny', ?, '{}', 'transformers', ?)",
                    [set_id, json.dumps(source), json.dumps([{"variant_id": v} for v in outputs]), len(prompts)])
        cur.executemany("INSERT INTO generation_prompts (set_id, prompt_idx, messages, reference, source_ref) "
                        "VALUES (?, ?, ?, ?, ?)", [[set_id, i, json.dumps(p["messages"]), p["reference"],
                                                    p["source_ref"]] for i, p in enumerate(prompts)])
        cur.executemany("INSERT INTO generations (set_id, prompt_idx, variant_id, output, tokens_in, tokens_out, "
                        "finish_reason, latency_ms, backend, decoding) VALUES (?, ?, ?, ?, 1, 1, 'stop', 1, 't', '{}')",
                        [[set_id, i, v, text] for v, texts in outputs.items() for i, text in enumerate(texts)])
    return set_id


def test_scoring_uses_the_metrics_the_version_declares(owner, accounts):
    eng, store = accounts["engineer"], owner.store
    vid = _import(owner, eng, jsonl(rows(30))).version_id
    prompts, source = prompts_from_version(store, eng, vid)
    gen = _stored_set(store, prompts, source, {"base": [p["reference"] for p in prompts]})

    def metrics_of(job_id: str) -> list[str]:
        job = _wait(owner.jobs, job_id)
        assert job["status"] == "succeeded", job["error"]
        return json.loads(job["config"])["metrics"]

    assert "rouge1" in metrics_of(start_scoring(store, owner.jobs, eng, gen))  # nothing declared: by references
    set_version_metrics(store, eng, vid, ["exact_match", "words"])
    assert metrics_of(start_scoring(store, owner.jobs, eng, gen)) == ["exact_match", "words"]
    assert metrics_of(start_scoring(store, owner.jobs, eng, gen, ["chrf"])) == ["chrf"]  # explicit wins


# ---- tests column ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_tests_round_trip_and_change_the_hash_only_when_present(owner, accounts, fmt):
    eng, store = accounts["engineer"], owner.store
    encode, file = (jsonl, "code.jsonl") if fmt == "jsonl" else (csv_bytes, "code.csv")
    plain, coded = rows(20), rows(20, tests=True)
    half = [dict(r) if i % 2 else {k: v for k, v in r.items() if k != "tests"} for i, r in enumerate(coded)]
    with_tests = _import(owner, eng, encode(coded), file)
    stored = store.rows("SELECT tests FROM examples WHERE version_id = ? ORDER BY source_line",
                        [with_tests.version_id])
    assert [r["tests"] for r in stored] == [r["tests"] for r in coded]  # file order, multi-line code intact
    without = validate(encode(plain), file, ImportOptions()).examples
    with_some = validate(encode(half), file, ImportOptions()).examples
    assert [ex.tests for ex in with_some] == [r.get("tests") for r in half]  # a blank CSV cell is no tests
    assert [a.hash == b.hash for a, b in zip(with_some, without)] == [r.get("tests") is None for r in half]
    assert with_tests.version_id != _import(owner, eng, encode(plain), file).version_id


def test_plain_rows_keep_their_old_hash():
    from core.datasets.validate import example_hash

    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    # As before tests existed: the sha256 of the compact [role, content] pairs.
    assert example_hash(messages) == hashlib.sha256(b'[["user","Hi"],["assistant","Hello"]]').hexdigest()
    assert example_hash(messages, "assert True") != example_hash(messages)


def test_tests_that_are_not_text_are_a_problem_naming_file_and_line():
    items = rows(4, tests=True)
    items[2]["tests"] = ["assert add_2(1) == 3"]
    report = validate(jsonl(items), "code.jsonl", ImportOptions()).report
    assert [(p.code, p.file, p.line, p.field) for p in report.errors] == [("bad_type", "code.jsonl", 3, "tests")]
    assert "must be Python test code as text" in report.errors[0].message


def test_tests_column_can_be_mapped():
    items = [{"question": r["prompt"], "answer": r["completion"], "checks": r["tests"]} for r in rows(5, tests=True)]
    checked = validate(csv_bytes(items), "code.csv", ImportOptions(
        mapping={"prompt": "question", "completion": "answer", "tests": "checks"}))
    assert checked.report.ok and [ex.tests for ex in checked.examples] == [i["checks"] for i in items]


# ---- samples per prompt ---------------------------------------------------------------------
def test_samples_repeat_each_prompt_with_the_same_source(owner, accounts):
    eng, store = accounts["engineer"], owner.store
    vid = _import(owner, eng, jsonl(rows(30, tests=True))).version_id
    once, _ = prompts_from_version(store, eng, vid)
    thrice, source = prompts_from_version(store, eng, vid, samples=3)
    assert source["samples"] == 3 and len(thrice) == 3 * len(once)
    for i, prompt in enumerate(once):
        assert thrice[3 * i: 3 * i + 3] == [prompt] * 3
    with pytest.raises(InvalidInput, match="samples: 0 samples per prompt"):
        prompts_from_version(store, eng, vid, samples=0)


def test_samples_are_refused_with_greedy_decoding(owner, accounts, monkeypatch):
    eng, store = accounts["engineer"], owner.store
    vid = _import(owner, eng, jsonl(rows(30, tests=True))).version_id
    prompts, source = prompts_from_version(store, eng, vid, samples=4)
    spec = GenerationSpec("code", ["base"], prompts, source, Decoding(temperature=0.0), "transformers")
    with pytest.raises(InvalidInput, match="samples: 4 samples per prompt need sampling, but temperature 0"):
        generate(store, owner.jobs, owner.settings, eng, spec)
    assert store.scalar("SELECT count(*) FROM generation_sets") == 0


def test_samples_honour_the_prompt_limit(owner, accounts, monkeypatch):
    import core.serving as serving

    eng, store = accounts["engineer"], owner.store
    vid = _import(owner, eng, jsonl(rows(30, tests=True))).version_id
    monkeypatch.setattr(serving, "MAX_PROMPTS", 10)
    with pytest.raises(InvalidInput, match=r"samples: \d+ prompts x 5 samples is \d+ prompts, more than 10"):
        prompts_from_version(store, eng, vid, samples=5)


# ---- the command line -----------------------------------------------------------------------
def test_cli_declares_changes_and_uses_metrics(cli, tmp_path):
    data = tmp_path / "code.jsonl"
    data.write_bytes(jsonl(rows(30, tests=True)))
    bad = cli("data", "import", str(data), "--metrics", "exact_match,meteor")
    assert bad.returncode == 1 and "metrics: unknown meteor; known:" in bad.stderr
    made = json.loads(cli("data", "import", str(data), "--metrics", "tests_pass,words", "--json").stdout)
    assert made["created"] and made["metrics"] == ["tests_pass", "words"]
    version = made["version"]
    assert "metrics: tests_pass, words" in cli("data", "show", version, "--examples", "0").stdout
    changed = cli("data", "metrics", version, "--set", "exact_match")
    assert changed.returncode == 0 and f"{version}: exact_match" in changed.stdout
    again = cli("data", "import", str(data), "--metrics", "chrf")
    assert "Already imported" in again.stdout and "declared metrics changed to chrf" in again.stdout
    assert "no metrics declared" in cli("data", "metrics", version, "--clear").stdout
    schema = tmp_path / "answer.schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["answer"]}))
    labelled = cli("data", "metrics", version, "--labels", "pass, fail", "--schema", str(schema))
    assert labelled.returncode == 0 and "labels: pass, fail" in labelled.stdout and '"required"' in labelled.stdout
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    refused = cli("data", "metrics", version, "--schema", str(broken))
    assert refused.returncode == 1 and f"{broken}: not a JSON file" in refused.stderr
    greedy = cli("generate", "--prompts", f"{version}:test", "--samples", "3")
    assert greedy.returncode == 1 and "samples: 3 samples per prompt need sampling" in greedy.stderr


# ---- the Data page --------------------------------------------------------------------------
def test_data_page_declares_metrics_at_import_and_changes_them(settings, env, owner, accounts, monkeypatch,
                                                              tmp_path):
    from tests.apptest import DashboardOwners, assert_clean, button, goto, make_app, use_fast_password_hashing

    use_fast_password_hashing(monkeypatch)
    owners = DashboardOwners(monkeypatch)
    try:
        data = tmp_path / "code.jsonl"
        data.write_bytes(jsonl(rows(30, tests=True)))
        at = goto(make_app(env, "eve"), "Data")
        at.radio[0].set_value("Path on the server").run()
        next(t for t in at.text_input if t.label == "File path on the server").set_value(str(data)).run()
        at.multiselect(key="import-metrics").set_value(["tests_pass", "words"]).run()
        at = button(at, "Import").click().run()
        assert_clean(at)
        [version] = list_versions(owner.store, accounts["engineer"])
        assert version["metrics"] == ["tests_pass", "words"]
        at.run()
        form = at.multiselect(key=f"declared-metrics-{version['version_id']}")
        assert form.value == ["tests_pass", "words"]
        form.set_value(["exact_match", "label_accuracy", "schema_valid"])
        vid = version["version_id"]
        at.text_input(key=f"labels-{vid}").set_value("yes, no")
        at.text_area(key=f"schema-{vid}").set_value('{"type": "object", "required": ["answer"]}')
        at = button(at, "Save metrics").click().run()
        assert_clean(at)
        saved = get_version(owner.store, accounts["engineer"], vid)
        assert saved["metrics"] == ["exact_match", "label_accuracy", "schema_valid"]
        assert saved["metric_options"] == {"labels": ["yes", "no"],
                                           "json_schema": {"type": "object", "required": ["answer"]}}
        # A schema that is not one is refused naming where, and nothing changes.
        at.text_area(key=f"schema-{vid}").set_value('{"type": "objekt"}')
        at = button(at, "Save metrics").click().run()
        assert any("JSON schema is invalid" in e.value for e in at.error)
        assert get_version(owner.store, accounts["engineer"], vid)["metric_options"] == saved["metric_options"]
    finally:
        owners.close()



# ---- metrics that need more than references: labels, a JSON schema ---------------------------------
SCHEMA = {"type": "object", "required": ["category"], "properties": {"category": {"enum": ["billing", "bug"]}}}


def test_label_accuracy_and_schema_valid_score_with_what_the_data_declares():
    from core.metrics.registry import check_metric_options, score, scoring_options

    preds = ['It is a billing issue.', '{"category": "bug"}', "No idea.", '{"category": "refund"}']
    refs = ["billing", "bug", "bug", "billing"]
    got = score(["label_accuracy", "schema_valid"], preds, refs,
                options={"labels": ["billing", "bug"], "json_schema": SCHEMA})
    assert got["label_accuracy"] == [1.0, 1.0, 0.0, 0.0]
    assert got["schema_valid"] == [0.0, 1.0, 0.0, 0.0]  # "refund" is not in the enum
    # Labels default to the distinct references; a free-text reference set is not a label set.
    assert scoring_options(["label_accuracy"], None, refs) == {"labels": ["billing", "bug"]}
    with pytest.raises(InvalidInput, match="label_accuracy needs labels"):
        scoring_options(["label_accuracy"], None, [f"answer number {i}" for i in range(150)])
    with pytest.raises(InvalidInput, match="schema_valid needs a JSON schema"):
        scoring_options(["schema_valid"], {"labels": ["a"]}, refs)
    with pytest.raises(InvalidInput, match=r"JSON schema is invalid at properties/category"):
        check_metric_options({"json_schema": {"properties": {"category": {"type": 7}}}})
    with pytest.raises(InvalidInput, match="unknown threshold"):
        check_metric_options({"threshold": 0.5})
    with pytest.raises(InvalidInput, match="labels: give a list"):
        check_metric_options({"labels": ["ok", ""]})
    assert check_metric_options({"labels": [" a", "a", "b"]}) == {"labels": ["a", "b"]}


def test_a_score_job_uses_the_versions_labels_and_schema(owner, accounts):
    eng, store = accounts["engineer"], owner.store
    items = [{"prompt": f"Ticket {i}: classify it. Notes: {' '.join(random.Random(i).sample(WORDS, 10))}",
              "completion": ["billing", "bug"][i % 2], "split": "test"} for i in range(8)]
    vid = _import(owner, eng, jsonl(items), "labels.jsonl", metrics=["label_accuracy", "schema_valid"],
                  metric_options={"labels": ["billing", "bug"], "json_schema": SCHEMA}).version_id
    assert get_version(store, eng, vid)["metric_options"]["labels"] == ["billing", "bug"]
    prompts, source = prompts_from_version(store, eng, vid)
    answers = {"base": ["no idea" for _ in prompts],
               "adapter:tuned": [f'{{"category": "{p["reference"]}"}}' for p in prompts]}
    gen = _stored_set(store, prompts, source, answers)
    job_id = start_scoring(store, owner.jobs, eng, gen)
    job = _wait(owner.jobs, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert json.loads(job["config"])["options"] == {"labels": ["billing", "bug"], "json_schema": SCHEMA}
    scores = {(r["variant_id"], r["metric"]): r["mean"] for r in store.rows(
        "SELECT variant_id, metric, avg(value) AS mean FROM metric_scores WHERE set_id = ? GROUP BY ALL", [gen])}
    assert scores[("adapter:tuned", "label_accuracy")] == 1.0 and scores[("base", "label_accuracy")] == 0.0
    assert scores[("adapter:tuned", "schema_valid")] == 1.0 and scores[("base", "schema_valid")] == 0.0
