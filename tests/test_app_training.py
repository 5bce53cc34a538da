"""AppTest tier for the Train and Models pages: launch from the form, watch, read-only for leads."""

from __future__ import annotations

import pytest

from core.datasets import ImportOptions, import_dataset
from core.training import list_runs, start_training
from core.training.config import TrainConfig
from tests.apptest import assert_clean, button, goto, titles, wait_for_job
from tests.test_app import app, fast_password_hashing  # noqa: F401  (the same fixtures as the other pages)

pytestmark = pytest.mark.slow


@pytest.fixture
def version(owner, accounts, demo_files) -> str:
    good, _ = demo_files
    return import_dataset(owner.store, accounts["engineer"], good.read_bytes(), good.name,
                          ImportOptions(name="tickets")).version_id


def _number(at, label):
    [widget] = [w for w in at.number_input if w.label == label]
    return widget


def test_engineer_launches_a_run_from_the_train_page(app, owner, accounts, version, tiny_model):
    at = goto(app("eve"), "Train")
    assert titles(at) == ["Train"]
    assert_clean(at)
    assert any("Estimate:" in i.value for i in at.info)
    _number(at, "max_steps").set_value(3)
    _number(at, "learning_rate").set_value(1e-3)
    at.run()
    assert any("outside the LoRA guide range" in w.value for w in at.warning)
    assert any("3 steps" in i.value for i in at.info)
    button(at, "Launch").click().run()
    assert_clean(at)
    assert any("Started train-" in s.value for s in at.success)
    runs = list_runs(owner.store, accounts["lead"])
    assert len(runs) == 1 and runs[0]["config"].count('"max_steps": 3') == 1
    job = wait_for_job(owner, runs[0]["job_id"], timeout=300)
    assert job["status"] == "succeeded", owner.jobs.log_tail(job["job_id"])


def test_bad_field_is_named_and_nothing_launches(app, owner, version):
    at = goto(app("eve"), "Train")
    # The form's ranges are core's (TrainConfig's fields): it never offers what core refuses.
    rank = _number(at, "lora_rank")
    assert (rank.min, rank.max) == (1, 512)
    # What only core can judge (a learning rate far too high for full fine-tuning) is refused, named.
    next(s for s in at.selectbox if s.label == "method").set_value("full")
    _number(at, "learning_rate").set_value(5e-3)
    at.run()
    assert_clean(at)
    assert any("learning_rate" in e.value and "full fine-tuning" in e.value for e in at.error)
    assert not [b for b in at.button if b.label == "Launch"]
    assert owner.store.scalar("SELECT count(*) FROM jobs") == 0


def test_lead_reads_models_without_engineer_actions(app, owner, accounts, version, tiny_model):
    config = TrainConfig(base_model=tiny_model, dataset_version=version, max_steps=2, eval_every=1,
                         batch_size=4, max_seq_len=128)
    job_id = start_training(owner.store, owner.jobs, accounts["engineer"], config)
    owner.jobs.wait(job_id, timeout=300, poll=0.3)
    at = goto(app("leo"), "Models")
    assert_clean(at)
    assert titles(at) == ["Models"]
    assert any(job_id in sub.value for sub in at.subheader)
    labels = {b.label for b in at.button}
    assert "Merge and export" not in labels and "Reproduce" not in labels
    assert any("not run yet" in m.value for m in at.markdown)  # no regression gate yet
    eng = goto(app("eve"), "Models")
    assert {"Merge and export", "Reproduce"} <= {b.label for b in eng.button}
    # Once the suite has judged the run's adapter, the page shows the gate's verdict.
    from core.regression import runs
    from tests.test_regression_runs import seed_suite_set

    suite_set = seed_suite_set(owner.store, {}, tuned=f"adapter:{job_id}")
    runs.judge(owner.store, accounts["lead"], suite_set, f"adapter:{job_id}", owner.settings.regression)
    at.run()
    assert any(f"Regression gate of `adapter:{job_id}`: **pass**" in s.value for s in at.success)
