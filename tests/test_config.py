"""Settings: file, environment overrides, every problem named, documented defaults parse back."""

from __future__ import annotations

import tomllib

import pytest

from core.config import SECTIONS, Settings, documented_defaults, load_settings
from core.errors import ConfigError


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s.source == "defaults" and s.data.split == [0.8, 0.1, 0.1]
    assert s.database_path == (tmp_path / "workspace" / "tuneboard.duckdb").resolve()


def test_file_then_environment(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text('[data]\nseed = 5\nmax_seq_len = 256\n[server]\nport = 9000\n')
    s = load_settings(cfg, env={"TUNEBOARD_DATA_SEED": "11", "TUNEBOARD_WORKSPACE": str(tmp_path / "w")})
    assert (s.data.seed, s.data.max_seq_len, s.server.port) == (11, 256, 9000)
    assert s.workspace_dir == (tmp_path / "w").resolve()


def test_every_problem_is_named_at_once(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text('[data]\nseed = -1\nsplit = [0.5, 0.5, 0.5]\ncolour = "red"\n[nonsense]\nx = 1\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={"TUNEBOARD_SERVER_PORT": "eighty"})
    text = str(info.value)
    for needle in ("data.seed", "data.split", "data.colour", "[nonsense]", "TUNEBOARD_SERVER_PORT"):
        assert needle in text


def test_bad_toml_and_missing_explicit_file(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text("[data\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, env={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml", env={})


def test_documented_defaults_round_trip(tmp_path):
    """The shipped documentation of settings is a valid config equal to the defaults."""
    text = documented_defaults()
    parsed = tomllib.loads(text)
    assert set(parsed) == set(SECTIONS)
    cfg = tmp_path / "t.toml"
    cfg.write_text(text)
    loaded = load_settings(cfg, env={})
    for name in SECTIONS:
        assert getattr(loaded, name) == getattr(Settings(), name)
    assert text.count("# ") >= sum(len(cls.__dataclass_fields__) for cls in SECTIONS.values())


def test_shipped_example_config_is_valid():
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "tuneboard.example.toml"
    assert example.exists()
    assert example.read_text() == documented_defaults() + "\n"
    load_settings(example, env={})
