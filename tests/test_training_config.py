"""The training config: every preset validates; bad values name their field."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.training.config import PRESETS, TrainConfig, from_preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates(name):
    config = from_preset(name, base_model="some/model", dataset_version="abc123")
    for key, value in PRESETS[name].values.items():
        assert getattr(config, key) == value
    assert PRESETS[name].guidance


@pytest.mark.parametrize("field, value, needle", [
    ("learning_rate", 0.5, "learning_rate"), ("lora_rank", 0, "lora_rank"), ("method", "dora", "method"),
    ("target_modules", "everything", "target_modules"), ("warmup_ratio", 0.9, "warmup_ratio"),
    ("lr_scheduler", "step", "lr_scheduler"), ("batch_size", 0, "batch_size"), ("epochs", 0, "epochs"),
])
def test_bad_values_name_the_field(field, value, needle):
    with pytest.raises(InvalidInput, match=needle):
        TrainConfig(base_model="m", dataset_version="v", **{field: value})


def test_all_problems_reported_together_and_full_lr_guard():
    with pytest.raises(InvalidInput) as info:
        TrainConfig(base_model="", dataset_version="", lora_rank=0, method="full", learning_rate=5e-3)
    text = str(info.value)
    for needle in ("base_model", "dataset_version", "lora_rank", "too high for full"):
        assert needle in text


def test_advice_for_values_outside_the_guide():
    assert TrainConfig(base_model="m", dataset_version="v").advice() == []
    notes = TrainConfig(base_model="m", dataset_version="v", learning_rate=1e-3, lora_rank=128,
                        warmup_ratio=0.0).advice()
    assert len(notes) == 3


def test_toml_round_trip(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[train]\nbase_model = "m"\ndataset_version = "v"\nlearning_rate = 1e-4\nlora_rank = 8\n')
    config = TrainConfig.from_toml(path)
    assert (config.learning_rate, config.lora_rank) == (1e-4, 8)
    path.write_text('[train]\nbase_model = "m"\ndataset_version = "v"\nlerning_rate = 1e-4\n')
    with pytest.raises(InvalidInput, match="lerning_rate"):
        TrainConfig.from_toml(path)


@pytest.mark.parametrize("field, value", [
    ("learning_rate", "2e-4"), ("packing", "false"), ("modules_to_save", "lm_head"), ("batch_size", 2.5),
    ("epochs", True), ("eval_every", float("nan")), ("method", 3),
])
def test_wrong_types_are_refused_naming_the_field(field, value):
    with pytest.raises(InvalidInput, match=field):
        TrainConfig(base_model="m", dataset_version="v", **{field: value})


def test_whole_floats_become_ints():
    config = TrainConfig(base_model="m", dataset_version="v", batch_size=4.0, learning_rate=1e-4)
    assert isinstance(config.batch_size, int) and config.batch_size == 4


def test_merge_needs_a_prompt(owner, accounts):
    from core.training import start_merge

    with pytest.raises(InvalidInput, match="at least 1"):
        start_merge(owner.store, owner.jobs, accounts["engineer"], "any-run", owner.settings.exports_dir, prompts=0)
