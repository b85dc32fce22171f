"""Bad structures are refused with a ``ValueError`` that names the problem, before any C code runs.

Neighbor-list libraries answer bad input with silent garbage or a crash (ASE: pairs at distance 0
for a zero periodic cell; vesin: SIGFPE near 1e6 Å), so the checks in
``ase_gnn.graph.neighbors.validate_structure`` must come first. Tests that could kill the
interpreter if a check regressed run the neighbor list in a child process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import vesin
from ase import Atoms
from ase.build import bulk, molecule

from ase_gnn import GNNCalculator, SchNet
from ase_gnn.graph.neighbors import graph_from_atoms


@pytest.fixture
def calculator() -> GNNCalculator:
    model = SchNet(["Cu"], cutoff=3.0, hidden_channels=8, num_interactions=1)
    return GNNCalculator(model)


@pytest.fixture
def no_vesin(monkeypatch):
    """Make any call into vesin fail loudly, to show that validation happens before it."""

    def compute(*args, **kwargs):
        raise AssertionError("vesin must not run on invalid input")

    monkeypatch.setattr(vesin.NeighborList, "compute", compute)


def _copper(positions, cell=None, pbc=False) -> Atoms:
    return Atoms(f"Cu{len(positions)}", positions=positions, cell=cell, pbc=pbc)


def _run_in_child(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (so a SIGFPE in C code cannot kill the test run)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- structures that cannot become a graph ---------------------------------------------------

BAD_STRUCTURES = {
    "nan_position": (
        _copper([[0.0, 0.0, 0.0], [np.nan, 1.0, 1.0]]),
        r"atoms \[1\] have non-finite \(NaN or inf\) positions",
    ),
    "inf_position": (
        _copper([[np.inf, 0.0, 0.0], [1.0, 1.0, 1.0]]),
        r"atoms \[0\] have non-finite \(NaN or inf\) positions",
    ),
    "nan_in_cell": (
        _copper(
            [[0.0, 0.0, 0.0]], cell=[[3.0, 0.0, 0.0], [0.0, np.nan, 0.0], [0.0, 0.0, 3.0]], pbc=True
        ),
        r"cell contains NaN or inf",
    ),
    "periodic_zero_cell": (
        _copper([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], pbc=True),
        r"cell vector a is zero but axis a is periodic",
    ),
    "periodic_zero_c_vector": (
        _copper([[0.0, 0.0, 0.0]], cell=[3.0, 3.0, 0.0], pbc=True),
        r"cell vector c is zero but axis c is periodic",
    ),
    "parallel_periodic_vectors": (
        _copper(
            [[0.0, 0.0, 0.0]],
            cell=[[3.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
            pbc=(True, True, False),
        ),
        r"linearly dependent",
    ),
    "coplanar_periodic_vectors": (
        _copper(
            [[0.0, 0.0, 0.0]], cell=[[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [3.0, 3.0, 0.0]], pbc=True
        ),
        r"linearly dependent",
    ),
    "coordinates_1e7": (
        _copper([[0.0, 0.0, 0.0], [1.0e7, 0.0, 0.0]]),
        r"coordinates up to 1e\+07 Å exceed the supported",
    ),
    "cell_too_narrow": (
        _copper([[0.0, 0.0, 0.0]], cell=[3.0, 3.0, 1.0e-4], pbc=True),
        r"cell is too narrow for cutoff",
    ),
}


@pytest.mark.parametrize("name", list(BAD_STRUCTURES))
def test_bad_structure_raises_value_error_naming_problem_before_vesin(name, no_vesin):
    atoms, message = BAD_STRUCTURES[name]
    with pytest.raises(ValueError, match=message):
        graph_from_atoms(atoms, 5.0)


@pytest.mark.parametrize("cutoff", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_or_non_finite_cutoff_raises(cutoff, no_vesin):
    with pytest.raises(ValueError, match=r"cutoff must be a positive finite number"):
        graph_from_atoms(bulk("Cu", cubic=True), cutoff)


@pytest.mark.parametrize("cutoff", [1e-300, 1e-7, 1e-6, 5e-4])
def test_tiny_cutoff_raises_value_error_before_vesin(cutoff, no_vesin):
    # vesin itself refuses cutoffs <= 1e-6 Å with a RuntimeError from C
    with pytest.raises(ValueError, match=r"below the smallest supported cutoff"):
        graph_from_atoms(molecule("CH4"), cutoff)


def test_smallest_supported_cutoff_gives_an_edgeless_graph():
    graph = graph_from_atoms(bulk("Cu", cubic=True), 1e-3)
    assert graph.num_atoms == 4 and graph.num_edges == 0


def test_nan_position_raises_through_calculator(calculator, no_vesin):
    atoms = bulk("Cu", cubic=True)
    atoms.positions[2, 1] = np.nan
    atoms.calc = calculator
    with pytest.raises(ValueError, match=r"atoms \[2\] have non-finite"):
        atoms.get_potential_energy()


def test_periodic_zero_cell_raises_through_calculator(calculator, no_vesin):
    atoms = _copper([[0.0, 0.0, 0.0], [1.5, 1.5, 0.0]], pbc=True)
    atoms.calc = calculator
    with pytest.raises(ValueError, match=r"cell vector a is zero but axis a is periodic"):
        atoms.get_potential_energy()


def test_unknown_element_through_calculator_names_it_and_known_species(calculator, no_vesin):
    atoms = bulk("Cu", cubic=True)
    atoms.symbols[1] = "Ag"
    atoms.calc = calculator
    with pytest.raises(ValueError, match=r"\['Ag'\].*species \['Cu'\]"):
        atoms.get_potential_energy()


def test_huge_coordinates_raise_without_crashing_the_process():
    result = _run_in_child(
        """
        from ase import Atoms
        from ase_gnn.graph.neighbors import graph_from_atoms
        atoms = Atoms("Cu2", positions=[[0, 0, 0], [1e7, 0, 0]])
        try:
            graph_from_atoms(atoms, 5.0)
        except ValueError as error:
            print("ValueError:", error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "ValueError: coordinates up to 1e+07" in result.stdout


def test_huge_periodic_cell_vector_raises_without_crashing_the_process():
    result = _run_in_child(
        """
        from ase import Atoms
        from ase_gnn.graph.neighbors import graph_from_atoms
        atoms = Atoms("Cu2", positions=[[0, 0, 0], [1, 1, 1]], cell=[1e7, 0, 0],
                      pbc=(True, False, False))
        try:
            graph_from_atoms(atoms, 5.0)
        except ValueError as error:
            print("ValueError:", error)
        """
    )
    assert result.returncode == 0, f"child died with {result.returncode}: {result.stderr}"
    assert "ValueError" in result.stdout


def test_narrow_slab_with_mixed_pbc_raises(no_vesin):
    atoms = _copper(
        [[0.0, 0.0, 0.0]],
        cell=[[3.0, 0.0, 0.0], [0.0, 1.0e-4, 0.0], [0.0, 0.0, 0.0]],
        pbc=(True, True, False),
    )
    with pytest.raises(ValueError, match=r"too narrow"):
        graph_from_atoms(atoms, 5.0)


# -- degenerate but valid structures ----------------------------------------------------------


def test_empty_atoms_through_calculator_give_zero_energy_and_no_forces(calculator):
    atoms = Atoms()
    atoms.calc = calculator
    assert atoms.get_potential_energy() == 0.0
    assert atoms.get_forces().shape == (0, 3)


def test_empty_periodic_atoms_through_calculator_give_zero_stress(calculator):
    atoms = Atoms(cell=[3.0, 3.0, 3.0], pbc=True)
    atoms.calc = calculator
    assert atoms.get_potential_energy() == 0.0
    assert atoms.get_forces().shape == (0, 3)
    np.testing.assert_array_equal(atoms.get_stress(), np.zeros(6))


def test_lone_atom_in_non_periodic_box_has_reference_energy_and_zero_force():
    model = SchNet(["Cu"], cutoff=3.0, hidden_channels=8, num_interactions=1)
    model.set_atomic_energies({"Cu": -3.5})
    atoms = Atoms("Cu", positions=[[5.0, 5.0, 5.0]], cell=[10.0, 10.0, 10.0], pbc=False)
    atoms.calc = GNNCalculator(model)
    assert atoms.get_potential_energy() == pytest.approx(-3.5, abs=1e-6)
    np.testing.assert_array_equal(atoms.get_forces(), np.zeros((1, 3)))


def test_atom_far_from_molecule_adds_its_reference_energy_and_feels_no_force():
    model = SchNet(["C", "H"], cutoff=3.0, hidden_channels=8, num_interactions=1)
    model.set_atomic_energies({"C": -2.0, "H": -0.5})
    methane = molecule("CH4")
    methane.calc = GNNCalculator(model)
    far = methane + Atoms("H", positions=[[30.0, 0.0, 0.0]])
    far.calc = GNNCalculator(model)
    assert far.get_potential_energy() == pytest.approx(
        methane.get_potential_energy() - 0.5, abs=1e-5
    )
    np.testing.assert_array_equal(far.get_forces()[-1], np.zeros(3))
