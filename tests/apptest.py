"""Helpers for the AppTest tier: run dashboard/app.py headless as a given user.

The dashboard reads its settings from the environment (and the current directory), so the
caller sets them for the whole test: use the `settings` fixture (it chdirs to tmp_path and
sets the `env` variables with monkeypatch) or pass `monkeypatch` here.

Pages are callables registered by st.navigation with a custom url_path, so
`AppTest.switch_page(<file>)` cannot reach them; `goto()` selects a registered page by its
title instead (AppTest 1.67 internals: `_registered_pages`, `_page_hash`; it raises if the
page is not registered), and callers assert the rendered title afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import dashboard
from dashboard.context import SESSION_USER

APP_PATH = str(Path(dashboard.__file__).resolve().with_name("app.py"))
TIMEOUT = 60


def make_app(env: dict[str, str], username: str | None = None, *,
             monkeypatch: pytest.MonkeyPatch | None = None, run: bool = True) -> AppTest:
    """The dashboard as `username` (None: signed out), run once unless run=False.

    With `monkeypatch`, the environment is set through it (restored after the test);
    without, the variables must already be set (the `settings` fixture does that).
    """
    for key, value in env.items():
        if monkeypatch is not None:
            monkeypatch.setenv(key, value)
        elif os.environ.get(key) != value:
            raise RuntimeError(f"{key} is not set to the test workspace; use the settings fixture or "
                               "pass monkeypatch=")
    at = AppTest.from_file(APP_PATH, default_timeout=TIMEOUT)
    if username is not None:
        at.session_state[SESSION_USER] = username
    return at.run() if run else at


def registered_pages(at: AppTest) -> list[str]:
    """Titles of the pages st.navigation registered on the last run, in order."""
    return [info.get("page_name", "") for info in at._registered_pages.values()]


def goto(at: AppTest, title: str) -> AppTest:
    """Switch to the registered st.navigation page with this title and rerun.

    Raises KeyError when the last run did not register such a page (the role may not see it).
    The caller asserts the rendered title afterwards.
    """
    for page_hash, info in at._registered_pages.items():
        if info.get("page_name") == title:
            at._page_hash = page_hash
            return at.run()
    raise KeyError(f"page {title!r} not registered; registered: {registered_pages(at)}")


def force_page(at: AppTest, url_path: str) -> AppTest:
    """Request the page at `url_path` whether or not navigation offers it (a typed URL)."""
    from streamlit.util import calc_hash

    at._page_hash = calc_hash(url_path)
    return at.run()


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def button(at: AppTest, label: str):
    """The one button (or form submit button) labelled `label`."""
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, f"expected one button {label!r}, found {[b.label for b in at.button]}"
    return found[0]


def assert_clean(at: AppTest) -> None:
    """No exception element on the page (an uncaught exception or st.exception)."""
    assert not at.exception, [e.value for e in at.exception]


TABLES = ("users", "audit_log", "datasets", "dataset_versions", "examples", "jobs", "job_events", "pair_sets", "pairs",
          "assignments", "votes", "skips", "rater_exclusions", "review_results")


def table_counts(store) -> dict[str, int]:
    """Rows per table: equal before and after means nothing was written."""
    return {t: store.scalar(f"SELECT count(*) FROM {t}") for t in TABLES}


def wait_for_job(owner, job_id: str, timeout: float = 300.0) -> dict:
    """Wait for a job the dashboard started: its own owner ingests the events; the test only reads
    (a second ingester on the same database would race it)."""
    import time

    deadline = time.monotonic() + timeout
    while owner.jobs.get(job_id)["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{job_id} still running after {timeout:.0f} s")
        time.sleep(0.3)
    return owner.jobs.get(job_id)


def use_fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for accounts created from now on.

    Hashing is not what these tests check, and the default parameters cost ~0.3 s per account
    on a small CPU. Verification reads the parameters from each hash, so logins work as usual.
    """
    from argon2 import PasswordHasher

    import core.users

    monkeypatch.setattr(core.users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


class DashboardOwners:
    """Records the Owners the dashboard opens in this process so a test can close them.

    The dashboard caches its Owner with st.cache_resource (keyed by the database path) and
    starts a job-monitor thread; without this every test would leave one behind.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        from core.owner import Owner

        self.opened: list = []
        original = Owner.open.__func__

        def recording_open(cls, *args, **kwargs):
            owner = original(cls, *args, **kwargs)
            self.opened.append(owner)
            return owner

        monkeypatch.setattr(Owner, "open", classmethod(recording_open))

    def close(self) -> None:
        from dashboard import context

        context._owner.clear()
        for owner in self.opened:
            owner.close()
        self.opened.clear()
