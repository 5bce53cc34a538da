"""Oversized uploads through the real server: refused with a clear message, nothing imported.

The server runs with `data.max_upload_mb = 1`. A 3 MiB file is refused by the page's uploader
(Streamlit's limit, which `tuneboard serve` sets from the same setting), nothing is imported,
and the page keeps serving: a good file imports right after. Bytes that reach core some other
way (the CLI) meet the same limit in core.datasets (`max_bytes`, tests/test_datasets.py).
"""

from __future__ import annotations

import json

import pytest

from tests.browser.conftest import log_in, open_page, wait_idle
from tests.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

SERVER_ENV = {"TUNEBOARD_DATA_MAX_UPLOAD_MB": "1"}


def _big_file(path, mib: int = 3):
    row = {"messages": [{"role": "user", "content": "x" * 900}, {"role": "assistant", "content": "ok"}]}
    line = (json.dumps(row) + "\n").encode()
    with open(path, "wb") as fh:
        for _ in range(mib * 2**20 // len(line) + 1):
            fh.write(line)
    return path


def test_oversized_upload_is_refused_and_nothing_is_imported(server, page, demo_files, tmp_path):
    from playwright.sync_api import expect

    big = _big_file(tmp_path / "huge.jsonl")
    log_in(page, server.url, "admin", ADMIN_PASSWORD)
    open_page(page, "Data")
    page.get_by_role("tab", name="Import").click()
    wait_idle(page)
    page.locator("input[type=file]").set_input_files(str(big))
    expect(page.get_by_text("File must be 1.0MB or smaller.")).to_be_visible()
    expect(page.get_by_role("button", name="Import", exact=True)).to_be_disabled()
    expect(page.get_by_test_id("stException")).to_have_count(0)

    # The page still serves: a good file imports; the versions list has it and nothing of the big one.
    good, _ = demo_files
    page.locator("input[type=file]").set_input_files(str(good))
    expect(page.get_by_role("button", name=f"Remove {good.name}", exact=True)).to_be_visible()
    wait_idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    wait_idle(page)
    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text="Imported")).to_be_visible()
    page.get_by_role("tab", name="Versions").click()
    wait_idle(page)
    versions = page.get_by_role("tabpanel", name="Versions")
    expect(versions.get_by_text(good.name).first).to_be_attached()
    expect(versions.get_by_text("huge.jsonl")).to_have_count(0)
