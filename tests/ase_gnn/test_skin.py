"""The Verlet-skin neighbor list gives the fresh graph's results at every MD step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet

from ase_gnn import GNNCalculator, graph_from_atoms
from ase_gnn.graph.skin import SkinNeighborList
from ase_gnn.simulate.md import thermalize_momenta
from ase_gnn.testing import tiny_model


def _edges(graph):
    keys = np.concatenate([graph.edge_index.T.numpy(), graph.edge_shift.numpy()], axis=1)
    return keys[np.lexsort(keys.T[::-1])]


def test_forces_equal_a_fresh_list_at_every_md_step():
    model = tiny_model("SchNet", ["Cu"], cutoff=4.0).double()
    atoms = bulk("Cu", cubic=True).repeat((2, 2, 2))
    thermalize_momenta(atoms, 2000.0, rng=np.random.default_rng(0))  # hot: atoms move far
    atoms.calc = GNNCalculator(model, skin=0.4)
    fresh = GNNCalculator(model)
    dynamics = VelocityVerlet(atoms, timestep=2.0 * units.fs)
    for _ in range(40):
        dynamics.run(1)
        np.testing.assert_allclose(atoms.get_forces(), fresh.get_forces(atoms), rtol=0, atol=1e-12)
        assert atoms.get_potential_energy() == pytest.approx(
            fresh.get_potential_energy(atoms), abs=1e-10
        )
    searches = atoms.calc._neighbors.searches
    assert 1 < searches < 20  # rebuilt when needed, not every step


def test_graph_equals_a_fresh_graph_and_cell_changes_trigger_a_search():
    atoms = bulk("Cu", cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=0)
    neighbors = SkinNeighborList(4.0, skin=1.0)
    neighbors.graph(atoms)
    moved = atoms.copy()
    moved.positions += np.random.default_rng(1).normal(0, 0.1, moved.positions.shape)
    graph = neighbors.graph(moved)
    assert neighbors.searches == 1
    assert np.array_equal(_edges(graph), _edges(graph_from_atoms(moved, 4.0)))
    strained = moved.copy()
    strained.set_cell(moved.cell * 1.02, scale_atoms=True)
    assert np.array_equal(
        _edges(neighbors.graph(strained)), _edges(graph_from_atoms(strained, 4.0))
    )
    assert neighbors.searches == 2
    neighbors.graph(strained, dtype=torch.float32)
    assert neighbors.searches == 3
    with pytest.raises(ValueError, match="skin"):
        SkinNeighborList(4.0, skin=0.0)


def test_the_total_charge_is_read_at_every_call_not_only_at_a_search():
    atoms = bulk("Cu", cubic=True).repeat((2, 1, 1))
    neighbors = SkinNeighborList(4.0, skin=1.0)
    assert float(neighbors.graph(atoms).charge[0]) == 0.0
    charged = atoms.copy()
    charged.info["charge"] = -1.0  # same positions: no new search
    assert float(neighbors.graph(charged).charge[0]) == -1.0
    assert neighbors.searches == 1
