"""Time one MD step of ase-gnn models (through GNNCalculator) against ASE's EMT on fcc Cu.

A "step" is one ``VelocityVerlet`` step of 1 fs (one calculator call: energy, forces and stress).
For every cell size the script reports the median step time over several steps after warm-up,
µs per atom, the ratio to EMT, and how a SchNet calculator call splits into building the graph
(:func:`ase_gnn.graph.neighbors.graph_from_atoms`) and the rest (model, autograd, conversion).

Usage::

    python bench/md_step.py                          # 108, 500, 2048 atoms; float32 and float64
    python bench/md_step.py --sizes 500 --seconds 5 --threads 2
    python bench/md_step.py --models SchNet NequIP --dtypes float32 --compile   # + torch.compile
    python bench/md_step.py --dtypes float32 --skin --sizes 500 2048           # + Verlet skin

Every case (calculator, size) runs in a fresh process, so the memory allocator's state left by
one case cannot slow down the next (it does: up to 2x at 2048 atoms). Threads are fixed through
OMP/MKL/OpenBLAS environment variables before numpy and torch are imported, and again with
``torch.set_num_threads``; this is a script, so setting them here is fine. The default budget
(``--seconds 6``) keeps the whole run under three minutes on a 2-core machine.

Columns: ms/step is the median step; µs/atom/step divides it by N; x EMT is the ratio to EMT's
median step at the same N; graph ms is the median of separate ``graph_from_atoms`` calls and
model+autograd ms the median calculator call minus that (it includes the small conversions);
sys/wall is kernel CPU time over wall time of the timed steps (mostly page faults of freshly
allocated tensors) and faults/step the minor page faults per step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

#: Cubic fcc Cu repeats per atom count (4 atoms per cubic cell).
REPEATS = {32: 2, 108: 3, 256: 4, 500: 5, 864: 6, 1372: 7, 2048: 8}
CUTOFF = 5.0
SKIN = 1.0
WARMUP_STEPS = 2
MIN_STEPS = 3
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[108, 500, 2048], choices=sorted(REPEATS)
    )
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"]
    )
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="timed seconds per case (at least 3 steps)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument(
        "--models", nargs="+", default=["SchNet"], help="architectures at default size"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time every model under GNNCalculator(compile=True) (case suffix +compile)",
    )
    parser.add_argument(
        "--skin",
        action="store_true",
        help=f"also time every model with a {SKIN} Å Verlet skin (case suffix +skin)",
    )
    parser.add_argument("--max-steps", type=int, default=30, help="timed steps per case, at most")
    parser.add_argument("--no-emt", action="store_true", help="skip the EMT reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "name:N", one case in this process
    return parser.parse_args()


@dataclass
class Case:
    """Timings of one calculator at one size."""

    name: str
    num_atoms: int
    step_s: list[float] = field(default_factory=list)
    call_s: list[float] = field(default_factory=list)
    graph_s: list[float] = field(default_factory=list)
    first_call_s: float = 0.0
    sys_fraction: float = 0.0
    faults_per_step: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> float:
        return statistics.median(self.step_s)

    @property
    def call(self) -> float:
        return statistics.median(self.call_s) if self.call_s else float("nan")

    @property
    def graph(self) -> float:
        return statistics.median(self.graph_s) if self.graph_s else float("nan")


# -- worker: one case ---------------------------------------------------------------------------
def run_worker(args: argparse.Namespace) -> None:
    """Time one case in this process and print it as a JSON line."""
    for name in THREAD_VARIABLES:  # before numpy and torch load their thread pools
        os.environ[name] = str(args.threads)
    import numpy as np
    import torch
    from ase.build import bulk
    from ase.calculators.emt import EMT

    import ase_gnn
    from ase_gnn.graph.neighbors import graph_from_atoms
    from ase_gnn.simulate.md import thermalize_momenta

    torch.set_num_threads(args.threads)
    name, size = args.worker.split(":")
    num_atoms = int(size)
    atoms = bulk("Cu", cubic=True).repeat(REPEATS[num_atoms])
    atoms.rattle(0.05, seed=args.seed)
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(args.seed))
    case = Case(name, num_atoms)
    if name == "emt":
        calc = EMT()
    else:
        torch.manual_seed(args.seed)
        base, *flags = name.split("+")
        architecture, dtype = base.rsplit("_", 1)
        model = ase_gnn.ARCHITECTURES[architecture](species=["Cu"], cutoff=CUTOFF)
        skin = SKIN if "skin" in flags else 0.0
        calc = ase_gnn.GNNCalculator(model, dtype=dtype, compile="compile" in flags, skin=skin)
        case.info = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "ase_gnn": os.path.dirname(ase_gnn.__file__),
            "hyperparameters": model.hyperparameters(),
            "parameters": sum(p.numel() for p in model.parameters()),
        }
    # Fewer, longer steps at large N keep the run short; the time budget rules anyway.
    max_steps = args.max_steps if num_atoms <= 500 else max(MIN_STEPS, args.max_steps // 3)
    time_md(case, atoms, calc, args.seconds, max_steps)
    if isinstance(calc, ase_gnn.GNNCalculator):
        model = calc.model
        for _ in range(max(3, min(20, len(case.step_s)))):
            start = time.perf_counter()
            graph_from_atoms(atoms, model.cutoff, dtype=model.dtype, device=model.device)
            case.graph_s.append(time.perf_counter() - start)
    print("RESULT " + json.dumps(dataclasses.asdict(case)))


def time_md(case: Case, atoms, calc, seconds: float, max_steps: int) -> None:  # type: ignore[no-untyped-def]  # ASE objects
    """Median VelocityVerlet step after warm-up, within a time budget; fills ``case``."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms.calc = calc
    original = calc.calculate

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        original(*args, **kwargs)
        case.call_s.append(time.perf_counter() - start)

    calc.calculate = timed  # this one instance only: records every calculator call
    start = time.perf_counter()
    atoms.get_forces()
    case.first_call_s = time.perf_counter() - start
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.run(WARMUP_STEPS)
    case.call_s.clear()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    while len(case.step_s) < max_steps and (
        len(case.step_s) < MIN_STEPS or time.perf_counter() - start < seconds
    ):
        step_start = time.perf_counter()
        dyn.run(1)
        case.step_s.append(time.perf_counter() - step_start)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    # Kernel time is mostly page faults from freshly allocated large tensors.
    case.sys_fraction = (after.ru_stime - usage.ru_stime) / wall
    case.faults_per_step = (after.ru_minflt - usage.ru_minflt) / len(case.step_s)


# -- driver -------------------------------------------------------------------------------------
def run_case(args: argparse.Namespace, name: str, num_atoms: int) -> Case:
    """Run one case in a fresh Python process with the thread variables set."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", f"{name}:{num_atoms}"]
    command += ["--threads", str(args.threads), "--seconds", str(args.seconds)]
    command += ["--max-steps", str(args.max_steps), "--seed", str(args.seed)]
    env = {**os.environ, **{v: str(args.threads) for v in THREAD_VARIABLES}}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"case {name} N={num_atoms} failed:\n{done.stdout}\n{done.stderr}")
    return Case(**json.loads(lines[-1].removeprefix("RESULT ")))


def main() -> None:
    args = parse_args()
    if args.worker:
        run_worker(args)
        return
    suffixes = [""] + ["+compile"] * args.compile + ["+skin"] * args.skin
    names = ([] if args.no_emt else ["emt"]) + [
        f"{model}_{dtype}{suffix}"
        for model in args.models
        for dtype in args.dtypes
        for suffix in suffixes
    ]
    cases: list[Case] = []
    total_start = time.perf_counter()
    for num_atoms in args.sizes:
        for name in names:
            case = run_case(args, name, num_atoms)
            cases.append(case)
            print(
                f"#   done {name:15s} N={num_atoms:5d} {1e3 * case.step:9.1f} ms/step "
                f"({len(case.step_s)} steps)",
                file=sys.stderr,
                flush=True,
            )
    info = next((c.info for c in cases if c.info), {})
    printed: set[str] = set()
    print(
        f"# md_step  python {platform.python_version()}  torch {info.get('torch')}  "
        f"threads={info.get('threads')}  cutoff={CUTOFF}  ase_gnn from {info.get('ase_gnn')}"
    )
    for case in cases:
        if case.info and case.name.split("_")[0] not in printed:
            printed.add(case.name.split("_")[0])
            print(
                f"# {case.name.split('_')[0]} {case.info['hyperparameters']}  "
                f"parameters={case.info['parameters']}"
            )
    report(cases)
    print(f"# total wall time {time.perf_counter() - total_start:.0f} s")


def report(cases: list[Case]) -> None:
    emt = {c.num_atoms: c for c in cases if c.name == "emt"}
    header = (
        "| case | N | steps | ms/step | min-max ms | µs/atom/step | x EMT | calls/step "
        "| graph ms | model+autograd ms | graph share | sys/wall | faults/step | first call s |"
    )
    print()
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for c in cases:
        ratio = c.step / emt[c.num_atoms].step if c.num_atoms in emt else float("nan")
        calls_per_step = len(c.call_s) / len(c.step_s)
        split = "| - | - | - "
        if c.graph_s:
            split = (
                f"| {1e3 * c.graph:.2f} | {1e3 * (c.call - c.graph):.1f} "
                f"| {100 * c.graph / c.call:.1f} % "
            )
        print(
            f"| {c.name} | {c.num_atoms} | {len(c.step_s)} | {1e3 * c.step:.1f} "
            f"| {1e3 * min(c.step_s):.1f}-{1e3 * max(c.step_s):.1f} "
            f"| {1e6 * c.step / c.num_atoms:.1f} | {ratio:.2f} | {calls_per_step:.1f} "
            f"{split}| {c.sys_fraction:.2f} | {c.faults_per_step:.0f} | {c.first_call_s:.3f} |"
        )
    print()
    print("Targets:")
    for name in sorted({c.name for c in cases if c.name != "emt"}):
        by_size = {c.num_atoms: c for c in cases if c.name == name}
        if 500 in by_size:
            share = by_size[500].graph / by_size[500].call
            verdict = "PASS" if share <= 0.15 else "FAIL"
            print(
                f"  {name}: graph building {100 * share:.1f} % of a call at 500 atoms "
                f"(target <= 15 %): {verdict}"
            )
        if len(by_size) > 1:
            per_atom = {n: by_size[n].step / n * 1e6 for n in sorted(by_size)}
            small, large = min(per_atom), max(per_atom)
            growth = per_atom[large] / per_atom[small]
            verdict = "PASS" if growth <= 1.25 else "FAIL"
            values = " / ".join(f"{v:.0f}" for v in per_atom.values())
            print(
                f"  {name}: µs/atom {values} for N = {list(per_atom)}; "
                f"{large}/{small} = {growth:.2f} (target flat, <= 1.25): {verdict}"
            )
        if name == "SchNet_float32" and 500 in by_size and 500 in emt:
            ratio = by_size[500].step / emt[500].step
            verdict = "PASS" if ratio <= 2.0 else "FAIL"
            print(f"  {name}: step {ratio:.2f}x EMT at 500 atoms (target <= 2x): {verdict}")


if __name__ == "__main__":
    main()
