"""Molecular dynamics with any ASE calculator, recording what a user checks first."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet
from tqdm.auto import tqdm

__all__ = ["NVETrajectory", "run_nve", "thermalize_momenta"]

try:  # ASE >= 3.29; MaxwellBoltzmannDistribution is deprecated there
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover - older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    def thermalize_momenta(atoms: Atoms, temperature_K: float, *, rng=None) -> None:  # type: ignore[no-untyped-def,misc]  # signature of the newer function
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)


@dataclass
class NVETrajectory:
    """Result of :func:`run_nve`.

    Attributes
    ----------
    frames
        Snapshots (positions, cell, pbc, numbers) every ``interval`` steps, without calculators.
    time_fs
        ``[F]`` time of every frame, fs.
    potential_energy, total_energy
        ``[F]`` energies per frame, eV.
    temperature
        ``[F]`` instantaneous kinetic temperature, K.
    """

    frames: list[Atoms] = field(default_factory=list)
    time_fs: list[float] = field(default_factory=list)
    potential_energy: list[float] = field(default_factory=list)
    total_energy: list[float] = field(default_factory=list)
    temperature: list[float] = field(default_factory=list)

    def drift_per_atom(self) -> float:
        """Linear drift of the total energy, meV/atom/ps (slope of a least-squares line).

        Raises
        ------
        ValueError
            With fewer than two frames, where no slope exists (run longer or record more often).
        """
        if len(self.time_fs) < 2:
            raise ValueError(
                f"an energy drift needs two or more frames, the trajectory has {len(self.time_fs)}"
                " (run more steps or lower the recording interval)"
            )
        num_atoms = len(self.frames[0])
        slope = np.polyfit(np.asarray(self.time_fs) / 1000.0, self.total_energy, 1)[0]
        return float(1000.0 * slope / num_atoms)

    def fluctuation_per_atom(self) -> float:
        """Max − min of the total energy, meV/atom."""
        total = np.asarray(self.total_energy)
        return float(1000.0 * (total.max() - total.min()) / len(self.frames[0]))


def run_nve(
    atoms: Atoms,
    calculator: Calculator,
    steps: int = 500,
    timestep_fs: float = 2.0,
    temperature_K: float = 300.0,
    interval: int = 10,
    seed: int = 0,
    progress: bool = False,
) -> NVETrajectory:
    """Velocity-Verlet NVE run from Maxwell–Boltzmann velocities.

    Parameters
    ----------
    atoms
        Start structure (copied; the caller's object is not changed).
    calculator
        Any ASE calculator.
    steps
        Number of MD steps.
    timestep_fs
        Time step, fs.
    temperature_K
        Temperature of the initial velocities, K (zero total momentum).
    interval
        Record a frame every ``interval`` steps.
    seed
        Seed of the initial velocities.
    progress
        Show a tqdm bar.

    Returns
    -------
    NVETrajectory
        Recorded frames and energies.
    """
    for name, value in (("steps", steps), ("interval", interval)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer of at least 1, got {value!r}")
    if not (np.isfinite(timestep_fs) and timestep_fs > 0):
        raise ValueError(f"timestep_fs must be a positive number of fs, got {timestep_fs}")
    if not (np.isfinite(temperature_K) and temperature_K >= 0):
        raise ValueError(f"temperature_K must be a non-negative number of K, got {temperature_K}")
    atoms = atoms.copy()
    atoms.calc = calculator
    thermalize_momenta(atoms, temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    record = NVETrajectory()
    bar = tqdm(total=steps, desc="MD", disable=not progress)

    def observe() -> None:
        frame = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        record.frames.append(frame)
        record.time_fs.append(dynamics.nsteps * timestep_fs)
        energy = atoms.get_potential_energy()
        record.potential_energy.append(energy)
        record.total_energy.append(energy + atoms.get_kinetic_energy())
        record.temperature.append(atoms.get_temperature())

    dynamics.attach(observe, interval=interval)
    dynamics.attach(lambda: bar.update(1), interval=1)
    dynamics.run(steps)
    bar.close()
    return record
