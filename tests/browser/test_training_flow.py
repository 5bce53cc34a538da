"""The [training] "done when", in a real browser: an engineer launches a LoRA run, watches
both curves, cancels, resumes, sees it finish, merges and exports it, and reads its lineage."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import log_in, open_page, wait_idle
from tests.conftest import ADMIN_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def seed_workspace(owner, root) -> None:
    """Before the server starts: a small demo dataset version to train on."""
    from core.auth import CLI_USER
    from core.datasets import ImportOptions, import_dataset
    from core.demo.tickets import write_demo_files

    good, _ = write_demo_files(root / "seed", n=200)
    import_dataset(owner.store, CLI_USER, good.read_bytes(), good.name, ImportOptions(name="tickets"))


def _expect():
    from playwright.sync_api import expect

    return expect


def _set_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_idle(page)


def test_launch_watch_cancel_resume_finish_merge(server, page):
    expect = _expect()
    log_in(page, server.url, "admin", ADMIN_PASSWORD)
    open_page(page, "Train")
    expect(page.get_by_text("Estimate:")).to_be_visible()
    _set_number(page, "max_steps", "160")
    _set_number(page, "eval_every", "10")
    _set_number(page, "learning_rate", "2.0e-3")
    expect(page.get_by_text("160 steps")).to_be_visible()
    page.get_by_role("button", name="Launch").click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"Started train-"))).to_be_visible()

    page.get_by_role("tab", name="Runs").click()
    progress = page.get_by_text(re.compile(r"running · step \d+/160"))
    expect(progress).to_be_visible(timeout=90_000)  # the worker loaded the model and is training
    expect(page.get_by_text(re.compile(r"Best validation loss"))).to_be_visible(timeout=60_000)
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text(re.compile(r"cancelled · step \d+/160"))).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_text(re.compile(r"succeeded · step 160/160"))).to_be_visible(timeout=180_000)

    open_page(page, "Models")
    page.get_by_role("tab", name="Training runs").click()
    expect(page.get_by_text("Dataset", exact=False).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"Best checkpoint .*checkpoint-\d+"))).to_be_visible()
    page.get_by_role("button", name="Merge and export").click()
    expect(page.get_by_text(re.compile(r"parity passed"))).to_be_visible(timeout=120_000)
    page.get_by_text("Full config and lineage").click()
    expect(page.get_by_text(re.compile(r"files_sha256"))).to_be_visible()
