"""The split graph with ghost atoms gives the periodic calculator's numbers (one process).

Ghosts here are the periodic images of a cell's atoms within one cutoff, as LAMMPS makes them
on one rank: a model of several layers then needs the per-layer feature exchange to see beyond
that shell, so without it these tests fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, fcc111

from ase_gnn import GNNCalculator
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
    graph = halo_graph(species, positions, len(atoms), model.cutoff, torch.float64)
    result = predict_split(model, graph, Halo(tags, len(atoms)))
    assert result.energy == pytest.approx(atoms.get_potential_energy(), rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(result.local_energies, atoms.get_potential_energies(), atol=1e-10)
    np.testing.assert_allclose(result.forces, atoms.get_forces(), atol=1e-9)
    if atoms.pbc.all():
        # LAMMPS's virial W = Σ r ⊗ f is −V σ (ASE's stress, tensile positive)
        stress = atoms.get_stress(voigt=False)
        np.testing.assert_allclose(result.virial, -atoms.get_volume() * stress, atol=1e-8)


def test_without_the_exchange_a_deep_model_is_wrong():
    atoms = _structures()["small"]
    model = tiny_model("SchNet", ["Cu"], cutoff=3.0).double()
    atoms.calc = GNNCalculator(model, dtype="float64")
    species, positions, tags = _with_ghosts(atoms, model.cutoff)
    graph = halo_graph(species, positions, len(atoms), model.cutoff, torch.float64)
    local = model(graph).detach().numpy()[: len(atoms)]  # ghosts keep their own features
    assert not np.allclose(local, atoms.get_potential_energies(), atol=1e-6)


def test_a_ghost_nobody_owns_is_refused():
    with pytest.raises(ValueError, match="not owned by this process"):
        Halo(np.array([1, 2, 7]), 2)
