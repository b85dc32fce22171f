"""Time and peak memory per atom of energy + forces for fcc Cu from 108 to 32,000 atoms.

Every (model, size) case runs in a fresh Python process, so its peak resident memory is its own.
A case builds a rattled cubic Cu supercell, calls ``GNNCalculator`` once (warm-up: allocator,
first neighbor search), then times further calls (energy and forces, a fresh graph every call as
in MD without a skin) for ``--seconds`` or at least ``--calls`` calls.

Usage::

    python bench/scaling.py                                  # SchNet, float32, 108 ... 32000
    python bench/scaling.py --models SchNet NequIP --threads 2
    python bench/scaling.py --sizes 108 2048 --dtype float64

Columns: ms/call is the median timed call; µs/atom divides it by N; x best is µs/atom over the
lowest µs/atom of that model (the flatness of the scaling: 1.0 everywhere is linear); graph % is
the share of :func:`ase_gnn.graph_from_atoms` in a call; peak MiB is the process's peak resident
memory and MiB/katom the growth of it over the model-only process per 1000 atoms; sys/wall is
kernel CPU time over wall time of the timed calls (page faults of freshly allocated tensors).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

#: Cubic fcc Cu repeats per atom count (4 atoms per cubic cell).
REPEATS = {108: 3, 500: 5, 2048: 8, 6912: 12, 16384: 16, 32000: 20}
CUTOFF = 5.0
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=sorted(REPEATS), choices=sorted(REPEATS)
    )
    parser.add_argument("--models", nargs="+", default=["SchNet"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per case")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per case, at least")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "model:N", one case here
    return parser.parse_args()


def peak_mib() -> float:
    """Peak resident memory of this process in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(args: argparse.Namespace) -> None:
    """Time one case in this process and print it as a JSON line."""
    import torch
    from ase.build import bulk

    import ase_gnn

    torch.set_num_threads(args.threads)
    architecture, size = args.worker.split(":")
    num_atoms = int(size)
    torch.manual_seed(0)
    model = ase_gnn.ARCHITECTURES[architecture](species=["Cu"], cutoff=CUTOFF)
    calc = ase_gnn.GNNCalculator(model, dtype=args.dtype, device=args.device)
    atoms = bulk("Cu", cubic=True).repeat(REPEATS[num_atoms])
    atoms.rattle(0.05, seed=0)
    atoms.calc = calc
    base_mib = peak_mib()
    start = time.perf_counter()
    atoms.get_forces()
    first = time.perf_counter() - start
    calls: list[float] = []
    graphs: list[float] = []
    usage = resource.getrusage(resource.RUSAGE_SELF)
    wall_start = time.perf_counter()
    while len(calls) < args.calls or time.perf_counter() - wall_start < args.seconds:
        atoms.positions += 1e-3  # a new configuration: the calculator computes again
        start = time.perf_counter()
        atoms.get_forces()
        calls.append(time.perf_counter() - start)
    wall = time.perf_counter() - wall_start
    after = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(min(len(calls), 5)):
        start = time.perf_counter()
        graph = ase_gnn.graph_from_atoms(atoms, CUTOFF, dtype=model.dtype, device=model.device)
        graphs.append(time.perf_counter() - start)
    result = {
        "model": architecture,
        "num_atoms": num_atoms,
        "num_edges": graph.num_edges,
        "first_s": first,
        "call_s": statistics.median(calls),
        "calls": len(calls),
        "graph_s": statistics.median(graphs),
        "base_mib": base_mib,
        "peak_mib": peak_mib(),
        "sys_fraction": (after.ru_stime - usage.ru_stime) / wall,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    print("RESULT " + json.dumps(result))


def run_case(args: argparse.Namespace, architecture: str, num_atoms: int) -> dict[str, Any]:
    """Run one case in a fresh process with the thread variables set."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", f"{architecture}:{num_atoms}"]
    command += ["--threads", str(args.threads), "--seconds", str(args.seconds)]
    command += ["--calls", str(args.calls), "--dtype", args.dtype, "--device", args.device]
    env = {**os.environ, **{v: str(args.threads) for v in THREAD_VARIABLES}}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"case {architecture} N={num_atoms} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1].removeprefix("RESULT "))  # type: ignore[no-any-return]


def main() -> None:
    args = parse_args()
    if args.worker:
        run_worker(args)
        return
    total_start = time.perf_counter()
    print(
        f"# scaling  python {platform.python_version()}  dtype={args.dtype}  "
        f"threads={args.threads}  device={args.device}  cutoff={CUTOFF} Å  fcc Cu (a = 3.61 Å)"
    )
    for architecture in args.models:
        cases = []
        for num_atoms in args.sizes:
            cases.append(run_case(args, architecture, num_atoms))
            print(f"#   done {architecture} N={num_atoms}", file=sys.stderr, flush=True)
        per_atom = [1e6 * c["call_s"] / c["num_atoms"] for c in cases]
        best = min(per_atom)
        print(
            f"\n## {architecture}  ({cases[0]['parameters']} parameters, torch {cases[0]['torch']})"
        )
        print(
            "| N | edges | first call s | ms/call | µs/atom | x best | graph % | peak MiB "
            "| MiB/katom | sys/wall |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for case, micro in zip(cases, per_atom):
            growth = (case["peak_mib"] - case["base_mib"]) / case["num_atoms"] * 1000
            print(
                f"| {case['num_atoms']} | {case['num_edges']} | {case['first_s']:.2f} "
                f"| {1e3 * case['call_s']:.1f} | {micro:.1f} | {micro / best:.2f} "
                f"| {100 * case['graph_s'] / case['call_s']:.1f} | {case['peak_mib']:.0f} "
                f"| {growth:.0f} | {case['sys_fraction']:.2f} |"
            )
        large = [micro for case, micro in zip(cases, per_atom) if case["num_atoms"] >= 500]
        print(
            f"\ntime per atom, largest over smallest: {max(per_atom) / best:.2f} "
            f"(N = {args.sizes[0]} ... {args.sizes[-1]}; target ≤ 1.3)"
            + (f", {max(large) / min(large):.2f} from N = 500 up" if len(large) > 1 else "")
        )
    print(f"# total wall time {time.perf_counter() - total_start:.0f} s")


if __name__ == "__main__":
    main()
