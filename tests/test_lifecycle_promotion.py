"""The promoted version of each task: a pointer with history, promote and rollback with reasons,
enforced by role in core, audited."""

from __future__ import annotations

import json

import pytest

from core.datasets import ImportOptions, import_dataset
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.lifecycle import promotion
from core.regression import runs
from tests.test_regression_runs import seed_suite_set

WHY = "reads better and passes the gate"
LINEAGE = {"dataset": {"name": "tickets", "version_id": "v", "content_hash": "0" * 16}, "base_model": {"id": "m"},
           "code": {"tuneboard": "0", "commit": "0" * 10, "dirty": False}, "seed": 13}


@pytest.fixture
def world(owner, accounts, demo_files):
    """Three fine-tuned versions of one task, each with a passing gate, and a run row tying them to it."""
    good, _ = demo_files
    version = import_dataset(owner.store, accounts["engineer"], good.read_bytes(), good.name,
                             ImportOptions(name="tickets")).version_id
    with owner.store.transaction() as cur:
        for name in ("a", "b", "c"):
            cur.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES "
                        "(?, 'train', 'succeeded', '', '{}', 'eve')", [f"train-{name}"])
            cur.execute("INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage) VALUES "
                        "(?, ?, 'm', 'lora', '{}', ?)", [f"train-{name}", version, json.dumps(LINEAGE)])
            cur.execute("INSERT INTO model_variants (variant_id, kind, name, path, base_model, job_id, detail) VALUES "
                        "(?, 'adapter', ?, '', 'm', ?, ?)", [f"adapter:{name}", name, f"train-{name}",
                                                              json.dumps({"dataset_version": version})])
    for name in ("a", "b", "c"):
        set_id = seed_suite_set(owner.store, {}, tuned=f"adapter:{name}")
        runs.judge(owner.store, accounts["lead"], set_id, f"adapter:{name}", owner.settings.regression)
    return owner.store, accounts


def test_promotions_stack_and_rollbacks_pop_with_reasons(world):
    store, acc = world
    eng = acc["engineer"]
    assert promotion.task_of(store, "adapter:b") == "tickets" and promotion.task_of(store, "base") is None
    assert promotion.current(store, eng, "tickets") is None
    for name in ("a", "b", "c"):
        promotion.promote(store, eng, f"adapter:{name}", WHY)
    assert promotion.current(store, acc["lead"], "tickets") == "adapter:c"
    with pytest.raises(InvalidInput, match="already the promoted version"):
        promotion.promote(store, eng, "adapter:c", WHY)
    promotion.rollback(store, eng, "tickets", "c answers refunds wrongly")
    assert promotion.current(store, eng, "tickets") == "adapter:b"
    promotion.rollback(store, eng, "tickets", "b was promoted on too few votes")
    assert promotion.current(store, eng, "tickets") == "adapter:a"  # two rollbacks: two versions back
    with pytest.raises(InvalidInput, match="only one promoted version"):
        promotion.rollback(store, eng, "tickets", "nothing before a exists")
    now = promotion.promoted(store, eng)["tickets"]
    assert now["current"] == "adapter:a" and now["previous"] is None
    rows = promotion.history(store, acc["lead"], "tickets")
    assert [(r["action"], r["variant_id"]) for r in rows] == [
        ("rollback", "adapter:a"), ("rollback", "adapter:b"), ("promote", "adapter:c"), ("promote", "adapter:b"),
        ("promote", "adapter:a")]
    assert rows[0]["reason"] == "b was promoted on too few votes" and rows[0]["promoted_by"] == "eve"
    audit = store.rows("SELECT action, target, detail FROM audit_log WHERE action IN ('promote', 'rollback') "
                       "ORDER BY id")
    assert [a["action"] for a in audit] == ["promote"] * 3 + ["rollback"] * 2
    assert audit[3]["detail"].startswith("tickets: rolled back from adapter:c")


def test_every_change_needs_a_reason_and_an_engineer(world):
    store, acc = world
    with pytest.raises(InvalidInput, match="reason: a promotion needs a written reason of at least 15"):
        promotion.promote(store, acc["engineer"], "adapter:a", "ok")
    for actor in (acc["lead"], acc["rater"]):
        with pytest.raises(PermissionDenied):
            promotion.promote(store, actor, "adapter:a", WHY)
        with pytest.raises(PermissionDenied):
            promotion.rollback(store, actor, "tickets", WHY)
    with pytest.raises(InvalidInput, match="task: base was not trained on a dataset here"):
        promotion.promote(store, acc["engineer"], "base", WHY, override=True)
    promotion.promote(store, acc["engineer"], "base", "the prompted base is good enough", override=True,
                      task="tickets")
    assert promotion.current(store, acc["engineer"], "tickets") == "base"
    with pytest.raises(NotFound, match="No model version 'adapter:typo'"):  # an override names a real version
        promotion.promote(store, acc["engineer"], "adapter:typo", WHY, override=True, task="tickets")
    assert store.scalar("SELECT count(*) FROM promotions") == 1
