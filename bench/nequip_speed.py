"""Energy + forces time of NequIP against SchNet and ASE's EMT on fcc Cu, in one process.

One "call" is what a calculator does for energy and forces: build the graph
(:func:`ase_gnn.graph_from_atoms`) and run :func:`ase_gnn.predict` (for EMT: ``calculate`` with
energy and forces). Every call sees freshly rattled positions. The cases take turns, round after
round, so a busy machine slows all of them alike; the table shows medians and ratios to EMT.

Cases: EMT; SchNet and NequIP at their default sizes (cutoff 5 Å); NequIP under
``torch.compile(model, dynamic=True)`` (inference only; its first call, the compilation, is
reported separately).

Usage::

    python bench/nequip_speed.py                       # 108 and 500 atoms, float32, 1 thread
    python bench/nequip_speed.py --sizes 108 --rounds 5 --no-compile

Threads are fixed through OMP/MKL/OpenBLAS environment variables before numpy and torch are
imported, and with ``torch.set_num_threads``; this is a script, so setting them here is fine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ase import Atoms

REPEATS = {32: 2, 108: 3, 256: 4, 500: 5, 864: 6}
CUTOFF = 5.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[108, 500], choices=sorted(REPEATS))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7, help="timed calls per case and size")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile case")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(args.threads)
    import numpy as np
    import torch
    from ase.build import bulk
    from ase.calculators.calculator import all_changes
    from ase.calculators.emt import EMT

    from ase_gnn import NequIP, SchNet, graph_from_atoms, predict

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    torch.manual_seed(0)
    models = {
        "SchNet": SchNet(["Cu"], cutoff=CUTOFF).to(device=device, dtype=dtype),
        "NequIP": NequIP(["Cu"], cutoff=CUTOFF).to(device=device, dtype=dtype),
    }
    for name, model in models.items():
        size = sum(p.numel() for p in model.parameters())
        print(f"# {name} {model.hyperparameters()} parameters={size}")
    print(
        f"# torch {torch.__version__}  threads={torch.get_num_threads()}  dtype={args.dtype}  "
        f"device={device}  cutoff={CUTOFF}"
    )

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def gnn_call(model: torch.nn.Module) -> Callable[[Atoms], None]:
        def call(atoms: Atoms) -> None:
            graph = graph_from_atoms(atoms, CUTOFF, dtype=dtype, device=device)
            predict(model, graph, forces=True)
            sync()

        return call

    emt = EMT()

    def emt_call(atoms: Atoms) -> None:
        # As in MD: only positions change, so EMT keeps its neighbor list (with skin) if it can.
        same_system = emt.atoms is not None and len(emt.atoms) == len(atoms)
        emt.calculate(atoms, ["energy", "forces"], ["positions"] if same_system else all_changes)

    cases: dict[str, Callable[[Atoms], None]] = {
        "EMT": emt_call,
        "SchNet": gnn_call(models["SchNet"]),
        "NequIP": gnn_call(models["NequIP"]),
    }
    if not args.no_compile:
        cases["NequIP compiled"] = gnn_call(torch.compile(models["NequIP"], dynamic=True))

    rng = np.random.default_rng(0)
    rows = []
    for num_atoms in args.sizes:
        base = bulk("Cu", cubic=True).repeat(REPEATS[num_atoms])
        first: dict[str, float] = {}
        times: dict[str, list[float]] = {name: [] for name in cases}
        for round_index in range(args.rounds + 1):
            for name, call in cases.items():
                atoms = base.copy()
                atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
                start = time.perf_counter()
                call(atoms)
                elapsed = time.perf_counter() - start
                if round_index == 0:
                    first[name] = elapsed  # warm-up (compilation for the compiled case)
                else:
                    times[name].append(elapsed)
            print(f"#   N={num_atoms} round {round_index} done", file=sys.stderr, flush=True)
        emt_median = statistics.median(times["EMT"])
        for name in cases:
            median = statistics.median(times[name])
            rows.append(
                f"| {name} | {num_atoms} | {1e3 * median:.1f} | {1e3 * min(times[name]):.1f} "
                f"| {1e6 * median / num_atoms:.0f} | {median / emt_median:.2f} "
                f"| {first[name]:.2f} |"
            )
    print()
    print("| case | N | median ms | min ms | µs/atom | x EMT | first call s |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
