"""float32 models lose no precision on structures far from the origin.

Edge vectors r_j + S·cell − r_i are formed from the graph's positions in the model's dtype. Cast
to float32 at |r| = 1e4 Å, a position is only good to ~5e-4 Å, which moved forces by 6e-3 eV/Å.
``graph_from_atoms`` therefore wraps periodic atoms into the cell and centres the rest in
float64 before the cast (compensating the cell shifts), so a translated molecule or an unwrapped
crystal gives the float32 results of the original structure.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import primitive_neighbor_list

from ase_gnn import GNNCalculator, graph_from_atoms
from ase_gnn.graph.atomic_graph import edge_vectors
from ase_gnn.graph.skin import SkinNeighborList
from ase_gnn.testing import tiny_model

#: float32 results must match float64 ones to this fraction of their scale (float32 itself
#: carries ~6e-8; the tiny models' sums lose a factor ~10-100).
RELATIVE = 1e-5


def _results(model, atoms: Atoms, dtype: torch.dtype) -> dict[str, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = GNNCalculator(model, dtype=dtype)
    results = {"energy": np.array(atoms.get_potential_energy()), "forces": atoms.get_forces()}
    if atoms.pbc.any():
        results["stress"] = atoms.get_stress()
    return results


def _assert_float32_matches(model, moved: Atoms, original: Atoms) -> None:
    reference = _results(model, original, torch.float64)
    ours = _results(model, moved, torch.float32)
    for key, expected in reference.items():
        scale = np.abs(expected).max()
        assert scale > 1e-3, f"{key} too small to test"
        np.testing.assert_allclose(ours[key], expected, rtol=0, atol=RELATIVE * scale, err_msg=key)


@pytest.fixture
def ethanol() -> Atoms:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=4)
    return atoms


@pytest.mark.parametrize("distance", [1.0e4, 9.0e4])
def test_translated_molecule_gives_the_original_float32_results(architecture, ethanol, distance):
    model = tiny_model(architecture, ["C", "H", "O"])
    moved = ethanol.copy()
    moved.positions += distance * np.array([0.8, -0.5, 0.33])
    _assert_float32_matches(model, moved, ethanol)


def test_unwrapped_crystal_gives_the_original_float32_results(architecture):
    model = tiny_model(architecture, ["Cu"])
    crystal = bulk("Cu", cubic=True).repeat((2, 2, 1))
    crystal.rattle(0.1, seed=5)
    moved = crystal.copy()
    # every atom moved by its own whole number of lattice vectors, up to ±1e4 Å
    lattice = np.random.default_rng(6).integers(-2800, 2800, (len(crystal), 3))
    moved.positions += lattice @ crystal.cell[:]
    assert np.abs(moved.positions).max() > 9e3
    _assert_float32_matches(model, moved, crystal)


def test_slab_far_along_its_vacuum_axis_gives_the_original_float32_results():
    model = tiny_model("SchNet", ["Cu"])
    slab = bulk("Cu", cubic=True).repeat((2, 2, 2))
    slab.rattle(0.1, seed=7)
    slab.pbc = (True, True, False)
    moved = slab.copy()
    moved.positions += [3.61 * 1000, -3.61 * 2000, 5.0e4]
    _assert_float32_matches(model, moved, slab)


def test_graph_positions_are_atoms_positions_wrapped_and_centred():
    # graph.positions = atoms.positions − n·cell − origin: integer n (0 on non-periodic axes),
    # one origin, with the edges' cell shifts compensated so every edge vector is unchanged
    crystal = bulk("Cu", cubic=True).repeat((2, 1, 1))
    crystal.positions += np.array([[3, 0, -1], [0, 0, 0], [-7, 2, 0], [1, 1, 1]] * 2) * 3.61
    crystal.pbc = (True, True, False)
    crystal.positions[:, 2] += 500.0
    graph = graph_from_atoms(crystal, 4.0)
    difference = crystal.positions - graph.positions.numpy()
    lattice = np.linalg.solve(crystal.cell[:].T, (difference - difference[0]).T).T
    np.testing.assert_allclose(lattice, np.round(lattice), atol=1e-9)
    assert (np.round(lattice)[:, 2] == 0).all()
    fractional = graph.positions.numpy() @ np.linalg.inv(crystal.cell[:])
    assert (fractional[:, :2] > -1e-9).all() and (fractional[:, :2] < 1 + 1e-9).all()
    height = graph.positions.numpy()[:, 2]  # centred on the non-periodic axis, not wrapped
    assert height.min() + height.max() == pytest.approx(0.0, abs=1e-9)
    assert np.ptp(height) == pytest.approx(np.ptp(crystal.positions[:, 2]), abs=1e-9)
    i, j, vectors = primitive_neighbor_list(
        "ijD", crystal.pbc, crystal.cell[:], crystal.positions, 4.0, self_interaction=False
    )
    ours = np.column_stack([graph.edge_index.T.numpy(), edge_vectors(graph).numpy()])
    expected = np.column_stack([i, j, vectors])
    np.testing.assert_allclose(
        ours[np.lexsort(np.round(ours, 6).T[::-1])],
        expected[np.lexsort(np.round(expected, 6).T[::-1])],
        rtol=0,
        atol=1e-9,
    )


def test_skin_list_graph_equals_a_fresh_graph_far_from_the_origin():
    crystal = bulk("Cu", cubic=True).repeat((2, 2, 2))
    crystal.rattle(0.05, seed=8)
    crystal.positions += np.random.default_rng(9).integers(-2000, 2000, (32, 3)) * 3.61
    neighbors = SkinNeighborList(4.0, skin=1.0)
    neighbors.graph(crystal, dtype=torch.float32)
    moved = crystal.copy()
    moved.positions += np.random.default_rng(10).normal(0, 0.1, moved.positions.shape)
    graph = neighbors.graph(moved, dtype=torch.float32)
    fresh = graph_from_atoms(moved, 4.0, dtype=torch.float32)
    assert neighbors.searches == 1
    torch.testing.assert_close(graph.positions, fresh.positions, rtol=0, atol=0)

    def keyed(g):
        keys = torch.cat([g.edge_index.T.double(), g.edge_shift.double()], dim=1).numpy()
        return keys[np.lexsort(keys.T[::-1])]

    np.testing.assert_array_equal(keyed(graph), keyed(fresh))
