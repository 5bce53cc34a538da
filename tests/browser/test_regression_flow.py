"""The regression gate in a real browser: a lead opens the Regression page and reads a failed
gate down to the items that flipped (model output inert); an engineer overrides the gate with a
written reason, which is recorded.

The workspace is made before the server starts: a finished suite run written from the suite's
own known-good and known-bad answers (no model runs; the thing under test is the gate and its
pages), with one fine-tune answer replaced by hostile HTML.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import log_in, open_page, wait_idle
from tests.conftest import ADMIN_PASSWORD, PASSWORD, known_versions

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
STATE: dict = {}


def seed_workspace(owner, root) -> None:
    from core.auth import CLI_USER
    from core.datasets import ImportOptions, import_dataset
    from core.demo.tickets import write_demo_files
    from core.regression import suite
    from tests.test_regression_runs import seed_suite_set

    good, _ = write_demo_files(root / "data", n=120, seed=3)  # the task the promoted version serves
    import_dataset(owner.store, CLI_USER, good.read_bytes(), good.name, ImportOptions(name="tickets"))

    category = suite.items()[0].category
    ids = [it.item_id for it in suite.items() if it.category == category]
    lost = set(ids[: len(ids) // 2])
    set_id = seed_suite_set(owner.store, {"adapter:tuned": lost})
    known_versions(owner.store, "adapter:tuned")  # the version the engineer promotes over its gate
    owner.store.execute("""UPDATE generations SET output = ? WHERE set_id = ? AND variant_id = 'adapter:tuned'
                           AND prompt_idx = (SELECT prompt_idx FROM generation_prompts WHERE set_id = ?
                                             AND source_ref = ?)""", [HOSTILE, set_id, set_id, sorted(lost)[0]])
    STATE.update(set_id=set_id, category=category, lost=lost)


def test_lead_reads_the_failed_gate_down_to_the_items(server, page):
    from playwright.sync_api import expect

    log_in(page, server.url, "leo", PASSWORD)
    open_page(page, "Regression")
    expect(page.get_by_test_id("stAlertContentError")).to_contain_text("Gate: fail for adapter:tuned against base.")
    expect(page.get_by_text(re.compile(f"^• {STATE['category']}: accuracy fell"))).to_be_visible()
    expect(page.get_by_text("What usually helps:", exact=False)).to_be_visible()
    chart = page.get_by_test_id("stVegaLiteChart").first
    expect(chart.locator("canvas, svg").first).to_be_visible(timeout=30_000)
    expect(page.get_by_role("heading", name=f"Right → wrong ({len(STATE['lost'])})")).to_be_visible()
    flips = page.get_by_test_id("stDataFrame").filter(has_text=sorted(STATE["lost"])[0])
    expect(flips).to_have_count(1)
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("[data-testid='stApp'] img[src='x']").count() == 0
    expect(page.get_by_role("button", name=re.compile("^Promote"))).to_have_count(0)  # leads do not promote
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_engineer_overrides_the_gate_with_a_reason(server, page):
    from playwright.sync_api import expect

    log_in(page, server.url, "admin", ADMIN_PASSWORD)
    open_page(page, "Regression")
    page.get_by_role("textbox", name=re.compile("^Reason for overriding")).fill("the format change ships this week")
    page.get_by_role("button", name="Promote despite the gate").click()
    wait_idle(page)
    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text="Promoted adapter:tuned.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"gate fail, override\): the format change ships this week"))).to_be_visible()
