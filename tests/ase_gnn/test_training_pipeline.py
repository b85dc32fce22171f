"""Training pipeline pieces: label keys, splits, reference energies, losses, optimisers,
schedules, EMA, early stopping, the late switch, metrics files and the model header."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import ase.db
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.emt import EMT

from ase_gnn import read_metadata
from ase_gnn.data.generate import generate_emt, write_dataset
from ase_gnn.models.forces import predict
from ase_gnn.testing import small_training_config, tiny_model
from ase_gnn.training import (
    GraphDataset,
    LabelKeys,
    Trainer,
    config_from_dict,
    labels_from_atoms,
    prepare_model,
    read_structures,
    train_from_config,
)
from ase_gnn.training.data import collate, isolated_atom_energies, split
from ase_gnn.training.loss import LossWeights, per_structure_loss, weighted_loss


@pytest.fixture(scope="module")
def data() -> list[Atoms]:
    return generate_emt("Cu", 24, seed=3, progress=False)


# -- data --------------------------------------------------------------------------------------
def test_labels_under_custom_keys_are_found_in_info_and_arrays(data) -> None:
    atoms = data[0].copy()
    atoms.info["REF_energy"] = -1.25
    atoms.arrays["REF_forces"] = np.full((len(atoms), 3), 0.5)
    atoms.info["REF_stress"] = np.arange(6.0)
    atoms.info["w"] = 3.0
    labels = labels_from_atoms(atoms, LabelKeys("REF_energy", "REF_forces", "REF_stress", "w"))
    assert float(labels.energy) == -1.25 and float(labels.weight) == 3.0
    assert torch.all(labels.forces == 0.5)
    assert labels.stress[0, 1, 2] == 3.0 and labels.stress[0, 0, 1] == 5.0  # Voigt yz, xy


def test_missing_key_and_bad_shapes_are_clear_errors(data) -> None:
    with pytest.raises(ValueError, match="energy key 'REF_energy' not found"):
        labels_from_atoms(data[0], LabelKeys(energy="REF_energy"))
    atoms = data[0].copy()  # the copy has no calculator: labels from info/arrays only
    atoms.info["energy"] = -1.0
    atoms.arrays["bad"] = np.zeros((len(atoms), 2))
    with pytest.raises(ValueError, match="forces have shape"):
        labels_from_atoms(atoms, LabelKeys(forces="bad"))


def test_element_not_in_model_is_named(data) -> None:
    atoms = data[0].copy()
    atoms.symbols[0] = "Au"
    with pytest.raises(ValueError, match=r"\['Au'\]"):
        GraphDataset([atoms], 4.0, species=[29])


def test_ase_database_files_are_read(tmp_path: Path, data) -> None:
    with ase.db.connect(tmp_path / "cu.db") as db:
        for atoms in data[:3]:
            db.write(atoms)
    structures = read_structures(tmp_path / "cu.db")
    assert len(structures) == 3
    assert labels_from_atoms(structures[1]).energy == labels_from_atoms(data[1]).energy


def test_seeded_split_is_reproducible_and_disjoint(data) -> None:
    first = split(data, [0.25, 0.25], seed=5)
    again = split(data, [0.25, 0.25], seed=5)
    assert [len(p) for p in first] == [12, 6, 6]
    assert all(a is b for p, q in zip(first, again) for a, b in zip(p, q))
    ids = [id(a) for part in first for a in part]
    assert len(set(ids)) == len(data)
    with pytest.raises(ValueError, match="no training structures"):
        split(data, [0.5, 0.5], seed=0)


# -- reference energies and scale ---------------------------------------------------------------
def test_isolated_atom_reference_energies_match_emt() -> None:
    atom = Atoms("Cu", positions=[[0, 0, 0]])
    atom.calc = EMT()
    assert isolated_atom_energies([29], "emt") == [atom.get_potential_energy()]


def test_prepare_model_sets_fitted_e0_and_force_scale(data) -> None:
    model = tiny_model("SchNet", ["Cu"])
    prepare_model(model, data, "fit")
    rms = np.sqrt(np.mean(np.concatenate([a.get_forces().ravel() for a in data]) ** 2))
    assert float(model.scale) == pytest.approx(rms, rel=1e-6)
    mean_per_atom = np.mean([a.get_potential_energy() / len(a) for a in data])
    assert float(model.atomic_energies[0]) == pytest.approx(mean_per_atom, abs=0.05)
    prepare_model(model, data, {"Cu": -0.5})
    assert float(model.atomic_energies[0]) == -0.5


# -- loss ---------------------------------------------------------------------------------------
def _batch(data, model):
    dataset = GraphDataset(data[:4], model.cutoff, torch.float64)
    return collate([dataset[i] for i in range(4)])


def test_loss_of_a_batch_is_the_mean_of_its_halves(data) -> None:
    # the property that makes data-parallel training equal to one process with the whole batch
    model = tiny_model("SchNet", ["Cu"]).double()
    dataset = GraphDataset(data[:4], model.cutoff, torch.float64)
    weights = LossWeights(energy=1.0, forces=10.0, stress=1.0)

    def loss(indices):
        graph, labels = collate([dataset[i] for i in indices])
        return weighted_loss(predict(model, graph, stress=True), labels, graph, weights)

    whole, halves = loss([0, 1, 2, 3]), 0.5 * (loss([0, 1]) + loss([2, 3]))
    assert float(whole) == pytest.approx(float(halves), rel=1e-12)


def test_structure_weights_scale_their_loss_and_zero_removes_it(data) -> None:
    model = tiny_model("SchNet", ["Cu"]).double()
    graph, labels = _batch(data, model)
    prediction = predict(model, graph)
    per = per_structure_loss(prediction, labels, graph, LossWeights())
    weighted = dataclasses.replace(
        labels, weight=torch.tensor([0.0, 1.0, 2.0, 1.0], dtype=torch.float64)
    )
    loss = weighted_loss(prediction, weighted, graph, LossWeights())
    assert float(loss) == pytest.approx(float((per * weighted.weight).mean()))


def test_huber_is_quadratic_for_small_and_linear_for_large_errors(data) -> None:
    model = tiny_model("SchNet", ["Cu"]).double()
    graph, labels = _batch(data, model)
    prediction = predict(model, graph)
    mse = per_structure_loss(prediction, labels, graph, LossWeights(forces=0.0))
    huber = per_structure_loss(
        prediction, labels, graph, LossWeights(forces=0.0, kind="huber", huber_delta=1e3)
    )
    assert torch.allclose(huber, 0.5 * mse)
    tiny_delta = per_structure_loss(
        prediction, labels, graph, LossWeights(forces=0.0, kind="huber", huber_delta=1e-9)
    )
    assert torch.all(tiny_delta < mse)


def test_stress_term_skips_structures_without_stress(data) -> None:
    model = tiny_model("SchNet", ["Cu"]).double()
    graph, labels = _batch(data, model)
    prediction = predict(model, graph, stress=True)
    no_stress = dataclasses.replace(labels, stress=torch.full_like(labels.stress, float("nan")))
    with_term = per_structure_loss(prediction, no_stress, graph, LossWeights(stress=1.0))
    without = per_structure_loss(prediction, no_stress, graph, LossWeights(stress=0.0))
    assert torch.equal(with_term, without)


# -- optimisation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "optimizer",
    [
        {"name": "adam"},
        {"name": "adamw", "weight_decay": 0.01},
        {"name": "sgd", "nesterov": True, "learning_rate": 1e-3},
    ],
)
def test_every_optimizer_reduces_the_training_loss(tmp_path, data, optimizer) -> None:
    config = small_training_config(
        tmp_path, optimizer={**optimizer, "ema_decay": None}, run={"epochs": 4, "dtype": "float64"}
    )
    model = tiny_model("SchNet", ["Cu"])
    prepare_model(model, data[:16], "fit")
    history = Trainer(model, config).fit(data[:16], data[16:])
    assert history.train_loss[-1] < history.train_loss[0]


def test_cosine_schedule_warms_up_then_decays(tmp_path, data) -> None:
    config = small_training_config(
        tmp_path,
        schedule={"name": "cosine", "warmup_epochs": 2},
        optimizer={"learning_rate": 1e-2},
        run={"epochs": 6},
    )
    model = tiny_model("SchNet", ["Cu"])
    rates = [row["learning_rate"] for row in Trainer(model, config).fit(data[:8], data[8:12]).rows]
    assert rates[0] < rates[1] < rates[2] == pytest.approx(1e-2)
    assert rates[2] > rates[3] > rates[4] > rates[5]


def test_step_schedule_and_late_switch_set_the_learning_rate(tmp_path, data) -> None:
    config = small_training_config(
        tmp_path,
        schedule={"name": "step", "step_size": 1, "factor": 0.5},
        optimizer={"learning_rate": 1e-2},
        loss={"switch_epoch": 2, "switch_learning_rate": 1e-4},
        run={"epochs": 3},
    )
    rates = [
        row["learning_rate"]
        for row in Trainer(tiny_model("SchNet", ["Cu"]), config).fit(data[:8], data[8:12]).rows
    ]
    assert rates[:2] == pytest.approx([1e-2, 5e-3]) and rates[2] == pytest.approx(1e-4)


def test_saved_model_holds_the_averaged_not_the_raw_weights(tmp_path, data) -> None:
    config = small_training_config(tmp_path, optimizer={"ema_decay": 0.9}, run={"epochs": 2})
    model = tiny_model("SchNet", ["Cu"])
    trainer = Trainer(model, config)
    history = trainer.fit(data[:8], data[8:12])
    from safetensors.torch import load_file

    from ase_gnn.training.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    raw, averaged = state["model"], state["ema"]
    best = load_file(str(tmp_path / "best.safetensors"))
    name = "output.2.weight"
    assert not torch.equal(raw[name], averaged[f"module.{name}"])
    if history.best_epoch == len(history.rows) - 1:
        assert torch.equal(best[name], averaged[f"module.{name}"])


def test_early_stopping_ends_a_run_without_improvement(tmp_path, data) -> None:
    config = small_training_config(
        tmp_path,
        optimizer={"learning_rate": 0.0, "ema_decay": None},
        run={"epochs": 50, "early_stopping_patience": 2},
    )
    history = Trainer(tiny_model("SchNet", ["Cu"]), config).fit(data[:8], data[8:12])
    assert history.stopped == "early_stopping" and len(history.rows) == 3


def test_gradient_clipping_bounds_the_update(tmp_path, data) -> None:
    config = small_training_config(
        tmp_path,
        optimizer={
            "name": "sgd",
            "momentum": 0.0,
            "learning_rate": 1.0,
            "gradient_clip": 1e-3,
            "ema_decay": None,
        },
        run={"epochs": 1, "batch_size": 24},
    )
    model = tiny_model("SchNet", ["Cu"])
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    Trainer(model, config).fit(data, data[:4])
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert float((after - before).norm()) <= 1e-3 * (1 + 1e-5)


# -- the whole job -------------------------------------------------------------------------
def test_train_from_config_writes_model_metrics_and_plots(tmp_path, data) -> None:
    write_dataset(data, tmp_path / "cu.extxyz")
    config = config_from_dict(
        {
            "model": {
                "cutoff": 4.0,
                "hyperparameters": {"hidden_channels": 8, "num_interactions": 1},
            },
            "data": {
                "train": str(tmp_path / "cu.extxyz"),
                "valid_fraction": 0.25,
                "test_fraction": 0.25,
            },
            "loss": {"stress_weight": 1.0},
            "run": {
                "epochs": 3,
                "batch_size": 4,
                "out_dir": str(tmp_path / "run"),
                "progress": False,
            },
        }
    )
    model, history, metrics = train_from_config(config, log=lambda text: None)
    out = tmp_path / "run"
    for name in (
        "model.safetensors",
        "best.safetensors",
        "metrics.csv",
        "config.json",
        "learning_curve.png",
        "parity.png",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
        "final_metrics.json",
    ):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 3
    for column in ("train_energy_mae", "valid_forces_rmse", "test_stress_mae", "learning_rate"):
        assert column in rows[0]
    assert set(metrics) == {"train", "valid", "test"}
    header = read_metadata(out / "model.safetensors")
    assert header["training_config"]["run"]["epochs"] == 3


def test_tensorboard_logging_needs_its_package_or_writes_events(tmp_path, data) -> None:
    config = small_training_config(tmp_path, run={"epochs": 1, "tensorboard": True})
    trainer = Trainer(tiny_model("SchNet", ["Cu"]), config)
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="needs the tensorboard package"):
            trainer.fit(data[:4], data[4:6])
    else:
        trainer.fit(data[:4], data[4:6])
        assert any((tmp_path / "tensorboard").iterdir())
