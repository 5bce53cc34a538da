"""[judge] in a real browser, as its "Done when" says: an engineer defines a judge on the Judges page, runs
it over a pair set the experts have voted on, and reads its agreement with them; the lead opens Results,
"Judge vs experts", and sees the agreement, order consistency, position bias and the judge's ladder apart
from the experts'.

The judge is an endpoint contender: the scripted judge of tests/judge_server.py behind a real local HTTP
server (a model that judges well cannot run here; the demo's 135M model judges through vLLM in the demo
and in tests/test_serving_server.py). The workspace, with its experts' votes, is made before the server
starts.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.browser.conftest import log_in, open_page, wait_idle
from tests.conftest import ADMIN_PASSWORD, PASSWORD

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/judge-shots")
STATE: dict = {}


def seed_workspace(owner, root) -> None:
    from core.auth import Role, User
    from core.serving import register_external
    from tests.judge_server import ScriptedJudge
    from tests.test_judge import make_voted_pair_set

    pair_set, good = make_voted_pair_set(owner.store, User("leo", Role.LEAD))
    judge = ScriptedJudge(good=good, agree=0.9, first_bias=0.2, seed=6, logprobs="give", unsure_share=0.3)
    register_external(owner.store, User("admin", Role.ENGINEER), "grader", judge.url, "grader-model")
    STATE.update(pair_set=pair_set, judge=judge)


@pytest.fixture(scope="module", autouse=True)
def judge_endpoint():
    yield
    if "judge" in STATE:
        STATE["judge"].close()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_engineer_defines_and_runs_a_judge_and_the_lead_reads_it_beside_the_experts(server, page):
    from playwright.sync_api import expect

    log_in(page, server.url, "admin", ADMIN_PASSWORD)
    open_page(page, "Judges")
    page.get_by_label("Name").fill("grader, balanced")
    page.get_by_role("combobox", name="Answered by").click()
    page.get_by_role("option", name="external:grader").click()
    page.get_by_role("button", name="Define judge").click()
    wait_idle(page)
    run = page.get_by_role("button", name="Judge every pair in both orders")
    expect(run).to_be_visible()
    run.click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"Started judge-|Started generate-"))).to_be_visible()
    deadline = time.monotonic() + 180
    agreement = page.get_by_text("Agreement with experts", exact=True)
    while not agreement.count() and time.monotonic() < deadline:  # the run's 120 judge calls, then its page
        refresh = page.get_by_role("button", name="Refresh")
        if refresh.count():
            refresh.click()
        time.sleep(1.0)
        wait_idle(page)
    expect(agreement.first).to_be_attached()  # a cell of the measures' table (a canvas grid: not "visible")
    expect(page.get_by_text(re.compile(r"Agreement \d+% \(\d+–\d+%\) over 60 pairs"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"Where the judge gives its side at least 60%"))).to_be_visible()
    page.get_by_text("Every verdict").click()
    wait_idle(page)
    _shot(page, "engineer-judges")
    expect(page.get_by_test_id("stException")).to_have_count(0)

    page.get_by_role("button", name=re.compile("Log out")).click()
    wait_idle(page)
    log_in(page, server.url, "leo", PASSWORD)
    open_page(page, "Results")
    page.get_by_role("tab", name="Judge vs experts").click()
    wait_idle(page)
    panel = page.get_by_role("tabpanel").filter(visible=True)
    for measure in ("Agreement with experts", "Experts with each other (the ceiling)", "Same verdict in both orders",
                    "Picks the response shown first", "Cohen's kappa with the experts"):
        expect(panel.get_by_text(measure, exact=True).first).to_be_attached()
    expect(panel.get_by_text(re.compile("The judge's ladder \\(judge votes only"))).to_be_visible()
    expect(panel.get_by_text("Let this judge pre-screen the pair set")).to_be_visible()
    _shot(page, "lead-judge-vs-experts")
    expect(page.get_by_test_id("stException")).to_have_count(0)
