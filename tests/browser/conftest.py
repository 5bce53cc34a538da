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
from tests.conftest import ADMIN_PASSWORD, PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
TUNEBOARD = Path(sys.executable).with_name("tuneboard")
START_TIMEOUT = 60.0
ACCOUNTS = {"rita": "rater", "leo": "lead"}  # password PASSWORD; admin has ADMIN_PASSWORD


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
                "TOKENIZERS_PARALLELISM": "false"})
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
    """Wait until the app is connected and its script is not running (Streamlit's own e2e helper)."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout,
                           state="attached")
    page.wait_for_selector(IDLE, timeout=timeout, state="attached")
    page.wait_for_timeout(100)


def log_in(page, url: str, username: str, password: str) -> None:
    page.goto(url)
    wait_idle(page)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    wait_idle(page)
