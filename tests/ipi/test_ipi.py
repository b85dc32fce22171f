"""``ase-gnn ipi``: an i-PI server started here drives path-integral and classical MD."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet

from ase_gnn import GNNCalculator, save_model
from ase_gnn.ipi import Driver
from ase_gnn.testing import tiny_model

I_PI = shutil.which("i-pi", path=str(Path(sys.executable).parent))
if I_PI is None:  # the [ipi] extra; CI installs it through [dev]
    if os.environ.get("CI"):
        raise ImportError("i-pi is not installed")
    pytest.skip("needs the [ipi] extra (i-PI)", allow_module_level=True)

pytestmark = pytest.mark.slow

INPUT = """\
<simulation verbosity='low'>
  <output prefix='sim'>
    <properties stride='1' filename='out'> [ step, potential{{electronvolt}} ] </properties>
    <trajectory filename='pos' stride='1' format='ase'> positions{{ase}} </trajectory>
    <trajectory filename='for' stride='1' format='ase'> forces{{ase}} </trajectory>
  </output>
  <total_steps> {steps} </total_steps>
  <prng><seed> 31415 </seed></prng>
  <ffsocket name='gnn' mode='unix'>
    <address> {address} </address>
    <batch_size> {batch} </batch_size>
  </ffsocket>
  <system>
    <initialize nbeads='{beads}'>
      <file mode='ase'> start.extxyz </file>
      {velocities}
    </initialize>
    <forces><force forcefield='gnn'/></forces>
    <ensemble><temperature units='kelvin'> 300 </temperature></ensemble>
    <motion mode='dynamics'>
      <dynamics mode='{ensemble}'>
        <timestep units='femtosecond'> 1.0 </timestep>
        {thermostat}
      </dynamics>
    </motion>
  </system>
</simulation>
"""


@pytest.fixture
def folder(tmp_path):
    atoms = bulk("Cu", cubic=True) * (2, 1, 1)
    atoms.rattle(0.05, seed=2)
    ase.io.write(tmp_path / "start.extxyz", atoms)
    save_model(tiny_model("NequIP", ["Cu"], cutoff=4.0).double(), tmp_path / "m.safetensors")
    return tmp_path


def _run(folder: Path, steps: int, beads: int, batch: int, thermostat: bool) -> str:
    """i-PI and ``ase-gnn ipi`` on a UNIX socket; the driver's summary line."""
    address = f"asegnn_{os.getpid()}_{beads}_{batch}"
    (folder / "input.xml").write_text(INPUT.format(
        steps=steps, address=address, batch=batch, beads=beads,
        velocities="<velocities mode='thermal' units='kelvin'> 300 </velocities>"
        if thermostat else "",
        ensemble="nvt" if thermostat else "nve",
        thermostat="<thermostat mode='pile_l'><tau units='femtosecond'> 100 </tau></thermostat>"
        if thermostat else "",
    ))  # fmt: skip
    server = subprocess.Popen(
        [I_PI, "input.xml"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    driver = subprocess.run(
        [sys.executable, "-m", "ase_gnn", "ipi", "--model", "m.safetensors", "--structure",
         "start.extxyz", "--unix", "--address", address],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    log, _ = server.communicate(timeout=120)
    assert driver.returncode == 0 and server.returncode == 0, driver.stderr + log[-3000:]
    return driver.stdout


def test_pimd_beads_are_evaluated_together_and_equal_the_calculator(folder):
    summary = _run(folder, steps=5, beads=4, batch=4, thermostat=True)
    assert "evaluated 24 structures in 6 model calls" in summary  # 4 beads per call
    calc = GNNCalculator(folder / "m.safetensors", dtype="float64")
    energies = []
    for bead in range(4):
        frames = ase.io.read(folder / f"sim.pos_{bead}.extxyz", ":")
        forces = ase.io.read(folder / f"sim.for_{bead}.extxyz", ":")
        assert len(frames) == 6
        for frame, written in zip(frames, forces):
            frame.calc = calc
            np.testing.assert_allclose(written.get_forces(), frame.get_forces(), atol=1e-6)
        energies.append([frame.get_potential_energy() for frame in frames])
    potential = np.loadtxt(folder / "sim.out")[:, 1]  # i-PI's bead average, eV
    np.testing.assert_allclose(potential, np.mean(energies, axis=0), rtol=1e-7)


def test_one_bead_nve_follows_ase_velocity_verlet(folder):
    # classical MD from rest: the same integrator and forces, up to i-PI's copper mass
    summary = _run(folder, steps=20, beads=1, batch=1, thermostat=False)
    assert "evaluated 21 structures in 21 model calls" in summary
    final = ase.io.read(folder / "sim.pos_0.extxyz", -1)
    atoms = ase.io.read(folder / "start.extxyz")
    atoms.calc = GNNCalculator(folder / "m.safetensors", dtype="float64")
    VelocityVerlet(atoms, timestep=units.fs).run(20)
    moved = np.abs(atoms.positions - ase.io.read(folder / "start.extxyz").positions).max()
    assert moved > 1e-3  # Å: the atoms did move
    np.testing.assert_allclose(final.positions, atoms.positions, atol=1e-6)


def test_the_driver_refuses_models_it_cannot_serve():
    with pytest.raises(ValueError, match=r"knows \['Cu'\], not \['Au'\]"):
        Driver(tiny_model("SchNet", ["Cu"]), ["Cu", "Au"])
    with pytest.raises(ValueError, match="readout='mean'"):
        Driver(tiny_model("SchNet", ["Cu"], readout="mean"), ["Cu"])
