"""Batched evaluation against one calculator call per structure, in the same process.

Evaluates energies, forces and stress of rattled fcc Cu cells (32 atoms by default) with a
default-size SchNet, once structure by structure through ``GNNCalculator`` and once with
``ase_gnn.evaluate`` at several batch sizes, and prints the time per structure and the speed-up.

Usage::

    python bench/batched.py                       # 128 structures of 32 atoms, 1 thread
    python bench/batched.py --atoms 108 --structures 64 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch
from ase.build import bulk

from ase_gnn import GNNCalculator, SchNet, evaluate

REPEATS = {4: 1, 32: 2, 108: 3, 256: 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=32, choices=sorted(REPEATS))
    parser.add_argument("--structures", type=int, default=128)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SchNet(["Cu"])
    structures = []
    for seed in range(args.structures):
        atoms = bulk("Cu", cubic=True).repeat(REPEATS[args.atoms])
        atoms.rattle(0.05, seed=seed)
        structures.append(atoms)
    calc = GNNCalculator(model)
    evaluate(model, structures[:2])  # warm-up
    start = time.perf_counter()
    for atoms in structures:
        calc.calculate(atoms, ["energy", "forces", "stress"])
    single = (time.perf_counter() - start) / len(structures)
    print(f"# {args.structures} structures of {args.atoms} atoms, SchNet float32, "
          f"{torch.get_num_threads()} thread(s)")  # fmt: skip
    print(f"one by one: {1e3 * single:.2f} ms/structure")
    for batch_size in args.batch_sizes:
        start = time.perf_counter()
        evaluate(model, structures, batch_size=batch_size)
        batched = (time.perf_counter() - start) / len(structures)
        print(f"batch {batch_size:4d}: {1e3 * batched:.2f} ms/structure, {single / batched:.2f}x")


if __name__ == "__main__":
    main()
