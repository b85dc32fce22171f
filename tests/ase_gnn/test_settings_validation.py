"""Settings are checked when they are read (issue 15, item 16): a bad value is a ValueError
naming the setting, before any data is read or any model trained."""

from __future__ import annotations

import math

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from ase_gnn import NequIP, SchNet
from ase_gnn.simulate.md import NVETrajectory, run_nve
from ase_gnn.training import config_from_dict


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("run", "time_budget", -5.0, r"\[run\] time_budget must be at least 0"),
        ("run", "time_budget", math.nan, r"\[run\] time_budget must be a finite number"),
        ("run", "eval_batch_size", 0, r"\[run\] eval_batch_size must be at least 1"),
        ("run", "checkpoint_every", 0, r"checkpoint_every must be at least 1"),
        ("run", "early_stopping_patience", 0, r"early_stopping_patience must be at least 1"),
        ("optimizer", "ema_decay", 1.5, r"\[optimizer\] ema_decay must be below 1"),
        ("optimizer", "ema_decay", -0.1, r"ema_decay must be at least 0"),
        ("optimizer", "learning_rate", -1e-3, r"learning_rate must be at least 0"),
        ("optimizer", "learning_rate", math.inf, r"learning_rate must be a finite number"),
        ("optimizer", "gradient_clip", -1.0, r"gradient_clip must be greater than 0"),
        ("loss", "forces_weight", -1.0, r"\[loss\] forces_weight must be at least 0"),
        ("loss", "energy_weight", math.nan, r"\[loss\] energy_weight must be a finite number"),
        ("loss", "switch_stress_weight", -2.0, r"switch_stress_weight must be at least 0"),
        ("loss", "huber_delta", 0.0, r"huber_delta must be greater than 0"),
        ("schedule", "factor", 1.0, r"\[schedule\] factor must be below 1"),
        ("schedule", "factor", 0.0, r"factor must be greater than 0"),
        ("model", "cutoff", -3.0, r"\[model\] cutoff must be greater than 0"),
        ("model", "cutoff", math.inf, r"\[model\] cutoff must be a finite number"),
        ("data", "valid_fraction", 1.0, r"valid_fraction must be below 1"),
        ("run", "device", "cudax", r"unknown device 'cudax'"),
    ],
)
def test_bad_setting_is_refused_naming_it(section, key, value, message) -> None:
    values: dict = {"data": {"train": "x.extxyz"}}
    values.setdefault(section, {})[key] = value
    with pytest.raises(ValueError, match=message):
        config_from_dict(values)


def test_unset_optional_settings_and_defaults_pass() -> None:
    config = config_from_dict(
        {"data": {"train": "x"}, "run": {"time_budget": None}, "optimizer": {"ema_decay": None}}
    )
    assert config.run.time_budget is None and config.optimizer.ema_decay is None


def test_fractions_leaving_nothing_to_train_on_are_refused() -> None:
    with pytest.raises(ValueError, match="nothing to train"):
        config_from_dict({"data": {"train": "x", "valid_fraction": 0.6, "test_fraction": 0.4}})


@pytest.mark.parametrize("energy", [math.nan, math.inf, "low"])
def test_non_finite_or_non_numeric_reference_energy_is_refused(energy) -> None:
    with pytest.raises((ValueError, TypeError), match=r"atomic_energies\] Cu"):
        config_from_dict({"data": {"train": "x"}, "model": {"atomic_energies": {"Cu": energy}}})


def test_bad_head_settings_are_refused() -> None:
    head = {"name": "charge", "level": "node", "weight": -1.0}
    with pytest.raises(ValueError, match=r"charge: weight must be at least 0"):
        config_from_dict({"data": {"train": "x"}, "heads": [head]})
    head = {"name": "charge", "level": "node", "hidden": 0}
    with pytest.raises(ValueError, match=r"charge: hidden must be at least 1"):
        config_from_dict({"data": {"train": "x"}, "heads": [head]})


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CUDA is present")
def test_cuda_requested_without_cuda_is_refused_when_read() -> None:
    with pytest.raises(ValueError, match="no usable CUDA"):
        config_from_dict({"data": {"train": "x"}, "run": {"device": "cuda"}})


@pytest.mark.parametrize(
    ("architecture", "arguments", "name"),
    [
        (SchNet, {"hidden_channels": 0}, "hidden_channels"),
        (SchNet, {"num_interactions": 0}, "num_interactions"),
        (SchNet, {"num_radial": -1}, "num_radial"),
        (SchNet, {"hidden_channels": 8.5}, "hidden_channels"),
        (NequIP, {"num_radial": 0}, "num_radial"),
        (NequIP, {"radial_hidden": 0}, "radial_hidden"),
    ],
)
def test_model_sizes_below_one_are_refused(architecture, arguments, name) -> None:
    with pytest.raises(ValueError, match=f"{name} must be an integer of at least 1"):
        architecture(["Cu"], **arguments)


@pytest.mark.parametrize("cutoff", [0.0, -1.0, math.inf, math.nan])
def test_model_cutoff_must_be_positive_and_finite(cutoff) -> None:
    with pytest.raises(ValueError, match="cutoff must be a positive finite number"):
        SchNet(["Cu"], cutoff=cutoff)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"steps": 0}, "steps must be an integer of at least 1"),
        ({"steps": -3}, "steps must be an integer of at least 1"),
        ({"interval": 0}, "interval must be an integer of at least 1"),
        ({"timestep_fs": 0.0}, "timestep_fs must be a positive number"),
        ({"timestep_fs": -1.0}, "timestep_fs must be a positive number"),
        ({"temperature_K": -10.0}, "temperature_K must be a non-negative number"),
        ({"temperature_K": math.nan}, "temperature_K must be a non-negative number"),
    ],
)
def test_bad_md_settings_are_refused(arguments, message) -> None:
    with pytest.raises(ValueError, match=message):
        run_nve(bulk("Cu"), EMT(), **arguments)


def test_drift_from_fewer_than_two_frames_is_refused() -> None:
    trajectory = run_nve(bulk("Cu", cubic=True), EMT(), steps=3, interval=10)
    assert len(trajectory.frames) == 1
    with pytest.raises(ValueError, match="two or more frames"):
        trajectory.drift_per_atom()
    with pytest.raises(ValueError, match="two or more frames"):
        NVETrajectory().drift_per_atom()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CUDA is present")
def test_calculator_on_cuda_without_cuda_is_refused_clearly() -> None:
    from ase_gnn import GNNCalculator

    with pytest.raises(ValueError, match="no usable CUDA"):
        GNNCalculator(SchNet(["Cu"], hidden_channels=8, num_interactions=1), device="cuda")
