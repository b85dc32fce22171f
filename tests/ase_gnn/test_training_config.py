"""TOML configuration: one-to-one dataclasses, overrides, clear errors for unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from ase_gnn.training import TrainConfig, config_from_dict, load_config
from ase_gnn.training.config import apply_overrides

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads_into_dataclasses() -> None:
    config = load_config(ROOT / "examples" / "cu_emt.toml")
    assert isinstance(config, TrainConfig)
    assert config.model.architecture == "SchNet"
    assert config.model.hyperparameters["hidden_channels"] == 64
    assert Path(config.data.train) == ROOT / "examples" / "cu_emt.extxyz"
    assert config.run.time_budget == 300.0


def test_every_config_field_is_documented() -> None:
    from ase_gnn.training import config as module

    source = Path(module.__file__).read_text()
    for section in TrainConfig().to_dict().values():
        for key in section:
            assert f"    {key}:" in source
            block = source.split(f"    {key}:", 1)[1].split("\n", 2)
            assert block[1].strip().startswith('"""'), f"{key} lacks a docstring"


def test_unknown_key_names_it_and_suggests_the_closest() -> None:
    with pytest.raises(
        ValueError, match=r"'forces_wieght' in \[loss\]; did you mean 'forces_weight'"
    ):
        config_from_dict({"data": {"train": "x"}, "loss": {"forces_wieght": 1.0}})
    with pytest.raises(ValueError, match=r"unknown key 'optimiser'.*'optimizer'"):
        config_from_dict({"data": {"train": "x"}, "optimiser": {}})


def test_unknown_architecture_hyperparameter_is_rejected() -> None:
    with pytest.raises(ValueError, match="'hidden_chanels'.*did you mean 'hidden_channels'"):
        config_from_dict(
            {"data": {"train": "x"}, "model": {"hyperparameters": {"hidden_chanels": 8}}}
        )


def test_bad_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="must be one of"):
        config_from_dict({"data": {"train": "x"}, "optimizer": {"name": "lbfgs"}})
    with pytest.raises(TypeError, match=r"\[run\].epochs must be int"):
        config_from_dict({"data": {"train": "x"}, "run": {"epochs": "many"}})
    with pytest.raises(ValueError, match="train must name a data file"):
        config_from_dict({})


def test_overrides_parse_toml_values_and_bare_strings() -> None:
    values = apply_overrides(
        {"run": {"epochs": 3}},
        [
            "run.epochs=7",
            "optimizer.name=adamw",
            "run.time_budget=1.5",
            "model.hyperparameters={hidden_channels=8}",
            "data.train=some/file.extxyz",
        ],
    )
    config = config_from_dict(values)
    assert config.run.epochs == 7 and config.optimizer.name == "adamw"
    assert config.run.time_budget == 1.5
    assert config.model.hyperparameters == {"hidden_channels": 8}
    assert config.data.train == "some/file.extxyz"


def test_integers_are_accepted_for_floats_and_lists_for_tuples() -> None:
    config = config_from_dict({"data": {"train": "x"}, "model": {"cutoff": 4, "species": ["Cu"]}})
    assert config.model.cutoff == 4.0 and isinstance(config.model.cutoff, float)
    assert config.model.species == ("Cu",)
