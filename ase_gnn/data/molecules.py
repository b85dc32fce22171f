"""Molecular data labelled with GFN2-xTB (through `tblite <https://tblite.readthedocs.io>`_).

Molecules from ASE's G2 collection (``ase.build.molecule``, e.g. ``"CH3CH2OH"`` for ethanol) are
run with Langevin MD on the GFN2-xTB surface and snapshots are labelled with the energy, forces,
atom-partitioned energies and partial charges that tblite returns. Nothing is downloaded; tblite
is an optional dependency (``pip install tblite``).

Set ``OMP_NUM_THREADS=1`` in the environment before generating: tblite's OpenMP threads compete
with torch's, and for molecules of a few dozen atoms one thread is fastest. This module never
changes the environment itself.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.build import molecule as build_molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.collections import g2
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from tqdm.auto import tqdm

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
        snapshot = Atoms(atoms.numbers, positions=atoms.positions)
        snapshot.calc = SinglePointCalculator(
            snapshot,
            energy=float(results["energy"]),
            free_energy=float(results["energy"]),
            forces=np.array(results["forces"]),
            energies=np.array(results["energies"]),
            charges=np.array(results["charges"]),
        )
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


def _homo_lumo_gap(atoms: Atoms, method: str) -> float:
    """HOMO-LUMO gap in eV from a tblite single point (its public interface)."""
    from tblite.interface import Calculator

    calc = Calculator(method, atoms.numbers, atoms.positions / units.Bohr)
    calc.set("verbosity", 0)
    result = calc.singlepoint()
    energies = result.get("orbital-energies") * units.Hartree
    occupied = result.get("orbital-occupations") > 1e-3
    return float(energies[~occupied].min() - energies[occupied].max())
