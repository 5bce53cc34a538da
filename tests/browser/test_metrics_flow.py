"""Task metrics in a real browser: a lead lands on Home and sees the best version with its
verdicts, opens Metrics (JSON validity and field accuracy with intervals and significance),
drills down to the worst examples (hostile model output stays inert) and downloads the
HTML report; a rater who types /metrics gets the Rate page.

The workspace is made before the server starts: a seeded generation set (outputs written
without a model; the thing under test is scoring and the pages) scored by a real score job.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import close_page_not_found, log_in, open_page, wait_drawn, wait_idle
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
STATE: dict = {}


def seed_workspace(owner, root) -> None:
    from core.auth import CLI_USER
    from core.demo.review import seed_generation_set
    from core.metrics.scoring import start_scoring

    store = owner.store
    gen = seed_generation_set(store, n_prompts=30, variants=("base", "adapter:tuned"), seed=8)
    # The tuned variant's worst field-accuracy example: its output is an attack.
    store.execute("UPDATE generations SET output = ? WHERE set_id = ? AND variant_id = 'adapter:tuned' AND "
                  "prompt_idx = (SELECT min(prompt_idx) FROM generations WHERE set_id = ? AND variant_id = "
                  "'adapter:tuned' AND output LIKE '%not sure%')", [HOSTILE, gen, gen])
    job = owner.jobs.wait(start_scoring(store, owner.jobs, CLI_USER, gen), timeout=180)
    assert job["status"] == "succeeded", job["error"]
    STATE["gen"] = gen


def test_lead_sees_home_metrics_examples_and_downloads_the_report(server, page, tmp_path):
    from playwright.sync_api import expect

    log_in(page, server.url, "leo", PASSWORD, timeout=90_000)  # the first visit summarizes the set (bootstrap)
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Best version: adapter:tuned")).to_be_visible()
    labels = page.get_by_test_id("stMetricLabel")
    expect(labels.filter(has_text=re.compile("^json_valid$"))).to_have_count(1)
    field = page.get_by_test_id("stMetric").filter(has=labels.filter(has_text=re.compile("^field_accuracy$")))
    expect(field.get_by_test_id("stMetricDelta")).to_have_text(re.compile(r"[+-]\d\.\d{3} vs base · "))

    open_page(page, "Metrics")
    chart = page.get_by_test_id("stVegaLiteChart").first
    expect(chart.locator("canvas, svg").first).to_be_visible(timeout=30_000)
    page.get_by_text("The verdict in words").click()
    expect(page.get_by_text(re.compile(r"adapter:tuned vs base, field_accuracy: .*Bonferroni-adjusted"))) \
        .to_be_visible()

    page.get_by_role("tab", name="Examples").click()
    wait_idle(page)
    metric = page.get_by_role("combobox", name="Metric", exact=True).filter(visible=True)
    metric.click()
    page.keyboard.type("field_accuracy")
    page.keyboard.press("Enter")
    wait_idle(page)
    expect(metric).to_have_value("field_accuracy")
    expect(page.get_by_text(re.compile(r"^Prompt \d+$")).first).to_be_visible()
    panel = page.get_by_role("tabpanel").filter(visible=True)
    # The attack is shown as text and does nothing.
    expect(panel.get_by_text("window.__pwned=2", exact=False).first).to_be_visible()
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("[data-testid='stApp'] img[src='x'], [data-testid='stApp'] script:not([src])").count() == 0

    page.get_by_role("tab", name="Export").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the HTML report").click()
    report = (tmp_path / "report.html")
    info.value.save_as(report)
    text = report.read_text()
    assert "field_accuracy" in text and "json_valid" in text and STATE["gen"] in text
    assert "<script" not in text and "&lt;script&gt;" in text
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_a_rater_typing_the_metrics_url_gets_the_rate_page(server, page):
    from playwright.sync_api import expect

    log_in(page, server.url, "rita", PASSWORD)
    page.goto(f"{server.url}/metrics")
    close_page_not_found(page)
    wait_drawn(page)
    expect(page.get_by_role("heading", name="Rate", exact=True)).to_be_visible()
    expect(page.get_by_text("field_accuracy")).to_have_count(0)
