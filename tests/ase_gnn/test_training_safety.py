"""Training that stays correct on awkward data and settings: mixed crystals and molecules,
stage two, the caller's random stream, honest progress and non-finite labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from safetensors.torch import load_file
from tqdm import tqdm

from ase_gnn.data.generate import generate_emt, write_dataset
from ase_gnn.testing import small_training_config, tiny_model
from ase_gnn.training import (
    GraphDataset,
    History,
    Trainer,
    config_from_dict,
    evaluate_metrics,
    train_from_config,
    train_model,
)
from ase_gnn.training import progress as progress_module
from ase_gnn.training import trainer as trainer_module
from ase_gnn.training.config import HeadConfig
from ase_gnn.training.setup import build_model


@pytest.fixture(scope="module")
def crystals() -> list[Atoms]:
    return generate_emt("Cu", 10, seed=5, progress=False)


def _emt_labelled(atoms: Atoms, stress: bool) -> Atoms:
    reference = atoms.copy()
    reference.calc = EMT()
    results = {
        "energy": reference.get_potential_energy(),
        "forces": reference.get_forces(),
    }
    if stress:  # EMT returns a stress for any rank-3 cell, even a non-periodic one
        results["stress"] = reference.get_stress()
    labelled = atoms.copy()
    labelled.calc = SinglePointCalculator(labelled, **results)
    return labelled


def _molecules() -> list[Atoms]:
    """Gas-phase Cu clusters: no cell at all, and one in a non-periodic box whose file (as some
    codes write) carries a stress label although the structure has no stress."""
    rng = np.random.default_rng(2)
    out = []
    for k in range(4):
        positions = 2.5 * np.array([[0, 0, 0], [1, 0, 0], [0.5, 0.9, 0], [0.5, 0.3, 0.8]])
        atoms = Atoms("Cu4", positions=positions + rng.normal(0.0, 0.05, (4, 3)))
        if k == 3:
            atoms.cell = [12.0, 12.0, 12.0]
            atoms.center()
        out.append(_emt_labelled(atoms, stress=k == 3))
    return out


# -- item 3: stress on data mixing crystals and molecules -----------------------------------------
def test_stress_training_on_crystals_and_molecules_gives_finite_losses(tmp_path, crystals) -> None:
    mixed = crystals[:6] + _molecules()
    config = small_training_config(
        tmp_path, loss={"stress_weight": 10.0}, run={"epochs": 2, "batch_size": 10}
    )
    model = tiny_model("SchNet", ["Cu"])
    history = Trainer(model, config).fit(mixed, crystals[6:] + _molecules()[:2])
    assert all(math.isfinite(loss) for loss in history.train_loss)
    assert all(math.isfinite(row["train_stress_rmse"]) for row in history.rows)
    assert all(math.isfinite(row["valid_stress_rmse"]) for row in history.rows)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_stress_metrics_do_not_depend_on_the_evaluation_batch_size(crystals) -> None:
    model = tiny_model("SchNet", ["Cu"]).double()
    structures = crystals[:5] + _molecules() + crystals[5:]
    dataset = GraphDataset(structures, model.cutoff, torch.float64)
    one = evaluate_metrics(model, dataset, batch_size=1)
    sixteen = evaluate_metrics(model, dataset, batch_size=16)
    assert "stress_mae" in one and math.isfinite(one["stress_mae"])
    assert one.keys() == sixteen.keys()
    for key in one:
        assert sixteen[key] == pytest.approx(one[key], rel=1e-12, abs=1e-15), key
    # Only the crystals count: the molecule's stress label is not compared with anything.
    crystal_only = evaluate_metrics(model, GraphDataset(crystals, model.cutoff, torch.float64), 16)
    assert one["stress_mae"] == pytest.approx(crystal_only["stress_mae"], rel=1e-12)


# -- item 4: stage two keeps its own progress -----------------------------------------------------
def test_final_model_comes_from_stage_two_when_stage_two_improves(tmp_path, crystals) -> None:
    # Stage two weighs the loss 10⁶ times more, so its validation losses are never below stage
    # one's unless the best loss is reset at the switch.
    loss = {
        "energy_weight": 1e-3,
        "forces_weight": 1e-3,
        "switch_epoch": 2,
        "switch_energy_weight": 1e3,
        "switch_forces_weight": 1e3,
        "switch_learning_rate": 1e-2,
    }
    config = small_training_config(
        tmp_path,
        loss=loss,
        optimizer={"learning_rate": 1e-2, "ema_decay": None},
        schedule={"name": "constant"},
        run={"epochs": 5, "dtype": "float64"},
    )
    model = tiny_model("SchNet", ["Cu"])
    train, valid = crystals[:6], crystals[6:]
    history = Trainer(model, config).fit(train, valid)

    def stage_two_loss(metrics: dict[str, float]) -> float:
        return 1e3 * metrics["energy_rmse"] ** 2 + 1e3 * metrics["forces_rmse"] ** 2

    losses = [stage_two_loss(metrics) for metrics in history.valid]
    assert min(losses[2:]) < min(losses[:2])  # stage two does improve the validation error
    assert history.best_epoch == 2 + int(np.argmin(losses[2:]))
    final = evaluate_metrics(model, GraphDataset(valid, model.cutoff, model.dtype))
    assert final == history.valid[history.best_epoch]


# -- item 6: no global random state ---------------------------------------------------------------
def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _seeded_tiny_model() -> torch.nn.Module:
    """The same initial weights every call."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        return tiny_model("SchNet", ["Cu"])


def test_fit_leaves_the_callers_random_stream_alone(crystals) -> None:
    model = tiny_model("SchNet", ["Cu"])
    heads = (HeadConfig("charge", "node", hidden=4),)
    state = torch.random.get_rng_state()
    train_model(model, crystals[:4], crystals[4:6], epochs=2, seed=7, progress=False, heads=heads)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_two_fits_with_the_same_seed_give_identical_models(crystals) -> None:
    heads = (HeadConfig("charge", "node", hidden=4),)
    models = []
    for draws in (0, 5):  # the caller's random stream differs between the two fits
        torch.rand(draws)
        model = _seeded_tiny_model()
        train_model(
            model, crystals[:4], crystals[4:6], epochs=2, seed=3, progress=False, heads=heads
        )
        models.append(_weights(model))
    assert models[0].keys() == models[1].keys()
    for name in models[0]:
        assert torch.equal(models[0][name], models[1][name]), name


def test_build_model_is_seeded_without_touching_the_global_stream(crystals) -> None:
    def config(seed: int) -> object:
        return config_from_dict(
            {
                "data": {"train": "unused"},
                "model": {"hyperparameters": {"hidden_channels": 8, "num_interactions": 1}},
                "run": {"seed": seed},
            }
        )

    state = torch.random.get_rng_state()
    first, again, other = (build_model(config(s), crystals) for s in (4, 4, 5))
    assert torch.equal(torch.random.get_rng_state(), state)
    one, two, three = _weights(first), _weights(again), _weights(other)
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert not all(torch.equal(one[k], three[k]) for k in one)


def test_resume_leaves_the_global_stream_alone(tmp_path, crystals) -> None:
    def run(epochs: int, resume: bool) -> History:
        config = small_training_config(tmp_path, run={"epochs": epochs, "seed": 2})
        return Trainer(_seeded_tiny_model(), config).fit(crystals[:4], crystals[4:6], resume=resume)

    first = run(2, resume=False)
    torch.rand(3)  # the caller's stream moves on
    state = torch.random.get_rng_state()
    resumed = run(3, resume=True)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert resumed.rows[:2] == first.rows and [r["epoch"] for r in resumed.rows] == [0, 1, 2]


# -- item 10: progress against the limit that ends the run ----------------------------------------
class _RecordingBar(tqdm):
    """A tqdm bar that remembers its total, unit and count when closed."""

    closed: list[tuple[float | None, str, float]] = []

    def close(self) -> None:
        if not self.disable:  # tqdm closes again (disabled) when collected
            _RecordingBar.closed.append((self.total, self.unit, self.n))
        super().close()


@pytest.mark.parametrize("limit", ["time_budget", "epochs"])
def test_progress_bar_counts_towards_the_limit_that_ends_the_run(
    tmp_path, crystals, monkeypatch, limit
) -> None:
    monkeypatch.setattr(progress_module, "tqdm", _RecordingBar)
    _RecordingBar.closed.clear()
    budget = 0.3 if limit == "time_budget" else 1e5
    epochs = 10_000 if limit == "time_budget" else 3
    config = small_training_config(
        tmp_path, run={"epochs": epochs, "time_budget": budget, "progress": True}
    )
    history = Trainer(tiny_model("SchNet", ["Cu"]), config).fit(crystals[:2], crystals[2:3])
    assert history.stopped == limit
    ((total, unit, count),) = _RecordingBar.closed
    if limit == "time_budget":
        assert (total, unit) == (budget, "s")
        assert count == pytest.approx(budget)  # the budget is used up
    else:
        assert (total, unit, count) == (3, "epoch", 3)


# -- item 12: non-finite labels and losses --------------------------------------------------------
def _relabelled(atoms: Atoms, **changes) -> Atoms:
    results = {**atoms.calc.results, **changes}
    copy = atoms.copy()
    copy.calc = SinglePointCalculator(copy, **results)
    return copy


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("energy", math.nan),
        ("energy", math.inf),
        ("forces", "inf"),
        ("forces", "nan"),
        ("stress", "inf"),
        ("stress", "one nan"),
    ],
)
def test_non_finite_labels_are_rejected_naming_structure_and_key(crystals, key, value) -> None:
    atoms = crystals[2]
    if value == "inf" or value == "nan":
        array = atoms.calc.results[key].copy()
        array.flat[4] = float(value)
        value = array
    elif value == "one nan":
        value = atoms.calc.results[key].copy()
        value[1] = math.nan
    structures = [*crystals[:2], _relabelled(atoms, **{key: value}), crystals[3]]
    with pytest.raises(ValueError, match=rf"training set structure 2\b.*'{key}'"):
        GraphDataset(structures, 4.0, name="training set")
    with pytest.raises(ValueError, match=rf"structure 2\b.*'{key}'"):
        train_model(
            tiny_model("SchNet", ["Cu"]), structures, crystals[4:6], epochs=1, progress=False
        )


def test_a_missing_stress_is_still_nan_and_accepted(crystals) -> None:
    results = {k: v for k, v in crystals[0].calc.results.items() if k != "stress"}
    atoms = crystals[0].copy()
    atoms.calc = SinglePointCalculator(atoms, **results)
    labels = GraphDataset([atoms], 4.0).labels[0]
    assert torch.isnan(labels.stress).all()


def test_non_finite_structure_weight_is_rejected(crystals) -> None:
    atoms = crystals[1].copy()
    atoms.calc = crystals[1].calc
    atoms.info["weight"] = math.nan
    with pytest.raises(ValueError, match=r"structure 1\b.*'weight'"):
        GraphDataset([crystals[0], atoms], 4.0)


def test_non_finite_reference_energies_are_rejected(crystals) -> None:
    from ase_gnn.training import prepare_model

    with pytest.raises(ValueError, match="Cu"):
        prepare_model(tiny_model("SchNet", ["Cu"]), crystals[:3], {"Cu": math.nan})


def test_a_non_finite_loss_stops_the_run_and_keeps_the_best_model(
    tmp_path, crystals, monkeypatch
) -> None:
    calls = {"n": 0}
    finite_loss = trainer_module.weighted_loss

    def diverging_loss(*args, **kwargs):  # what a diverging optimiser produces after one epoch
        calls["n"] += 1
        loss = finite_loss(*args, **kwargs)
        return loss * math.nan if calls["n"] > 2 else loss

    monkeypatch.setattr(trainer_module, "weighted_loss", diverging_loss)
    config = small_training_config(
        tmp_path, optimizer={"ema_decay": None}, run={"epochs": 5, "batch_size": 2}
    )
    model = tiny_model("SchNet", ["Cu"])
    with pytest.raises(ValueError, match="non-finite training loss in epoch 1"):
        Trainer(model, config).fit(crystals[:4], crystals[4:6])
    assert all(torch.isfinite(p).all() for p in model.parameters())  # no NaN step was taken
    best = load_file(str(tmp_path / "best.safetensors"))
    assert all(torch.isfinite(t).all() for t in best.values())
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 2  # header, epoch 0


def test_bad_data_does_not_overwrite_a_model_in_out_dir(tmp_path, crystals) -> None:
    structures = [*crystals[:5], _relabelled(crystals[5], energy=math.nan)]
    path = tmp_path / "data.extxyz"
    write_dataset(structures, path)
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"a good model")
    config = config_from_dict(
        {
            "data": {"train": str(path), "valid_fraction": 0.2, "test_fraction": 0.0},
            "model": {"hyperparameters": {"hidden_channels": 8, "num_interactions": 1}},
            "run": {"out_dir": str(out), "epochs": 1, "progress": False},
        }
    )
    with pytest.raises(ValueError, match=r"data.extxyz structure 5: energy label 'energy'"):
        train_from_config(config, log=lambda _: None)
    assert (out / "model.safetensors").read_bytes() == b"a good model"


def test_infinite_head_label_is_rejected_and_nan_is_missing(crystals) -> None:
    heads = (HeadConfig("charge", "node"),)
    atoms = crystals[0].copy()
    atoms.calc = crystals[0].calc
    atoms.arrays["charge"] = np.full(len(atoms), np.nan)
    assert torch.isnan(GraphDataset([atoms], 4.0, heads=heads).labels[0].heads["charge"]).all()
    atoms.arrays["charge"][3] = np.inf
    with pytest.raises(ValueError, match=r"structure 0\b.*'charge'"):
        GraphDataset([atoms], 4.0, heads=heads)
