"""GFN2-xTB molecular data (skipped without tblite)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read, write

from ase_gnn import GNNCalculator
from ase_gnn.testing import tiny_model

tblite = pytest.importorskip("tblite")

from ase_gnn.data.molecules import generate_xtb  # noqa: E402 - after the skip


@pytest.fixture(scope="module")
def ethanol():
    return generate_xtb("CH3CH2OH", 6, seed=2, progress=False)


def test_labels_equal_a_fresh_gfn2_evaluation(ethanol) -> None:
    from tblite.ase import TBLite

    for atoms in ethanol[:2]:
        fresh = atoms.copy()
        fresh.calc = TBLite(method="GFN2-xTB", verbosity=0)
        assert fresh.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
        assert np.abs(fresh.get_forces() - atoms.get_forces()).max() < 1e-4


def test_snapshots_are_distinct_with_consistent_partitions(ethanol) -> None:
    energies = [a.get_potential_energy() for a in ethanol]
    assert len(set(energies)) == len(energies)
    for atoms in ethanol:
        assert abs(atoms.get_potential_energies().sum() - atoms.get_potential_energy()) < 1e-8
        assert abs(atoms.get_charges().sum()) < 1e-6  # a neutral molecule
        assert not atoms.pbc.any()


def test_bond_orders_gap_and_dipole_are_chemically_sensible(ethanol) -> None:
    for atoms in ethanol:
        orders = atoms.arrays["bond_orders"]
        assert orders.shape == (9, 9) and np.allclose(orders, orders.T, atol=1e-8)
        symbols = atoms.get_chemical_symbols()
        distances = atoms.get_all_distances()
        carbons = [k for k, s in enumerate(symbols) if s == "C"]
        assert 0.9 < orders[carbons[0], carbons[1]] < 1.2  # the C-C single bond
        hydrogens = [k for k, s in enumerate(symbols) if s == "H"]
        nearest = [int(np.argsort(distances[h])[1]) for h in hydrogens]
        assert all(0.85 < orders[h, n] < 1.1 for h, n in zip(hydrogens, nearest))  # X-H
        assert 8.0 < atoms.info["homo_lumo_gap"] < 15.0  # eV: a saturated alcohol
        assert 0.1 < atoms.info["dipole"] < 1.0  # e·Å (ethanol: about 1.7 D = 0.35 e·Å)


def test_same_seed_gives_the_same_data(ethanol) -> None:
    # bitwise with OMP_NUM_THREADS=1; with more threads tblite's sums round differently
    again = generate_xtb("CH3CH2OH", 2, seed=2, progress=False)
    np.testing.assert_allclose(again[1].positions, ethanol[1].positions, atol=1e-6)
    other = generate_xtb("CH3CH2OH", 2, seed=3, progress=False)
    assert np.abs(other[1].positions - ethanol[1].positions).max() > 1e-3


def test_extxyz_round_trip_and_model_evaluation(tmp_path, ethanol) -> None:
    write(tmp_path / "ethanol.extxyz", ethanol)
    back = read(tmp_path / "ethanol.extxyz", index=":")
    assert back[3].get_potential_energy() == pytest.approx(ethanol[3].get_potential_energy())
    atoms = back[0]
    atoms.calc = GNNCalculator(tiny_model("SchNet", ["H", "C", "O"]))
    assert atoms.get_forces().shape == (9, 3)


def test_unknown_molecule_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown molecule 'ethanol'.*CH3CH2OH"):
        generate_xtb("ethanol", 1, progress=False)


@pytest.mark.parametrize("pair", [("H2O", "H2O"), ("H2O", "Na+"), ("Cl-", "H2O")])
def test_pairs_have_their_separation_charge_and_fresh_gfn2_labels(pair) -> None:
    """Two fragments at the stated shortest distance, total charge passed to GFN2-xTB."""
    from tblite.ase import TBLite

    from ase_gnn import graph_from_atoms
    from ase_gnn.data.molecules import generate_xtb_pairs

    structures = generate_xtb_pairs(*pair, 4, seed=1, progress=False)
    again = generate_xtb_pairs(*pair, 4, seed=1, progress=False)
    charge = {"Na+": 1, "Cl-": -1}.get(pair[0], 0) + {"Na+": 1, "Cl-": -1}.get(pair[1], 0)
    sizes = [3 if name == "H2O" else 1 for name in pair]
    for atoms, same in zip(structures, again, strict=True):
        np.testing.assert_array_equal(atoms.positions, same.positions)
        assert atoms.info["charge"] == charge
        assert atoms.calc.results["charges"].sum() == pytest.approx(charge, abs=1e-6)
        first, second = atoms.positions[: sizes[0]], atoms.positions[sizes[0] :]
        gap = np.linalg.norm(first[:, None] - second[None], axis=-1).min()
        assert gap == pytest.approx(atoms.info["separation"], abs=1e-8)
        assert 1.7 <= gap <= 15.0
        assert graph_from_atoms(atoms, 5.0).charge is not None
    fresh = structures[0].copy()
    fresh.calc = TBLite(method="GFN2-xTB", charge=float(charge), verbosity=0)
    assert fresh.get_potential_energy() == pytest.approx(structures[0].get_potential_energy())
    assert len({round(a.info["separation"], 3) for a in structures}) == 4


def test_pairs_refuse_unknown_fragments_and_bad_ranges() -> None:
    from ase_gnn.data.molecules import generate_xtb_pairs

    with pytest.raises(ValueError, match="unknown molecule or ion 'water'"):
        generate_xtb_pairs("H2O", "water", 1, progress=False)
    with pytest.raises(ValueError, match="separations"):
        generate_xtb_pairs("H2O", "H2O", 1, separations=(5.0, 2.0), progress=False)


def test_cli_writes_pairs(tmp_path) -> None:
    import subprocess
    import sys

    out = tmp_path / "pairs.extxyz"
    command = [sys.executable, "-m", "ase_gnn", "generate", "xtb-pairs", "--molecule", "H2O,Na+"]
    subprocess.run([*command, "--structures", "3", "--out", str(out)], check=True)
    structures = read(out, ":")
    assert len(structures) == 3
    assert all(atoms.info["charge"] == 1 and "separation" in atoms.info for atoms in structures)
