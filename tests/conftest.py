"""Shared fixtures: a fresh workspace per test, the tiny seeded model, accounts per role."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.auth import CLI_USER, Role, User  # noqa: E402
from core.config import load_settings  # noqa: E402
from core.owner import Owner  # noqa: E402
from core.users import create_user  # noqa: E402

ADMIN_PASSWORD = "admin-test-password"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """The tiny seeded Llama of core.demo.tiny (random weights, real tokenizer and template)."""
    from core.demo.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", seed=0))


@pytest.fixture
def env(tmp_path, tiny_model) -> dict[str, str]:
    """Environment of a fresh workspace whose base model is the tiny model."""
    return {"TUNEBOARD_WORKSPACE": str(tmp_path / "ws"), "TUNEBOARD_MODEL_BASE": tiny_model,
            "TUNEBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD}


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


@pytest.fixture
def demo_files(tmp_path):
    from core.demo.tickets import write_demo_files

    return write_demo_files(tmp_path / "demo", n=200, seed=7)
