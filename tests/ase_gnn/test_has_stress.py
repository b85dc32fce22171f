"""One definition of "this structure has a stress", shared by every path (issue 15, items 3, 14)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from ase_gnn import GNNCalculator, SchNet, evaluate, graph_from_atoms, has_stress, predict
from ase_gnn.graph.atomic_graph import batch_graphs, stress_mask


def _flat_cell_slab() -> Atoms:
    """A periodic Cu pair whose third cell vector is tiny: rank 3 for ASE, volume ~1e-12 Å³."""
    return Atoms(
        "Cu2",
        positions=[[0, 0, 0], [1.8, 1.8, 0]],
        cell=[[3.6, 0, 0], [0, 3.6, 0], [0, 0, 1e-13]],
        pbc=[True, True, False],
    )


@pytest.fixture(scope="module")
def model() -> SchNet:
    return SchNet(["H", "C", "O", "Cu"], hidden_channels=8, num_interactions=1).double()


def test_flat_cell_has_no_stress_in_calculator_and_evaluate_alike(model: SchNet) -> None:
    atoms = _flat_cell_slab()
    assert not has_stress(atoms)
    atoms.calc = GNNCalculator(model)
    energy = atoms.get_potential_energy()  # raised "stress needs a 3-D cell" before
    assert "stress" not in atoms.calc.results
    (result,) = evaluate(model, [atoms])
    assert "stress" not in result
    assert result["energy"] == pytest.approx(energy, abs=1e-10)


def test_stress_is_masked_per_structure_in_a_mixed_batch(model: SchNet) -> None:
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    crystal.rattle(0.05, seed=1)
    gas = molecule("CH3OH")
    structures = [crystal, gas, _flat_cell_slab()]
    graphs = [graph_from_atoms(a, model.cutoff, dtype=torch.float64) for a in structures]
    graph = batch_graphs(graphs)
    assert stress_mask(graph).tolist() == [True, False, False]
    assert [has_stress(a) for a in structures] == [True, False, False]
    batched = predict(model, graph, stress=True)
    single = predict(model, graphs[0], stress=True)
    assert batched.stress is not None and single.stress is not None
    torch.testing.assert_close(batched.stress[0], single.stress[0], rtol=1e-10, atol=1e-12)
    assert bool(batched.stress[1:].isnan().all())
    # Forces of the stress-less members are unaffected by asking for stress.
    plain = predict(model, graph, stress=False)
    assert plain.forces is not None and batched.forces is not None
    torch.testing.assert_close(batched.forces, plain.forces, rtol=1e-10, atol=1e-12)


def test_gradient_through_masked_stress_is_finite(model: SchNet) -> None:
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    graph = batch_graphs(
        [graph_from_atoms(a, model.cutoff, dtype=torch.float64) for a in (crystal, molecule("H2O"))]
    )
    prediction = predict(model, graph, stress=True, training=True)
    assert prediction.stress is not None
    loss = prediction.stress[stress_mask(graph)].square().sum()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    model.zero_grad()


def test_molecule_in_a_box_without_periodic_axes_has_no_stress() -> None:
    atoms = molecule("H2O")
    atoms.cell = np.eye(3) * 10.0
    assert not has_stress(atoms)
    atoms.pbc = [True, False, False]
    assert has_stress(atoms)
