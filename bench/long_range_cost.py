"""What the long-range term costs: energy + forces of NaCl with and without it, up to 32,768 ions.

Usage::

    python bench/long_range_cost.py                       # 512, 4,096 and 32,768 ions
    python bench/long_range_cost.py --sizes 512 4096 --threads 1 2 --repeats 5

For each size (rattled rock-salt NaCl supercells, float32) and thread count, the median time of
one energy + forces call (``ase_gnn.predict``, graph built beforehand) of SchNet (5 Å cutoff,
3 interactions of width 64) without and with ``long_range=True`` (default settings: σ = 1 Å,
accuracy 1e-6, ``summation="auto"``), their ratio, the time of the electrostatics alone with
fixed charges by Ewald and by PME, and the time to build torch-pme's calculator (which
:func:`~ase_gnn.models.long_range.coulomb_energies` does on every call). Times per atom show
how close to linear each part stays. Ratios are measured in the same process, one size after
the other, so machine noise cancels in them more than in the absolute times.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
from ase.build import bulk

from ase_gnn import graph_from_atoms, predict
from ase_gnn.data.ionic import NACL_LATTICE_CONSTANT, formal_charges
from ase_gnn.models.long_range import coulomb_energies
from ase_gnn.models.schnet import SchNet


def _median_time(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _electrostatics(graph, charges, summation: str) -> Callable[[], object]:  # noqa: ANN001
    def call() -> None:
        positions = graph.positions.clone().requires_grad_(True)
        energy = coulomb_energies(graph.with_positions(positions), charges, 1.0, 1e-6, summation)
        torch.autograd.grad(energy.sum(), positions)

    return call


def _construction() -> float:
    import torchpme

    start = time.perf_counter()
    for _ in range(100):
        potential = torchpme.CoulombPotential(smearing=math.sqrt(2.0))
        torchpme.PMECalculator(potential, mesh_spacing=0.8, interpolation_nodes=6)
    return (time.perf_counter() - start) / 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 4096, 32768])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    models = {
        long_range: SchNet(species=["Na", "Cl"], cutoff=5.0, hidden_channels=64,
                           num_interactions=3, num_radial=16, long_range=long_range)
        for long_range in (False, True)
    }  # fmt: skip
    print(f"building torch-pme's PME calculator: {1e6 * _construction():.0f} µs per call")
    print(f"\n{'ions':>6s} {'thr':>3s} {'SchNet s':>9s} {'+ LR s':>8s} {'ratio':>6s} "
          f"{'Ewald s':>8s} {'PME s':>8s} {'µs/ion SR':>9s} {'µs/ion LR':>9s}")  # fmt: skip
    for size in args.sizes:
        repeat = round((size / 8) ** (1 / 3))
        if 8 * repeat**3 != size:
            raise SystemExit(f"sizes must be 8 n³ ions (rock-salt cubes), got {size}")
        atoms = bulk("NaCl", "rocksalt", a=NACL_LATTICE_CONSTANT, cubic=True).repeat(repeat)
        atoms.rattle(0.05, seed=0)
        graph = graph_from_atoms(atoms, 5.0).to(dtype=torch.float32)
        charges = torch.as_tensor(0.9 * formal_charges(atoms), dtype=torch.float32)
        for threads in args.threads:
            torch.set_num_threads(threads)
            short, long = (
                _median_time(lambda m=models[lr], g=graph: predict(m, g), args.repeats)
                for lr in (False, True)
            )
            ewald = (
                _median_time(_electrostatics(graph, charges, "ewald"), args.repeats)
                if size <= 512
                else math.nan  # N² wave-vector work: 26 s at 4,096 ions, minutes beyond
            )
            pme = _median_time(_electrostatics(graph, charges, "pme"), args.repeats)
            per_atom = f"{1e6 * short / size:9.1f} {1e6 * long / size:9.1f}"
            print(f"{size:6d} {threads:3d} {short:9.3f} {long:8.3f} {long / short:6.2f} "
                  f"{ewald:8.3f} {pme:8.3f} {per_atom}")  # fmt: skip


if __name__ == "__main__":
    main()
