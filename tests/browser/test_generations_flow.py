"""The [serving] "done when", in a real browser: an engineer generates a dataset's test split
for the base and a fine-tuned adapter through vLLM, sees both outputs side by side with the
sanity flags and the parity result, and the rows are in DuckDB with their decoding.

The adapter is a seeded PEFT adapter of the tiny model registered as a finished run would
register it (training itself is covered by test_training_flow.py)."""

from __future__ import annotations

import json
import re

import pytest

from benchmarks.rater_load import stop_server
from tests.browser.conftest import log_in, open_page, wait_idle
from tests.conftest import ADMIN_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.vllm, pytest.mark.slow]


def seed_workspace(owner, root) -> None:
    from core.auth import CLI_USER
    from core.datasets import ImportOptions, import_dataset
    from core.demo.tickets import write_demo_files
    from core.demo.tiny import build_random_adapter

    good, _ = write_demo_files(root / "seed", n=200)
    import_dataset(owner.store, CLI_USER, good.read_bytes(), good.name, ImportOptions(name="tickets"))
    base = owner.settings.base_model
    adapter = build_random_adapter(base, root / "adapter", seed=1)
    owner.store.execute("INSERT INTO model_variants (variant_id, kind, name, path, base_model) "
                        "VALUES ('adapter:tuned', 'adapter', 'tuned', ?, ?)", [str(adapter), base])


def test_generate_test_split_through_vllm_side_by_side(server, page):
    from playwright.sync_api import expect

    log_in(page, server.url, "admin", ADMIN_PASSWORD)
    open_page(page, "Generations")
    page.get_by_role("spinbutton", name="Only the first").fill("6")
    page.get_by_role("combobox", name=re.compile("Serving path")).click()
    page.get_by_role("option", name=re.compile(r"^vllm-lora")).click()
    page.get_by_label("Name").fill("test split through vLLM")
    page.get_by_role("button", name="Generate").click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"Started generate-.*6 prompts x 2 variants"))).to_be_visible()

    # The engine starts (about a minute here), generates, then the parity pass runs PEFT in-process.
    expect(page.get_by_text(re.compile(r"succeeded · 12/12 outputs"))).to_be_visible(timeout=360_000)
    expect(page.get_by_text(re.compile(r"Serving path vllm-lora"))).to_be_visible()
    expect(page.get_by_text("Sanity checks")).to_be_visible()
    expect(page.get_by_text(re.compile(r"tuned: \d+/\d+ greedy outputs identical between vllm-lora and "
                                       r"transformers\+peft"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"base \(tiny-llama\): \d+/\d+ greedy outputs identical"))).to_be_visible()
    side = page.get_by_text("Outputs side by side")
    expect(side).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+ tokens · (stop|length) · vllm-lora"))).to_have_count(2)
    expect(page.get_by_text("Reference answer")).to_be_visible()

    stop_server(server.process)  # the server owns the database; stop it to read the rows
    from core.auth import CLI_USER
    from core.config import load_settings
    from core.owner import Owner
    from core.serving import list_sets, outputs

    env = {"TUNEBOARD_WORKSPACE": str(server.workspace), "TUNEBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD}
    owner = Owner.open(load_settings(env=env), monitor=False, env=env)
    try:
        (record,) = list_sets(owner.store, CLI_USER)
        rows = outputs(owner.store, CLI_USER, record["set_id"])
        assert len(rows) == 12 and {r["variant_id"] for r in rows} == {"base", "adapter:tuned"}
        assert all(r["decoding"] == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 128, "seed": 0} for r in rows)
        assert all(r["backend"] == "vllm-lora" for r in rows)
        parity = owner.store.rows("SELECT variant_id, n, exact FROM parity_checks WHERE set_id = ?",
                                  [record["set_id"]])
        assert {p["variant_id"] for p in parity} == {"base", "adapter:tuned"}
        assert all(p["exact"] == p["n"] > 0 for p in parity), json.dumps(parity)
    finally:
        owner.close()
