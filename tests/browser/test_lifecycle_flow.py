"""The lifecycle in a real browser: an engineer adds a contender, schedules a retrain and runs it,
sees the candidate appear beside the promoted version with its metrics, gate and blind pair
set, promotes it, then rolls back, each with a reason.

Before the server starts the workspace gets the demo tickets and one real fine-tune of the tiny
model, promoted. The retrain itself runs in the server: the dashboard's owner trains, generates
(transformers: no calibration), scores, judges and builds the pair set on its monitor's tick.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import log_in, open_page, wait_drawn, wait_idle
from tests.conftest import ADMIN_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SERVER_ENV = {"TUNEBOARD_SERVING_PATH": "transformers"}
STATE: dict = {}


def seed_workspace(owner, root) -> None:
    from core.auth import CLI_USER
    from core.datasets import ImportOptions, import_dataset
    from core.demo.tickets import write_demo_files
    from core.lifecycle import promotion
    from core.training import start_training
    from core.training.config import TrainConfig

    good, _ = write_demo_files(root / "data", n=120, seed=3)
    version = import_dataset(owner.store, CLI_USER, good.read_bytes(), good.name,
                             ImportOptions(name="tickets", metrics=["exact_match", "chrf"])).version_id
    config = TrainConfig(base_model=owner.settings.base_model, dataset_version=version, learning_rate=3e-3,
                         max_steps=4, batch_size=8, eval_every=4, lora_rank=8, lora_alpha=16,
                         modules_to_save=["lm_head"], max_seq_len=256, early_stopping_patience=0)
    run_id = start_training(owner.store, owner.jobs, CLI_USER, config)
    assert owner.jobs.wait(run_id, timeout=300, poll=0.3)["status"] == "succeeded"
    promotion.promote(owner.store, CLI_USER, f"adapter:{run_id}", "the first version of the triage model",
                      override=True)
    STATE["first"] = f"adapter:{run_id}"


def _tab(page, name: str) -> None:
    from playwright.sync_api import expect

    tab = page.get_by_role("tab", name=name)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def test_engineer_retrains_with_a_contender_then_promotes_and_rolls_back(server, page):
    from playwright.sync_api import expect

    log_in(page, server.url, "admin", ADMIN_PASSWORD)
    open_page(page, "Models")
    expect(page.get_by_text(re.compile(rf"tickets → {re.escape(STATE['first'])}"))).to_be_visible()

    _tab(page, "Contenders")
    page.get_by_text("Add a contender").click()
    page.get_by_role("textbox", name="Name").fill("prompted-base")
    page.get_by_role("textbox", name="System prompt").fill("Reply with the JSON triage object only.")
    page.get_by_role("button", name="Add contender").click()
    wait_idle(page)
    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text="Added contender:prompted-base.")) \
        .to_be_visible()

    _tab(page, "Retraining")
    form = page.get_by_test_id("stForm").filter(has_text="Create schedule")
    form.get_by_role("textbox", name="Name").fill("weekly triage retrain")
    form.get_by_role("spinbutton", name="Test prompts (0: all)").fill("3")
    form.get_by_role("spinbutton", name="Suite items per category (0: all)").fill("1")
    form.get_by_role("spinbutton", name="Raters per pair").fill("1")
    form.get_by_role("button", name="Create schedule").click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"weekly triage retrain · tickets · every 7 days · next \d{4}-"))) \
        .to_be_visible()
    page.get_by_role("button", name="Run now").click()
    wait_idle(page)

    # The candidate appears beside the promoted version once the owner has measured it.
    deadline = time.monotonic() + 600
    while True:
        page.reload()
        wait_drawn(page)
        if page.get_by_role("button", name="Promote candidate").count():
            break
        failed = page.get_by_test_id("stAlertContentError").filter(has_text="pipeline")
        assert not failed.count(), failed.first.inner_text()
        assert time.monotonic() < deadline, server.log_tail()
        page.wait_for_timeout(5000)  # the pipeline is still measuring: look again in a while
    candidate = page.get_by_text(re.compile(r"tickets\*?\*?: candidate")).first
    expect(candidate).to_be_visible()
    scores = page.get_by_test_id("stDataFrame").filter(has_text="candidate")
    expect(scores).to_contain_text("promoted")
    expect(scores).to_contain_text("contender")
    expect(page.get_by_text(re.compile("Regression gate of the candidate"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"Blind pair set \S+: \d+ pairs"))).to_be_visible()

    page.get_by_role("textbox", name="Reason for the decision (kept on record)").fill(
        "the candidate answers the new ticket types")
    page.get_by_text("Promote despite the gate").click()
    page.get_by_role("button", name="Promote candidate").click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"tickets → adapter:train-\S+ \(gate inconclusive\) · promoted"))) \
        .to_be_visible()

    page.get_by_role("textbox", name=re.compile("^Reason to roll tickets back")).fill(
        "refund tickets got worse after the switch")
    page.get_by_role("button", name="Roll back").click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(rf"tickets → {re.escape(STATE['first'])} .* rolled back to"))).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
