"""Training: reference-energy fit, labels, losses and a real (small) fit that learns EMT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ase_gnn import SchNet
from ase_gnn.data.generate import generate_emt, generate_emt_alloy
from ase_gnn.training import (
    GraphDataset,
    evaluate_metrics,
    fit_atomic_energies,
    labels_from_atoms,
    train_model,
)


@pytest.fixture(scope="module")
def cu_data():
    return generate_emt("Cu", 48, seed=1, progress=False)


def test_least_squares_reference_energies_recover_known_values() -> None:
    rng = np.random.default_rng(0)
    e0 = {29: -3.0, 79: -1.5}
    structures = []
    for _ in range(10):
        n_cu, n_au = rng.integers(1, 6, size=2)
        atoms = Atoms(f"Cu{n_cu}Au{n_au}")
        atoms.calc = SinglePointCalculator(atoms, energy=n_cu * e0[29] + n_au * e0[79])
        structures.append(atoms)
    assert np.allclose(fit_atomic_energies(structures, [29, 79]), [-3.0, -1.5])


def test_labels_are_read_from_calculator_results(cu_data) -> None:
    labels = labels_from_atoms(cu_data[0])
    assert labels.energy.shape == (1,) and labels.forces.shape == (len(cu_data[0]), 3)
    assert float(labels.energy) == cu_data[0].get_potential_energy()


def test_unlabelled_structure_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no labels"):
        labels_from_atoms(Atoms("Cu"))


def test_empty_data_set_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        GraphDataset([], cutoff=4.0)


def test_element_missing_from_the_model_is_rejected_before_training() -> None:
    data = generate_emt_alloy(("Cu", "Au"), 4, progress=False)
    with pytest.raises(ValueError, match="Au"):
        train_model(SchNet(["Cu"]), data[:2], data[2:], epochs=1, progress=False)


def test_training_learns_emt_far_better_than_the_untrained_model(cu_data) -> None:
    train, valid = cu_data[:40], cu_data[40:]
    model = SchNet(["Cu"], cutoff=4.5, hidden_channels=32, num_interactions=2)
    model.set_atomic_energies(fit_atomic_energies(train, model.species))
    before = evaluate_metrics(model, GraphDataset(valid, model.cutoff, model.dtype))
    history = train_model(model, train, valid, epochs=25, batch_size=4, progress=False)
    after = evaluate_metrics(model, GraphDataset(valid, model.cutoff, model.dtype))
    assert after == history.valid[history.best_epoch]
    assert after["forces_mae"] < 0.5 * before["forces_mae"]
    assert after["energy_mae"] < 0.05  # eV/atom
    # the network learnt more than the per-atom reference energy: E0 alone, fitted here by least
    # squares on the training set, predicts the validation energies much worse
    n = np.array([len(a) for a in train], float)
    e0 = np.dot(n, [a.get_potential_energy() for a in train]) / np.dot(n, n)
    e0_only = np.mean([abs(a.get_potential_energy() / len(a) - e0) for a in valid])
    assert after["energy_mae"] < 0.7 * e0_only  # 0.52 seen after 25 epochs


def test_training_in_float64_gives_a_float64_model(cu_data) -> None:
    model = SchNet(["Cu"], cutoff=4.0, hidden_channels=8, num_interactions=1)
    train_model(model, cu_data[:4], cu_data[4:6], epochs=1, dtype="float64", progress=False)
    assert model.dtype == torch.float64


def test_time_budget_stops_training(cu_data) -> None:
    model = SchNet(["Cu"], cutoff=4.0, hidden_channels=8, num_interactions=1)
    history = train_model(
        model, cu_data[:8], cu_data[8:10], epochs=10_000, time_budget=0.0, progress=False
    )
    assert len(history.train_loss) == 1


def test_old_names_still_work_with_a_deprecation_warning() -> None:
    import ase_gnn.training as training

    with pytest.warns(DeprecationWarning, match="training.fit is now ase_gnn.training.train_model"):
        assert training.fit is training.train_model
    with pytest.warns(DeprecationWarning, match="evaluate_metrics"):
        assert training.evaluate is training.evaluate_metrics
    with pytest.raises(AttributeError):
        training.no_such_name  # noqa: B018
