"""Molecular data labelled with GFN2-xTB (through `tblite <https://tblite.readthedocs.io>`_).

Molecules from ASE's G2 collection (``ase.build.molecule``, e.g. ``"CH3CH2OH"`` for ethanol) are
run with Langevin MD on the GFN2-xTB surface and snapshots are labelled with the energy, forces,
atom-partitioned energies and partial charges that tblite returns (:func:`generate_xtb`), or
placed in pairs (two molecules, or a molecule and an ion) from contact to far apart
(:func:`generate_xtb_pairs`), the data of long-range interactions. Nothing is downloaded; tblite
is an optional dependency (``pip install tblite``).

Set ``OMP_NUM_THREADS=1`` in the environment before generating: tblite's OpenMP threads compete
with torch's, and for molecules of a few dozen atoms one thread is fastest. This module never
changes the environment itself.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.build import molecule as build_molecule
from ase.calculators.calculator import CalculationFailed
from ase.calculators.singlepoint import SinglePointCalculator
from ase.collections import g2
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from scipy.spatial.transform import Rotation
from tqdm.auto import tqdm

from ase_gnn.data._structures import place_apart, random_direction
from ase_gnn.simulate.md import thermalize_momenta

#: Steps of MD before the first snapshot is taken.
EQUILIBRATION_STEPS = 100


def generate_xtb(
    molecule: str = "CH3CH2OH",
    num_structures: int = 100,
    seed: int = 0,
    temperature_K: float = 500.0,
    method: str = "GFN2-xTB",
    steps_between: int = 10,
    timestep_fs: float = 0.5,
    progress: bool = True,
) -> list[Atoms]:
    """Snapshots of Langevin MD of one molecule, labelled with tblite's tight-binding method.

    Parameters
    ----------
    molecule
        A name from ASE's G2 collection (``ase.collections.g2.names``), e.g. ``"CH3CH2OH"``.
    num_structures
        Number of snapshots.
    seed
        Seed of the initial velocities and the Langevin noise (same seed, same data).
    temperature_K
        MD temperature, K (higher samples more distorted geometries).
    method
        ``"GFN2-xTB"`` or ``"GFN1-xTB"``.
    steps_between
        MD steps between snapshots (decorrelation).
    timestep_fs
        MD time step, fs (0.5 fs resolves X–H vibrations).
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of ase.Atoms
        Non-periodic structures with a ``SinglePointCalculator`` holding ``energy`` and
        ``free_energy`` (eV), ``forces`` ``[N, 3]`` (eV/Å), ``energies`` ``[N]`` (eV, atom
        partitioned, summing to the energy) and ``charges`` ``[N]`` (e);
        ``arrays["bond_orders"]`` ``[N, N]`` (Wiberg bond orders); ``info`` with
        ``config_type="md"``, ``molecule``, ``temperature_K``, ``homo_lumo_gap`` (eV) and
        ``dipole`` (magnitude of the dipole moment, e·Å).

    Raises
    ------
    ImportError
        If tblite is not installed.
    ValueError
        For a molecule name not in the G2 collection or a bad argument.
    """
    try:
        from tblite.ase import TBLite
    except ImportError as error:
        raise ImportError("generate_xtb needs the tblite package: pip install tblite") from error
    if molecule not in g2.names:
        raise ValueError(
            f"unknown molecule {molecule!r}; use a name from ase.collections.g2.names, "
            "e.g. 'CH3CH2OH' (ethanol), 'H2O', 'CH4', 'C6H6'"
        )
    if num_structures < 0 or steps_between < 1 or timestep_fs <= 0 or temperature_K <= 0:
        raise ValueError(
            "num_structures >= 0, steps_between >= 1 and positive time step and "
            "temperature are required"
        )
    rng = np.random.default_rng(seed)
    atoms = build_molecule(molecule)
    atoms.calc = TBLite(method=method, verbosity=0)
    atoms.set_constraint(FixCom())
    thermalize_momenta(atoms, 2.0 * temperature_K, rng=rng)  # equipartition halves it quickly
    dynamics = Langevin(
        atoms,
        timestep_fs * units.fs,
        temperature_K=temperature_K,
        friction=0.01 / units.fs,
        fixcm=False,
        rng=rng,
    )
    dynamics.run(EQUILIBRATION_STEPS)
    structures = []
    for _ in tqdm(
        range(num_structures), desc=f"{method} {molecule}", unit="structure", disable=not progress
    ):
        dynamics.run(steps_between)
        results = atoms.calc.results
        snapshot = _snapshot(atoms)
        orders = np.asarray(results["bond-orders"]).reshape(len(atoms), len(atoms), -1)
        snapshot.arrays["bond_orders"] = orders.sum(axis=-1)  # over spin channels
        snapshot.info.update(
            config_type="md",
            molecule=molecule,
            temperature_K=temperature_K,
            homo_lumo_gap=_homo_lumo_gap(snapshot, method),
            dipole=float(np.linalg.norm(results["dipole"])),
        )
        structures.append(snapshot)
    return structures


def _snapshot(atoms: Atoms) -> Atoms:
    """A plain copy of ``atoms`` holding its tblite results (energy, forces, per-atom energies,
    charges) in a SinglePointCalculator."""
    results = atoms.calc.results
    snapshot = Atoms(atoms.numbers, positions=atoms.positions)
    snapshot.calc = SinglePointCalculator(
        snapshot,
        energy=float(results["energy"]),
        free_energy=float(results["energy"]),
        forces=np.array(results["forces"]),
        energies=np.array(results["energies"]),
        charges=np.array(results["charges"]),
    )
    return snapshot


def _homo_lumo_gap(atoms: Atoms, method: str) -> float:
    """HOMO-LUMO gap in eV from a tblite single point (its public interface)."""
    from tblite.interface import Calculator

    calc = Calculator(method, atoms.numbers, atoms.positions / units.Bohr)
    calc.set("verbosity", 0)
    result = calc.singlepoint()
    energies = result.get("orbital-energies") * units.Hartree
    occupied = result.get("orbital-occupations") > 1e-3
    return float(energies[~occupied].min() - energies[occupied].max())


#: Single ions for :func:`generate_xtb_pairs`: symbol and charge (e).
IONS: dict[str, tuple[str, int]] = {
    "Li+": ("Li", 1), "Na+": ("Na", 1), "K+": ("K", 1), "F-": ("F", -1), "Cl-": ("Cl", -1),
}  # fmt: skip


def generate_xtb_pairs(
    first: str = "H2O",
    second: str = "H2O",
    num_structures: int = 100,
    seed: int = 0,
    separations: tuple[float, float] = (1.7, 15.0),
    rattle: float = 0.02,
    method: str = "GFN2-xTB",
    progress: bool = True,
) -> list[Atoms]:
    """Two molecules (or a molecule and an ion) from contact to far apart, labelled by tblite.

    Each structure places the two, rotated at random and rattled, with their shortest
    inter-fragment distance drawn uniformly from ``separations``: the data for a long-range
    model, whose test is the error binned by that distance. A polar pair (water dimer) interacts
    by dipole–dipole terms (∝ 1/R³), an ion and a polar molecule by charge–dipole terms (∝ 1/R²).

    Parameters
    ----------
    first, second
        G2 molecule names (``ase.collections.g2.names``, e.g. ``"H2O"``, ``"NH3"``, ``"CH3OH"``)
        or ions from :data:`IONS` (``"Na+"``, ``"Cl-"``, ...).
    num_structures
        Number of structures.
    seed
        Seed of orientations, rattles and separations (same seed, same data).
    separations
        Range of the shortest inter-fragment distance, Å.
    rattle
        Standard deviation of the Gaussian displacement of every atom, Å.
    method
        ``"GFN2-xTB"`` or ``"GFN1-xTB"``.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of ase.Atoms
        Non-periodic, labelled like :func:`generate_xtb` (``energy``, ``free_energy``,
        ``forces``, ``energies``, ``charges``), with ``info`` ``config_type="pair"``,
        ``separation`` (Å), ``charge`` (the total charge, e) and ``molecules`` (``"A+B"``).

    Raises
    ------
    ImportError
        If tblite is not installed.
    ValueError
        For an unknown molecule or ion, or a bad separation range.
    """
    try:
        from tblite.ase import TBLite
    except ImportError as error:
        raise ImportError("generate_xtb_pairs needs tblite: pip install tblite") from error
    fragments = [_fragment(name) for name in (first, second)]
    low, high = separations
    if not 0.5 < low <= high or num_structures < 0:
        raise ValueError(
            f"need 0.5 < separations[0] <= separations[1] (Å) and num_structures >= 0, got "
            f"{separations} and {num_structures}"
        )
    rng = np.random.default_rng(seed)
    charge = sum(fragment.info["charge"] for fragment in fragments)
    structures = []
    for _ in tqdm(
        range(num_structures), desc=f"{method} {first}+{second}", unit="structure",
        disable=not progress,
    ):  # fmt: skip
        for _ in range(20):  # a draw whose SCF does not converge (atoms too close) is redrawn
            a, b = (_oriented(fragment, rng, rattle) for fragment in fragments)
            pair = place_apart(a, b, float(rng.uniform(low, high)), random_direction(rng))
            pair.calc = TBLite(method=method, charge=float(charge), verbosity=0)
            try:
                pair.get_potential_energy()
                break
            except CalculationFailed:
                continue
        else:
            raise RuntimeError(f"{method} failed 20 times for {first}+{second}; raise separations")
        snapshot = _snapshot(pair)
        snapshot.info.update(
            config_type="pair", separation=pair.info["separation"], charge=int(charge),
            molecules=f"{first}+{second}",
        )  # fmt: skip
        structures.append(snapshot)
    return structures


def _fragment(name: str) -> Atoms:
    """A G2 molecule (charge 0) or a single ion, centred, with ``info["charge"]``."""
    if name in IONS:
        symbol, charge = IONS[name]
        atoms = Atoms(symbol, positions=[[0.0, 0.0, 0.0]])
    elif name in g2.names:
        atoms, charge = build_molecule(name), 0
    else:
        raise ValueError(
            f"unknown molecule or ion {name!r}; use a name from ase.collections.g2.names "
            f"(e.g. 'H2O') or one of {', '.join(IONS)}"
        )
    atoms.positions -= atoms.positions.mean(0)
    atoms.info = {"charge": charge}
    return atoms


def _oriented(fragment: Atoms, rng: np.random.Generator, rattle: float) -> Atoms:
    """A randomly rotated, rattled copy of ``fragment``."""
    atoms = fragment.copy()
    atoms.positions = Rotation.random(random_state=rng).apply(atoms.positions)
    atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
    return atoms
