"""Browser tier: the real `tuneboard serve` driven by Debian's Chromium through Playwright.

One server per test module (its own workspace, made before it starts: the server process
owns the database while it runs). Every test gets a fresh browser profile. Never a
downloaded browser: Playwright launches /usr/bin/chromium (STACK.md, "Browser tests").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.rater_load import free_port, start_server, stop_server
from core.auth import CLI_USER
from core.config import load_settings
from core.owner import Owner
from core.users import create_user
from tests.conftest import ADMIN_PASSWORD, ONE_THREAD, PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
TUNEBOARD = Path(sys.executable).with_name("tuneboard")
START_TIMEOUT = 60.0
ACCOUNTS = {"rita": "rater", "leo": "lead"}
# Motion off in the test browser. An expander grows for 500 ms after its click (a Web Animation
# on <details>, which prefers-reduced-motion does not stop); a click inside it in that time can
# press on one element and release on another, so nothing is clicked (seen as a form submit that
# never reached the server). Tests read what pages say, not how they move.
NO_MOTION = """
(() => {
  const animate = Element.prototype.animate;
  Element.prototype.animate = function (keyframes, options) {
    const timing = typeof options === "number" ? {duration: 0} : {...(options || {}), duration: 0, delay: 0};
    return animate.call(this, keyframes, timing);
  };
  const style = () => {
    const css = document.createElement("style");
    css.textContent = "*, *::before, *::after { transition: none !important; animation-duration: 0s !important;"
      + " animation-delay: 0s !important; scroll-behavior: auto !important; }";
    document.head.appendChild(css);
  };
  if (document.head) style(); else document.addEventListener("DOMContentLoaded", style);
})();
"""  # password PASSWORD; admin has ADMIN_PASSWORD


@dataclass
class Server:
    url: str
    workspace: Path
    log: Path
    process: subprocess.Popen

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, tiny_model) -> Server:
    """`tuneboard serve` on a free port with a fresh workspace holding admin, rita (rater), leo (lead)."""
    if not TUNEBOARD.exists():
        pytest.fail(f"{TUNEBOARD} not found: install the project into the venv (make install)")
    root = tmp_path_factory.mktemp("server")
    workspace = root / "ws"
    env = {key: value for key, value in os.environ.items() if not key.startswith("TUNEBOARD_")}
    env.update({"TUNEBOARD_WORKSPACE": str(workspace), "TUNEBOARD_MODEL_BASE": tiny_model,
                "TUNEBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", **ONE_THREAD})
    env.update(getattr(request.module, "SERVER_ENV", {}))  # a module may set more (e.g. a serving path)

    # The accounts go in through core before the server owns the database.
    # Settings as the server reads them: from root, where there is no tuneboard.toml.
    with contextlib.chdir(root):
        settings = load_settings(env=env)
    owner = Owner.open(settings, monitor=False, env=env)
    try:
        for name, role in ACCOUNTS.items():
            create_user(owner.store, CLI_USER, name, PASSWORD, role)
        seed = getattr(request.module, "seed_workspace", None)  # a module may add data first
        if seed is not None:
            seed(owner, root)
    finally:
        owner.close()

    port = free_port()
    log = root / "server.log"
    try:
        process = start_server(root, env, port, log, timeout=START_TIMEOUT)
    except RuntimeError as exc:  # it exited or never answered; the message has the log's tail
        pytest.fail(str(exc))
    try:
        yield Server(f"http://localhost:{port}", workspace, log, process)
    finally:
        stop_server(process)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(request, tmp_path):
    """A Chromium page with a fresh profile; a screenshot lands in tmp_path when the test fails."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (make chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a validation loads a tokenizer: seconds on a busy CPU

    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        context.add_init_script(NO_MOTION)
        pg = context.pages[0] if context.pages else context.new_page()
        try:
            yield pg
        finally:
            rep = getattr(request.node, "rep_call", None)
            if rep is not None and rep.failed:
                shot = tmp_path / "failure.png"
                try:
                    pg.screenshot(path=str(shot), full_page=True)
                    print(f"\nscreenshot of the failure: {shot}")
                except Exception as exc:  # the page may be gone; the report says why the test failed
                    print(f"\nno screenshot: {exc}")
            context.close()


def wait_idle(page, timeout: float = 30_000) -> None:
    """Wait until the app is connected and its script is not running (Streamlit's own e2e helper).

    Idle alone proves nothing about content: right after a page load or a click the app still
    reports "notRunning" until the server starts the run. Before reading the page, wait for what
    the run draws (an `expect`, or `wait_drawn` after a page load); then idle means that run ended.
    """
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout,
                           state="attached")
    page.wait_for_selector(IDLE, timeout=timeout, state="attached")


def wait_drawn(page, timeout: float = 30_000) -> None:
    """After a page load (goto, reload): the first run has drawn the page's title and ended.

    Every page, the log-in page included, starts with a title; it is only there once the run has
    started, so the idle state after it is that run's end.
    """
    page.locator("[data-testid='stMain'] h1").first.wait_for(state="visible", timeout=timeout)
    wait_idle(page, timeout)


def log_in(page, url: str, username: str, password: str, timeout: float = 30_000) -> None:
    """Sign in on the log-in page and wait until the landing page has been drawn (within `timeout` ms)."""
    page.goto(url)
    wait_drawn(page)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    # the rerun that signs in draws the sidebar's line; idle after it is that run's end
    page.get_by_test_id("stSidebar").get_by_text(f"Signed in as {username}").first.wait_for(state="visible")
    wait_idle(page, timeout)


def close_page_not_found(page) -> None:
    """Streamlit's dialog for a page the navigation does not offer (it then runs the main page)."""
    from playwright.sync_api import expect

    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Page not found")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def navigate_in_session(page, path: str) -> None:
    """Ask for `path` within the session, as the browser's back/forward would (history navigation).

    Streamlit answers with a run of the page it decides on and names that page in the address bar;
    a page the navigation does not offer never stays there. Wait for that, then for the run's end.
    """
    from urllib.parse import urlparse

    wanted = urlparse(path).path
    page.evaluate("p => { history.pushState({}, '', p); dispatchEvent(new PopStateEvent('popstate')); }", path)
    page.wait_for_url(lambda url: urlparse(url).path != wanted)
    wait_idle(page)
    dialog = page.get_by_role("dialog")
    if dialog.count():  # Streamlit may also say so in a dialog
        close_page_not_found(page)


def open_page(page, title: str, timeout: float = 30_000) -> None:
    """Click the page `title` in the sidebar and wait until its run has drawn everything.

    Its title heading appears only once that run has started, so idle after it is that run's end
    (idle alone right after the click is the previous state). Acting on a page whose run is still
    drawing can lose the action: a form submitted while its run re-drew it was never received.
    """
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=timeout)
    wait_idle(page, timeout)
