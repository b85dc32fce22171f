"""ase_gnn.data.generate: deterministic, correctly labelled, round-trippable training data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_stress
from ase.calculators.lj import LennardJones
from ase.calculators.morse import MorsePotential
from ase.calculators.singlepoint import SinglePointCalculator
from ase.neighborlist import neighbor_list

from ase_gnn.data.generate import (
    EMT_CONFIG_TYPES,
    EMT_ELEMENTS,
    PAIR_CONFIG_TYPES,
    generate_emt,
    generate_emt_alloy,
    generate_lennard_jones,
    generate_morse,
    read_dataset,
    write_dataset,
)
from ase_gnn.data.silicon import SW_CONFIG_TYPES, generate_sw, stillinger_weber

# Calculators with the generators' default parameters, for recomputing labels.
REFERENCE_CALCULATORS: dict[str, Callable[[], Calculator]] = {
    "emt": EMT,
    "emt_alloy": EMT,
    "lennard_jones": lambda: LennardJones(sigma=3.4, epsilon=0.0104, rc=5.0, ro=4.0, smooth=True),
    "morse": lambda: MorsePotential(
        epsilon=0.3429, r0=2.866, rho0=1.3588 * 2.866, rcut1=4.0 / 2.866, rcut2=5.0 / 2.866
    ),
    "sw": stillinger_weber,
}
GENERATORS: dict[str, Callable[..., list[Atoms]]] = {
    "emt": lambda num_structures, seed: generate_emt("Cu", num_structures, seed, progress=False),
    "emt_alloy": lambda num_structures, seed: generate_emt_alloy(
        ("Cu", "Au"), num_structures, seed, progress=False
    ),
    "lennard_jones": lambda num_structures, seed: generate_lennard_jones(
        num_structures, seed, progress=False
    ),
    "morse": lambda num_structures, seed: generate_morse(num_structures, seed, progress=False),
    "sw": lambda num_structures, seed: generate_sw(num_structures, seed, progress=False),
}
#: Smallest interatomic distance each data set must respect, in Å (the documented defaults).
MIN_DISTANCES = {
    "emt": 1.8,
    "emt_alloy": 1.8,
    "lennard_jones": 0.75 * 2 ** (1 / 6) * 3.4,
    "morse": 0.7 * 2.866,
    "sw": 1.95,
}


@pytest.fixture(scope="module", params=sorted(GENERATORS))
def dataset(request: pytest.FixtureRequest) -> tuple[str, list[Atoms]]:
    """(name, 20 structures) for every generator, made once per module."""
    name = str(request.param)
    return name, GENERATORS[name](20, 0)


def _min_distance(atoms: Atoms) -> float:
    distances = neighbor_list("d", atoms, 6.0)
    return float(distances.min()) if len(distances) else np.inf


def _has_stress(atoms: Atoms) -> bool:
    return "stress" in atoms.calc.results


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_gives_identical_data(name: str) -> None:
    first, second = GENERATORS[name](8, 3), GENERATORS[name](8, 3)
    for a, b in zip(first, second, strict=True):
        assert a == b  # numbers, positions, cell, pbc
        assert a.info == b.info
        assert a.calc.results.keys() == b.calc.results.keys()
        for key, value in a.calc.results.items():
            np.testing.assert_array_equal(value, b.calc.results[key])
    other = GENERATORS[name](8, 4)
    assert any(
        len(a) != len(b) or not np.allclose(a.positions, b.positions)
        for a, b in zip(first, other, strict=True)
    )


def test_labels_match_fresh_calculator(dataset: tuple[str, list[Atoms]]) -> None:
    name, structures = dataset
    for config_type in {atoms.info["config_type"] for atoms in structures}:
        atoms = next(a for a in structures if a.info["config_type"] == config_type)
        fresh = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        fresh.calc = REFERENCE_CALCULATORS[name]()
        assert isinstance(atoms.calc, SinglePointCalculator)
        assert abs(atoms.get_potential_energy() - fresh.get_potential_energy()) < 1e-8
        np.testing.assert_allclose(atoms.get_forces(), fresh.get_forces(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(
            atoms.get_potential_energies(), fresh.get_potential_energies(), rtol=0, atol=1e-8
        )
        if _has_stress(atoms):
            np.testing.assert_allclose(atoms.get_stress(), fresh.get_stress(), rtol=0, atol=1e-8)


def test_labels_are_finite_with_documented_shapes(dataset: tuple[str, list[Atoms]]) -> None:
    _, structures = dataset
    for atoms in structures:
        results = atoms.calc.results
        assert np.isfinite(results["energy"]) and results["free_energy"] == results["energy"]
        assert results["forces"].shape == (len(atoms), 3) and np.isfinite(results["forces"]).all()
        assert results["energies"].shape == (len(atoms),)
        assert np.isfinite(results["energies"]).all()
        if _has_stress(atoms):
            assert results["stress"].shape == (6,) and np.isfinite(results["stress"]).all()


def test_per_atom_energies_sum_to_energy(dataset: tuple[str, list[Atoms]]) -> None:
    _, structures = dataset
    for atoms in structures:
        assert atoms.get_potential_energies().sum() == pytest.approx(
            atoms.get_potential_energy(), abs=1e-10
        )


def test_stress_stored_exactly_where_cell_is_3d_and_periodic(
    dataset: tuple[str, list[Atoms]],
) -> None:
    _, structures = dataset
    for atoms in structures:
        assert _has_stress(atoms) == (atoms.cell.rank == 3 and bool(atoms.pbc.any()))
        if atoms.info["config_type"] in ("bulk", "strained", "md", "vacancy", "random", "liquid"):
            assert atoms.pbc.all()
        elif atoms.info["config_type"] == "surface":
            assert atoms.pbc.tolist() == [True, True, False] and _has_stress(atoms)
        else:  # cluster
            assert not atoms.pbc.any() and not _has_stress(atoms)


def test_every_config_type_present_and_count_exact(dataset: tuple[str, list[Atoms]]) -> None:
    name, structures = dataset
    expected = PAIR_CONFIG_TYPES
    if name.startswith("emt"):
        expected = EMT_CONFIG_TYPES
    elif name == "sw":
        expected = SW_CONFIG_TYPES
    assert len(structures) == 20
    assert {atoms.info["config_type"] for atoms in structures} == set(expected)


def test_structures_are_small_and_atoms_not_too_close(dataset: tuple[str, list[Atoms]]) -> None:
    name, structures = dataset
    assert max(len(atoms) for atoms in structures) <= 40
    assert min(_min_distance(atoms) for atoms in structures) >= MIN_DISTANCES[name]


def test_alloy_mixes_species() -> None:
    structures = generate_emt_alloy(("Cu", "Au", "Pd"), 10, seed=1, progress=False)
    assert set().union(*(atoms.get_chemical_symbols() for atoms in structures)) == {
        "Cu",
        "Au",
        "Pd",
    }


def test_surface_stress_is_strain_derivative_of_energy() -> None:
    # The documented choice to keep slab stress: it is (1/V) dE/dε of EMT with V the full cell.
    structures = generate_emt("Cu", 10, seed=0, progress=False)
    slab = next(atoms for atoms in structures if atoms.info["config_type"] == "surface")
    probe = Atoms(slab.numbers, slab.positions, cell=slab.cell, pbc=slab.pbc)
    probe.calc = EMT()
    numerical = calculate_numerical_stress(probe, eps=1e-5)
    np.testing.assert_allclose(slab.get_stress(), numerical, rtol=0, atol=1e-8)


def test_extxyz_round_trip_preserves_labels(
    dataset: tuple[str, list[Atoms]], tmp_path: Path
) -> None:
    _, structures = dataset
    path = tmp_path / "data.extxyz"
    write_dataset(structures, path)
    loaded = read_dataset(path)
    assert len(loaded) == len(structures)
    for original, copy in zip(structures, loaded, strict=True):
        assert copy.info["config_type"] == original.info["config_type"]
        assert (copy.numbers == original.numbers).all() and (copy.pbc == original.pbc).all()
        np.testing.assert_allclose(copy.cell[:], original.cell[:], rtol=0, atol=1e-12)
        np.testing.assert_allclose(copy.positions, original.positions, rtol=0, atol=1e-8)
        assert copy.get_potential_energy() == pytest.approx(
            original.get_potential_energy(), abs=1e-12
        )
        # Per-atom columns are written with 8 decimals.
        np.testing.assert_allclose(copy.get_forces(), original.get_forces(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(
            copy.get_potential_energies(), original.get_potential_energies(), rtol=0, atol=1e-8
        )
        assert _has_stress(copy) == _has_stress(original)
        if _has_stress(original):
            np.testing.assert_allclose(copy.get_stress(), original.get_stress(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("element", ["Fe", "H", "cu"])
def test_unknown_element_raises_value_error_naming_allowed_ones(element: str) -> None:
    with pytest.raises(ValueError, match=", ".join(EMT_ELEMENTS)):
        generate_emt(element, 2, progress=False)
    with pytest.raises(ValueError, match=", ".join(EMT_ELEMENTS)):
        generate_emt_alloy(("Cu", element), 2, progress=False)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: generate_emt("Cu", -1, progress=False), "num_structures"),
        (lambda: generate_emt_alloy(("Cu", "Cu"), 2, progress=False), "distinct"),
        (lambda: generate_lennard_jones(2, cutoff=4.0, cutoff_onset=4.5, progress=False), "cutoff"),
        (lambda: generate_morse(2, min_distance=3.0, progress=False), "min_distance"),
        (lambda: generate_morse(2, temperatures_K=(), progress=False), "temperatures_K"),
        (lambda: write_dataset([], "unused.extxyz"), "empty"),
    ],
)
def test_invalid_arguments_raise_value_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_progress_false_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    generate_lennard_jones(3, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_stillinger_weber_without_clusters_has_only_condensed_phases() -> None:
    structures = generate_sw(12, seed=1, clusters=False, progress=False)
    assert len(structures) == 12
    assert {atoms.info["config_type"] for atoms in structures} == set(SW_CONFIG_TYPES) - {"cluster"}
