"""The split graph with ghost atoms gives the periodic calculator's numbers (one process).

Ghosts here are the periodic images of a cell's atoms within one cutoff, as LAMMPS makes them
on one rank; they are folded onto the atoms they are images of. Ghosts owned by other ranks,
which need the per-layer exchange, are tested under mpiexec in ``test_lammps.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, fcc111

from ase_gnn import GNNCalculator, edge_vectors, graph_from_atoms
from ase_gnn.graph.neighbors import neighbor_pairs
from ase_gnn.lammps import Halo, halo_graph, predict_split
from ase_gnn.testing import tiny_model


def _with_ghosts(atoms, cutoff):
    """Owned positions followed by every periodic image within ``cutoff`` of an owned atom."""
    positions = atoms.get_positions(wrap=True)
    _, neighbor, shift = neighbor_pairs(positions, atoms.cell.array, atoms.pbc, cutoff)
    images = np.unique(np.column_stack([neighbor, shift])[shift.any(axis=1)], axis=0)
    ghosts = positions[images[:, 0]] + images[:, 1:] @ atoms.cell.array
    tags = np.concatenate([np.arange(len(atoms)), images[:, 0]]) + 1
    species = atoms.numbers[tags - 1]
    return species, np.concatenate([positions, ghosts]), tags


def _structures():
    triclinic = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    triclinic.rattle(0.05, seed=1)
    slab = fcc111("Cu", (2, 2, 3), vacuum=5.0)
    slab.rattle(0.05, seed=2)
    small = bulk("Cu", "fcc", a=3.6, cubic=True)  # 3.6 Å < 2 × cutoff
    small.rattle(0.05, seed=3)
    return {"triclinic": triclinic, "slab": slab, "small": small}


@pytest.mark.parametrize("name", ["triclinic", "slab", "small"])
def test_ghosts_with_exchange_match_the_periodic_calculator(architecture, name):
    atoms = _structures()[name]
    model = tiny_model(architecture, ["Cu"], cutoff=3.0).double()
    calc = GNNCalculator(model, dtype="float64")
    atoms.calc = calc
    species, positions, tags = _with_ghosts(atoms, model.cutoff)
    halo = Halo(tags, len(atoms))
    graph = halo_graph(species, positions, halo, model.cutoff, torch.float64)
    result = predict_split(model, graph, halo)
    assert result.energy == pytest.approx(atoms.get_potential_energy(), rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(result.local_energies, atoms.get_potential_energies(), atol=1e-10)
    np.testing.assert_allclose(result.forces, atoms.get_forces(), atol=1e-9)
    if atoms.pbc.all():
        # LAMMPS's virial W = Σ r ⊗ f is −V σ (ASE's stress, tensile positive)
        stress = atoms.get_stress(voigt=False)
        np.testing.assert_allclose(result.virial, -atoms.get_volume() * stress, atol=1e-8)


@pytest.mark.parametrize("name", ["triclinic", "slab", "small"])
def test_on_one_rank_the_graph_is_the_periodic_graph(name):
    # images of owned atoms are folded onto them: no ghost nodes, the periodic edge count
    atoms = _structures()[name]
    species, positions, tags = _with_ghosts(atoms, 3.0)
    assert len(positions) > len(atoms)
    graph = halo_graph(species, positions, Halo(tags, len(atoms)), 3.0, torch.float64)
    periodic = graph_from_atoms(atoms, 3.0)
    assert graph.num_atoms == len(atoms) and graph.num_edges == periodic.num_edges
    np.testing.assert_allclose(
        np.sort(edge_vectors(graph).norm(dim=1).numpy()),
        np.sort(edge_vectors(periodic).norm(dim=1).numpy()),
        atol=1e-12,
    )


def test_a_ghost_nobody_owns_is_refused():
    with pytest.raises(ValueError, match="not owned by this process"):
        Halo(np.array([1, 2, 7]), 2)
