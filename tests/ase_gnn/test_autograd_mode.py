"""Forces and stress do not depend on the caller's autograd mode (issue 15, item 1).

Inference scripts often wrap everything in ``torch.no_grad()`` or ``torch.inference_mode()``;
``predict`` must derive the same forces and stress there (it enables autograd inside), and refuse
with an error, never answer 0, when no autograd path from positions to energies exists.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from ase_gnn import GNNCalculator, evaluate, graph_from_atoms, predict, relax
from ase_gnn.graph.atomic_graph import AtomicGraph, edge_vectors
from ase_gnn.testing import TOLERANCES, tiny_model
from ase_gnn.training import evaluate_metrics
from ase_gnn.training.data import GraphDataset

CONTEXTS = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


@pytest.fixture(params=sorted(CONTEXTS))
def context(request: pytest.FixtureRequest):
    """Both ways of switching autograd off."""
    return CONTEXTS[request.param]


def _crystal():
    atoms = bulk("Cu", cubic=True)
    atoms.symbols[1] = "Ag"
    atoms.rattle(0.1, seed=2)
    return atoms


def _cluster():
    atoms = molecule("CH4")
    atoms.symbols[:] = "Cu"
    atoms.positions *= 2.2
    atoms.rattle(0.05, seed=4)
    return atoms


def _properties(atoms, model, dtype) -> dict[str, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = GNNCalculator(model, dtype=dtype)
    results = {"energy": np.array(atoms.get_potential_energy()), "forces": atoms.get_forces()}
    if atoms.pbc.any():
        results["stress"] = atoms.get_stress()
    return results


def _assert_same(actual: dict, expected: dict, dtype: torch.dtype) -> None:
    assert set(actual) >= set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(
            actual[name], value, rtol=0, atol=TOLERANCES[dtype], err_msg=name
        )


def test_calculator_forces_and_stress_do_not_depend_on_autograd_mode(model, dtype, context):
    for atoms in (_crystal(), _cluster()):
        expected = _properties(atoms, model, dtype)
        # A random model still pushes rattled atoms: forces of exactly 0 would be the bug.
        assert np.abs(expected["forces"]).max() > 1e-3
        with context():
            actual = _properties(atoms, model, dtype)
        _assert_same(actual, expected, dtype)
        if "stress" in expected:
            assert np.abs(expected["stress"]).max() > 1e-5


def test_calculator_built_inside_inference_mode_gives_the_same_forces(model, dtype):
    atoms = _crystal()
    expected = _properties(atoms, model, dtype)
    with torch.inference_mode():
        # In float64 the (float32) model is copied here: its parameters are inference tensors.
        calc = GNNCalculator(model, dtype=dtype)
        atoms.calc = calc
        actual = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        actual["stress"] = atoms.get_stress()
    _assert_same(actual, expected, dtype)


def test_batched_evaluate_does_not_depend_on_autograd_mode(model, dtype, context):
    model = model.to(dtype)
    structures = [_crystal(), _cluster(), _crystal().repeat((1, 1, 2))]
    expected = evaluate(model, structures, batch_size=2)
    with context():
        actual = evaluate(model, structures, batch_size=2)
    for result, reference in zip(actual, expected):
        assert np.abs(reference["forces"]).max() > 1e-3
        _assert_same(result, reference, dtype)


def test_batched_relax_does_not_depend_on_autograd_mode(context):
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    starts = [_crystal(), _cluster()]
    expected = [a.copy() for a in starts]
    reference = relax(model, expected, fmax=1e-4, max_steps=3)
    structures = [a.copy() for a in starts]
    with context():
        report = relax(model, structures, fmax=1e-4, max_steps=3)
    assert report.steps.tolist() == reference.steps.tolist() == [3, 3]
    np.testing.assert_allclose(report.fmax, reference.fmax, rtol=0, atol=1e-10)
    for atoms, moved, start in zip(structures, expected, starts):
        assert np.abs(moved.positions - start.positions).max() > 1e-4  # the reference moved
        np.testing.assert_allclose(atoms.positions, moved.positions, rtol=0, atol=1e-10)


def test_trainer_evaluation_does_not_depend_on_autograd_mode(context):
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    structures = [_crystal(), _crystal().repeat((1, 1, 2))]
    for atoms in structures:
        atoms.calc = EMT()
        atoms.get_stress()
    dataset = GraphDataset(structures, model.cutoff, torch.float64)
    expected = evaluate_metrics(model, dataset)
    with context():
        actual = evaluate_metrics(model, dataset)
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, rel=1e-10, abs=1e-12), name


class _Detached(torch.nn.Module):
    """A wrapper that cuts the autograd graph between positions and energies."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, graph: AtomicGraph, edge_weight=None) -> torch.Tensor:
        return self.model(graph, edge_weight).detach()


def test_forces_without_an_autograd_path_are_an_error_not_zero():
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    graph = graph_from_atoms(_crystal(), model.cutoff)
    with pytest.raises(RuntimeError, match="no autograd path"):
        predict(_Detached(model), graph, forces=True)
    with pytest.raises(RuntimeError, match="no autograd path"):
        predict(_Detached(model), graph, forces=False, stress=True)
    energy = predict(_Detached(model), graph, forces=False).energy  # energy alone needs none
    assert torch.allclose(energy, predict(model, graph, forces=False).energy)


class _Harmonic(torch.nn.Module):
    """E = Σ_pairs ½ k (r − r0)², with no parameters or buffers at all."""

    k, r0 = 1.5, 2.4

    def forward(self, graph: AtomicGraph, edge_weight=None) -> torch.Tensor:
        lengths = edge_vectors(graph).norm(dim=1)
        # Every pair appears twice (i → j and j → i): half the pair energy on each centre.
        pair = 0.25 * self.k * (lengths - self.r0) ** 2
        return torch.zeros_like(graph.positions[:, 0]).index_add(0, graph.edge_index[0], pair)


@pytest.mark.parametrize("context_name", ["none", *sorted(CONTEXTS)])
def test_parameter_free_model_gives_analytic_forces(context_name):
    positions = np.array([[0.0, 0.0, 0.0], [2.0, 0.3, 0.0]])
    graph = graph_from_atoms(Atoms("Cu2", positions=positions), cutoff=4.0)
    context = CONTEXTS.get(context_name, torch.enable_grad)
    with context():
        prediction = predict(_Harmonic(), graph, forces=True)
    vector = positions[1] - positions[0]
    r = np.linalg.norm(vector)
    expected = -_Harmonic.k * (r - _Harmonic.r0) * vector / r  # force on atom 1
    assert prediction.forces is not None
    np.testing.assert_allclose(prediction.forces.numpy(), [-expected, expected], atol=1e-12)
    assert float(prediction.energy[0]) == pytest.approx(0.5 * _Harmonic.k * (r - _Harmonic.r0) ** 2)
