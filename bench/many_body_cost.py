"""Wall time of the order-3 many-body expansion (explain.many_body) of untrained default models.

Usage::

    python bench/many_body_cost.py                 # SchNet and NequIP, 64-atom Si, 108-atom Cu
    python bench/many_body_cost.py --models SchNet --cutoff 4.0

Models have the default sizes and a 5 Å cutoff (``--cutoff``), float64 evaluation (the
default of ``many_body``), untrained (the cost does not depend on the weights). The 64-atom
cell is diamond Si (2x2x2 cubic), the 108-atom one fcc Cu (3x3x3 cubic), both rattled by
0.05 Å. Printed: the numbers of pairs and triplets, the seconds of one expansion (after a
warm-up on the primitive cell) and the cost per triplet; the issue's aim is under 10 s.
"""

from __future__ import annotations

import argparse
import time

from ase.build import bulk

from ase_gnn import ARCHITECTURES
from explain import many_body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["SchNet", "NequIP"])
    parser.add_argument("--cutoff", type=float, default=5.0)
    args = parser.parse_args()
    cells = {
        "Si 64": bulk("Si", "diamond", a=5.431, cubic=True) * (2, 2, 2),
        "Cu 108": bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3),
    }
    header = ("model", "cell", "pairs", "triplets", "seconds", "µs/triplet")
    print("{:8s} {:8s} {:>7s} {:>9s} {:>8s} {:>11s}".format(*header))
    for name in args.models:
        for label, cell in cells.items():
            atoms = cell.copy()
            atoms.rattle(0.05, seed=0)
            model = ARCHITECTURES[name](species=[atoms[0].symbol], cutoff=args.cutoff)
            many_body(model, atoms[:1] if len(atoms) else atoms)  # warm-up
            start = time.perf_counter()
            result = many_body(model, atoms)
            seconds = time.perf_counter() - start
            triplets = len(result.triplet_energy)
            print(f"{name:8s} {label:8s} {len(result.pair_energy):7d} {triplets:9d} "
                  f"{seconds:8.2f} {1e6 * seconds / triplets:11.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
