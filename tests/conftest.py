"""Shared fixtures: a fresh workspace per test, the tiny seeded model, accounts per role.

The suite runs on parallel workers (pytest-xdist, `make test`): a session fixture runs once per
worker, so the expensive ones build on disk once per run behind a file lock (`built_once`).
The end of the run prints each tier's total time (`pytest_terminal_summary`).
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.auth import CLI_USER, Role, User  # noqa: E402
from core.config import load_settings  # noqa: E402
from core.owner import Owner  # noqa: E402
from core.users import create_user  # noqa: E402

# The suite runs two test modules at once, each starting workers of its own: a torch worker that
# took every core would fight the other module's for them (STACK.md: 2 threads on a loaded
# 2-core machine ran up to 33x slower). Every workspace of the tests gives its jobs one thread.
ONE_THREAD = {"TUNEBOARD_SERVING_THREADS": "1", "TUNEBOARD_TRAINING_DEMO_THREADS": "1"}
ADMIN_PASSWORD = "admin-test-password"
PASSWORD = "correct-horse-battery"


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """The folder `name`, written by `build(folder)` once per test run, whatever the number of workers.

    Under xdist each worker has its own base temp folder below one shared by the run; the build
    goes there, behind a lock, and a marker file says it finished (a half-built folder from a
    crashed worker is built again).
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / "built-once" / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    done = folder.parent / f"{name}.done"
    with FileLock(str(folder.parent / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """The tiny seeded Llama of core.demo.tiny (random weights, real tokenizer and template)."""
    from core.demo.tiny import build_tiny_model

    return str(built_once(tmp_path_factory, "tiny-llama", lambda folder: build_tiny_model(folder, seed=0)))


@pytest.fixture
def env(tmp_path, tiny_model) -> dict[str, str]:
    """Environment of a fresh workspace whose base model is the tiny model."""
    return {"TUNEBOARD_WORKSPACE": str(tmp_path / "ws"), "TUNEBOARD_MODEL_BASE": tiny_model,
            "TUNEBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD, **ONE_THREAD}


@pytest.fixture
def settings(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray tuneboard.toml
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings(env=env)


@pytest.fixture
def owner(settings, env):
    o = Owner.open(settings, monitor=False, env=env)
    yield o
    o.close()


@pytest.fixture
def accounts(owner) -> dict[str, User]:
    """One account per role (password PASSWORD), plus the admin engineer."""
    users = {"admin": User("admin", Role.ENGINEER)}
    for name, role in (("rita", "rater"), ("leo", "lead"), ("eve", "engineer")):
        users[role] = create_user(owner.store, CLI_USER, name, PASSWORD, role)
    return users


def known_versions(store, *variant_ids: str) -> None:
    """Adapters registered by id alone (no files): enough for what promotion and its followers read."""
    with store.transaction() as cur:
        for variant_id in variant_ids:
            cur.execute("INSERT OR IGNORE INTO model_variants (variant_id, kind, name, path, base_model) "
                        "VALUES (?, 'adapter', ?, '', 'm')", [variant_id, variant_id.split(":", 1)[-1]])


@pytest.fixture
def demo_files(tmp_path):
    from core.demo.tickets import write_demo_files

    return write_demo_files(tmp_path / "demo", n=200, seed=7)


# ---- the order of the run ---------------------------------------------------------------------
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with slow, vLLM or browser tests first, then the quick ones, each in file order.

    `make test` hands whole modules to the workers in this order (--dist loadscope
    --no-loadscope-reorder): the long ones start early and the many short ones fill the end,
    so neither worker is left with a long module while the other sits idle.
    """
    heavy = {item.module.__name__ for item in items if item.module is not None
             and any(item.get_closest_marker(m) for m in TIERS)}
    items.sort(key=lambda item: 0 if item.module is not None and item.module.__name__ in heavy else 1)


# ---- where the time goes ----------------------------------------------------------------------
TIERS = ("browser", "vllm", "slow", "simulation")  # a test's tier is its first marker in this order, else "default"
_tier_time: dict[str, float] = defaultdict(float)
_tier_tests: dict[str, set[str]] = defaultdict(set)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sum setup + call + teardown per tier (on the controller, reports come from every worker)."""
    tier = next((t for t in TIERS if t in report.keywords), "default")
    _tier_time[tier] += report.duration
    _tier_tests[tier].add(report.nodeid)


def pytest_terminal_summary(terminalreporter) -> None:
    if not _tier_time:
        return
    terminalreporter.section("time per tier (setup + call + teardown, summed over workers)")
    for tier in (*TIERS, "default"):
        if tier in _tier_time:
            terminalreporter.write_line(f"{tier:>8}: {_tier_time[tier]:8.1f} s in {len(_tier_tests[tier]):4d} tests")
    terminalreporter.write_line(f"{'all':>8}: {sum(_tier_time.values()):8.1f} s")
