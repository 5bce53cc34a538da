"""Code tasks: tests_pass runs each answer's code against its example's tests in the sandbox,
and summaries turn samples per prompt into pass@k per problem, with CIs and paired deltas."""

from __future__ import annotations

import json
import math
import os
import re
import time

import numpy as np
import pytest

import core.metrics.code as code
from core.config import MetricsSettings
from core.errors import InvalidInput
from core.metrics.code import extract_code
from core.metrics.passk import pass_at_k, pass_at_k_table
from core.metrics.registry import default_metrics, higher_is_better, metric_version, summarize
from core.metrics.sandbox import sandbox_capabilities
from core.metrics.scoring import start_scoring, summary
from core.serving import prompts_from_version
from tests.test_dataset_metrics import _import, _stored_set, _wait, jsonl, rows

CAPS = sandbox_capabilities()
ISOLATED = code.isolation_problem() is None
needs_sandbox = pytest.mark.skipif(not ISOLATED, reason=f"the sandbox cannot isolate here: {code.isolation_problem()}")

GOOD = "def add(a, b):\n    return a + b"
TEST = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"


# ---- extraction -----------------------------------------------------------------------------
@pytest.mark.parametrize("response, expected", [
    ("def f():\n    return 1", "def f():\n    return 1"),                                    # no fence: all of it
    ("Sure:\n```python\ndef f():\n    return 1\n```\nDone.", "def f():\n    return 1\n"),   # ```python
    ("```\nx = 1\n```\n```python\nx = 2\n```", "x = 1\n"),                                  # the first one
    ("```json\n{\"a\": 1}\n```\nthen\n```py\nx = 3\n```", "x = 3\n"),                       # other languages skipped
    ("```python\ndef f():\n    return 4", "def f():\n    return 4"),                          # cut off: to the end
])
def test_code_extraction_rule(response, expected):
    assert extract_code(response) == expected


# ---- one answer in the sandbox ----------------------------------------------------------------
@needs_sandbox
def test_tests_pass_on_known_good_bad_and_looping_code():
    answers = [f"```python\n{GOOD}\n```", "def add(a, b):\n    return a - b", "def add(a, b):\n    while True:\n"
               "        pass", "this is not code", GOOD + "\nif __name__ == '__main__':\n    raise SystemExit(0)"]
    started = time.monotonic()
    assert code.tests_pass(answers, [TEST] * len(answers), timeout_s=1.0) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert time.monotonic() - started < 10  # the loop is stopped at its 1 s limit


@needs_sandbox
def test_humaneval_style_check_passes_the_candidate():
    check = ("def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n    assert candidate([]) == 0\n\n"
             "check(total)")
    good, bad = "def total(xs):\n    return sum(xs)", "def total(xs):\n    return len(xs)"
    assert code.tests_pass([good, bad], [check, check]) == [1.0, 0.0]


def test_tests_pass_needs_tests():
    with pytest.raises(InvalidInput, match="example 1 has no tests"):
        code.tests_pass([GOOD, GOOD], [TEST, None])


def test_registry_knows_tests_pass_and_pass_at_k():
    assert higher_is_better("pass@5") and higher_is_better("tests_pass") and not higher_is_better("ter")
    assert metric_version("pass@10") == metric_version("tests_pass")
    with pytest.raises(InvalidInput, match="unknown pass@0"):
        higher_is_better("pass@0")
    assert default_metrics(["x", "y"], ["assert 1", "assert 2"])[0] == "tests_pass"
    assert "tests_pass" not in default_metrics(["x", "y"], ["assert 1", None])
    assert "tests_pass" not in default_metrics(["x", "y"])


# ---- pass@k per problem ---------------------------------------------------------------------
def _independent(n: int, c: int, k: int) -> float:
    """Chen et al.'s definition with exact binomials (independent of passk's product form)."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _samples(counts: list[tuple[int, int]]) -> tuple[list[float], list[str]]:
    values, problems = [], []
    for j, (n, c) in enumerate(counts):
        values += [1.0] * c + [0.0] * (n - c)
        problems += [f"p{j}"] * n
    return values, problems


def test_pass_at_k_table_matches_the_estimator_for_known_counts():
    base_counts = [(6, 0), (6, 1), (6, 3), (6, 6)]
    tuned_counts = [(6, 2), (6, 5), (6, 3), (6, 6)]
    base, problems = _samples(base_counts)
    tuned, same = _samples(tuned_counts)
    assert problems == same
    table = pass_at_k_table({"base": base, "tuned": tuned}, problems, (1, 5, 10))
    assert set(table["base"]) == {"pass@1", "pass@5"}  # 10 > 6 samples per problem
    for variant, counts in (("base", base_counts), ("tuned", tuned_counts)):
        for k in (1, 5):
            expected = [_independent(n, c, k) for n, c in counts]
            assert table[variant][f"pass@{k}"] == pytest.approx(expected)
            assert table[variant][f"pass@{k}"] == [pass_at_k(n, c, k) for n, c in counts]
        assert table[variant]["pass@1"] == pytest.approx([c / n for n, c in counts])


def test_pass_at_k_table_uses_the_fewest_samples_and_leaves_unanswered_problems_out():
    values, problems = _samples([(3, 1), (5, 2)])
    values[3:] = [float("nan")] * 5  # the second problem was never scored
    table = pass_at_k_table({"base": values}, problems, (1, 2, 5))
    assert set(table["base"]) == {"pass@1", "pass@2"}
    assert table["base"]["pass@2"][0] == pytest.approx(_independent(3, 1, 2)) and np.isnan(table["base"]["pass@2"][1])
    with pytest.raises(InvalidInput, match="pass_k: every k must be a whole number"):
        pass_at_k_table({"base": values}, problems, (0, 1))


def test_summarize_gives_pass_at_k_rows_with_deltas_per_problem():
    base, problems = _samples([(4, 0), (4, 1), (4, 2), (4, 4)])
    tuned, _ = _samples([(4, 2), (4, 3), (4, 4), (4, 4)])
    table = pass_at_k_table({"base": base, "adapter:x": tuned}, problems, (1,))
    means, deltas = summarize(table, rounds=200)
    assert {m["metric"] for m in means} == {"pass@1"} and all(m["n"] == 4 for m in means)
    (d,) = deltas
    assert d["delta"] == pytest.approx(np.mean([0.5, 0.5, 0.5, 0.0])) and d["direction"] == "better"


# ---- a score job over a stored generation set ---------------------------------------------------
SAMPLES = 5
# Per problem (dataset row i): how many of the 5 samples each variant gets right.
PASSING = {"base": [0, 1, 2, 5], "adapter:tuned": [3, 4, 5, 5]}


def _answer(i: int, right: bool, j: int) -> str:
    if right:
        return f"Here you go:\n```python\ndef add_{i}(x):\n    return x + {i}\n```"
    if j == 0:
        return f"def add_{i}(x):\n    while True:\n        pass"  # never returns: fails at the timeout
    return f"```python\ndef add_{i}(x):\n    return x - {i} + 1\n```"


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, theirs, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(open(f"/proc/{entry.name}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@needs_sandbox
def test_a_killed_score_worker_takes_its_sandboxed_runs_with_it(owner, accounts):
    """SIGKILL to the score worker while a candidate runs in the sandbox (here: it sleeps): the run's launcher
    and init carry the job's name, so the owner ends them with the worker, and the kernel the run."""
    import signal

    from core.jobs.launchers import job_processes
    from tests.procs import identities, still_running

    eng, store = accounts["engineer"], owner.store
    items = rows(2, tests=True)
    for r in items:
        r["split"] = "test"
    vid = _import(owner, eng, jsonl(items)).version_id
    prompts, source = prompts_from_version(store, eng, vid)
    sleepy = [f"def add_{i}(x):\n    import time\n    time.sleep(120)\n    return x + {i}" for i in range(len(prompts))]
    gen = _stored_set(store, prompts, source, {"base": sleepy, "adapter:tuned": sleepy})
    job_id = start_scoring(store, owner.jobs, eng, gen, settings=MetricsSettings(sandbox_timeout_s=100.0))
    worker = owner.jobs.get(job_id)["pid"]
    deadline = time.monotonic() + 120
    while len(running := _descendants(worker)) < 3 and time.monotonic() < deadline:  # a launcher, its init, the run
        owner.jobs.reconcile()
        time.sleep(0.1)
    assert len(running) >= 3, owner.jobs.log_tail(job_id)
    known = identities(running)
    os.kill(worker, signal.SIGKILL)
    job = _wait(owner.jobs, job_id, timeout=60)
    assert job["status"] == "failed" and "exited without finishing" in job["error"]
    assert job_processes(job_id) == [] and still_running(known) == []


@needs_sandbox
def test_score_job_gives_pass_at_k_over_samples(owner, accounts):
    eng, store = accounts["engineer"], owner.store
    items = rows(4, tests=True)
    for r in items:
        r["split"] = "test"
    vid = _import(owner, eng, jsonl(items)).version_id
    prompts, source = prompts_from_version(store, eng, vid, samples=SAMPLES)
    problem = [int(re.search(r"add_(\d+)\(", p["messages"][-1]["content"]).group(1)) for p in prompts]
    assert all(len(set(problem[k:k + SAMPLES])) == 1 for k in range(0, len(prompts), SAMPLES))
    outputs = {v: [_answer(i, k % SAMPLES < passing[i], k % SAMPLES) for k, i in enumerate(problem)]
               for v, passing in PASSING.items()}
    gen = _stored_set(store, prompts, source, outputs)
    job_id = start_scoring(store, owner.jobs, eng, gen, settings=MetricsSettings(sandbox_timeout_s=1.0))
    job = _wait(owner.jobs, job_id, timeout=300)
    assert job["status"] == "succeeded", job["error"]
    config = json.loads(job["config"])
    assert config["metrics"][0] == "tests_pass" and config["sandbox"] == {"timeout_s": 1.0, "memory_mb": 512}
    assert store.scalar("SELECT count(*) FROM metric_scores WHERE set_id = ? AND metric = 'tests_pass'",
                        [gen]) == 2 * 4 * SAMPLES  # the raw per-sample rows stay stored
    means, deltas = summary(store, eng, gen, rounds=300, ks=(1, 5, 10))
    got = {(m["variant"], m["metric"]): m for m in means}
    assert not any(metric in ("tests_pass", "pass@10") for _, metric in got)
    for variant, passing in PASSING.items():
        for k in (1, 5):
            expected = np.mean([_independent(SAMPLES, c, k) for c in passing])
            row = got[(variant, f"pass@{k}")]
            assert row["mean"] == pytest.approx(expected) and row["n"] == 4 and row["lo"] <= row["mean"] <= row["hi"]
    d1 = next(d for d in deltas if d["metric"] == "pass@1")
    assert d1["delta"] == pytest.approx((sum(PASSING["adapter:tuned"]) - sum(PASSING["base"])) / (4 * SAMPLES))
    assert d1["variant"] == "adapter:tuned" and d1["direction"] == "better" and d1["n"] == 4
    assert {"p", "p_holm", "p_bh", "significant"} <= d1.keys()
    assert len({d["metric"] for d in deltas}) == len(deltas)
    # the adjusted p (Bonferroni over the tested family) is never below the raw one; untested deltas have none
    assert all(d["p_holm"] >= d["p"] for d in deltas if d["p_holm"] is not None)


def test_scoring_refuses_tests_pass_without_tests_or_isolation(owner, accounts, monkeypatch):
    eng, store = accounts["engineer"], owner.store
    vid = _import(owner, eng, jsonl(rows(20))).version_id
    prompts, source = prompts_from_version(store, eng, vid)
    gen = _stored_set(store, prompts, source, {"base": [p["reference"] for p in prompts]})
    with pytest.raises(InvalidInput, match="tests_pass needs the tests of each prompt's dataset example; prompt 0"):
        start_scoring(store, owner.jobs, eng, gen, ["tests_pass"])
    coded = _import(owner, eng, jsonl(rows(20, tests=True, seed=3)), file="code.jsonl").version_id
    prompts, source = prompts_from_version(store, eng, coded)
    gen = _stored_set(store, prompts, source, {"base": [p["reference"] for p in prompts]})
    monkeypatch.setattr(code, "sandbox_capabilities", lambda: {**CAPS, "network_isolated": False, "setuid": False})
    lacks = r"cannot isolate generated code \(it lacks a network namespace; dropping to a per-run uid\)"
    with pytest.raises(InvalidInput, match=lacks):
        start_scoring(store, owner.jobs, eng, gen)  # tests_pass is a default here, and refused
    assert store.scalar("SELECT count(*) FROM jobs WHERE kind = 'score'") == 0
