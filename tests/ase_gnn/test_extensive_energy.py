"""Calculators report extensive energies of well-defined structures (issue 15, item 7).

A ``readout="mean"`` model gives an energy per atom and forces scaled by 1/N; ASE would take
them as totals. Two atoms at the same position have no defined energy. Both are refused with a
``ValueError`` that says what is wrong, before the model runs.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from ase_gnn import CommitteeCalculator, GNNCalculator, evaluate, relax
from ase_gnn.graph.neighbors import graph_from_atoms
from ase_gnn.models.forces import predict
from ase_gnn.testing import tiny_model


def _mean_model(architecture: str):
    return tiny_model(architecture, ["Cu", "Ag"], readout="mean").double()


def test_mean_readout_gives_intensive_energy_and_forces_scaled_by_one_over_n(architecture):
    # What a calculator would report: the reason it must refuse such a model.
    mean, total = _mean_model(architecture), tiny_model(architecture, ["Cu", "Ag"]).double()
    total.load_state_dict(mean.state_dict())
    atoms = bulk("Cu", cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=0)
    graph = graph_from_atoms(atoms, mean.cutoff)
    per_atom, extensive = predict(mean, graph), predict(total, graph)
    assert per_atom.forces is not None and extensive.forces is not None
    np.testing.assert_allclose(per_atom.energy * len(atoms), extensive.energy, rtol=1e-12)
    np.testing.assert_allclose(per_atom.forces * len(atoms), extensive.forces, atol=1e-12)


def test_calculators_and_batched_paths_refuse_a_mean_readout_model(architecture):
    model = _mean_model(architecture)
    structures = [bulk("Cu", cubic=True)]
    message = "readout='mean'.*intensive"
    with pytest.raises(ValueError, match=message):
        GNNCalculator(model)
    with pytest.raises(ValueError, match=message):
        CommitteeCalculator([tiny_model(architecture, ["Cu", "Ag"]), model])
    with pytest.raises(ValueError, match=message):
        evaluate(model, structures)
    with pytest.raises(ValueError, match=message):
        relax(model, structures)
    assert structures[0].calc is None  # refused before anything ran


def _with_duplicate(first: int, second: int) -> Atoms:
    """Eight Cu atoms of a rattled cluster, atom ``second`` moved onto atom ``first``."""
    atoms = bulk("Cu", cubic=True).repeat((2, 1, 1))
    atoms.pbc = False
    atoms.rattle(0.05, seed=1)
    atoms.positions[second] = atoms.positions[first]
    return atoms


def test_atoms_at_the_same_position_are_named_by_every_calculator():
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    for calc in (
        GNNCalculator(model),
        CommitteeCalculator([model, model]),
        GNNCalculator(model, skin=0.5),
    ):
        atoms = _with_duplicate(3, 7)
        atoms.calc = calc
        with pytest.raises(ValueError, match="atoms 3 and 7 are at the same position"):
            atoms.get_potential_energy()


def test_atom_on_a_periodic_image_of_another_is_named():
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=2)
    atoms.positions[2] = atoms.positions[0] + atoms.cell[1]  # the same site, one cell over
    atoms.calc = GNNCalculator(model)
    with pytest.raises(ValueError, match=r"atoms 0 and 2 are at the same position \(periodic"):
        atoms.get_forces()


def test_batched_evaluation_names_the_structure_and_its_atoms():
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    structures = [bulk("Cu", cubic=True), _with_duplicate(0, 5)]
    with pytest.raises(ValueError, match="structure 1: atoms 0 and 5 are at the same position"):
        evaluate(model, structures)
    with pytest.raises(ValueError, match="structure 1: atoms 0 and 5"):
        relax(model, structures)


def test_close_but_distinct_atoms_are_accepted():
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    atoms = _with_duplicate(3, 7)
    atoms.positions[7] += [1e-3, 0.0, 0.0]
    atoms.calc = GNNCalculator(model)
    assert np.isfinite(atoms.get_potential_energy())
    assert np.isfinite(atoms.get_forces()).all()
