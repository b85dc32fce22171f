"""ase-gnn's SchNet and NequIP beside MACE, NequIP (mir-group) and ASE's EMT: accuracy and speed.

One command trains every model on the same generated data for the same wall-clock budget on this
machine, measures test errors and MD step times, and writes ``bench/RESULTS.md`` (table, command,
package versions) with a plot (``bench/results.png``: time per step against atoms, error against
training time).

Each third-party package lives in its own virtual environment (``make bench`` creates them:
mace-torch pins e3nn 0.4.4, nequip needs e3nn 0.6), so this driver runs every step in a
subprocess of the right interpreter; all workers are this same file (``--worker``), which imports
a package only inside the worker that needs it.

Usage::

    make bench                                   # venvs, then this script with defaults
    python bench/compare.py --budget 300         # seconds of training per model and data set
    python bench/compare.py --budget 20 --data cu --sizes 108 --models schnet mace   # smoke run
    python bench/compare.py --scaling            # trained Cu models from 108 to 32,000 atoms
    python bench/compare.py --scaling --preload /lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4

Protocol:

* Data: fcc Cu from ``ase_gnn.data.generate.generate_emt`` (300 structures) and ethanol GFN2-xTB MD
  from ``ase_gnn.data.molecules.generate_xtb`` (600 frames, needs tblite); 80/10/10 split, seed 0.
* Training: float32, ``--budget`` seconds of wall clock per model (including the trainer's own
  data preparation; MACE is stopped with SIGTERM at the budget and its best checkpoint is
  exported; NequIP uses Lightning's ``max_time``).
* Errors: every model through its ASE calculator in float64 on the test split: energy MAE per
  atom (meV/atom) and force-component MAE (meV/Å).
* Speed: ``VelocityVerlet`` steps of the Cu models on rattled fcc Cu (108/500/2048 atoms), median
  step time after warm-up, 1 thread, float32 and float64, each case in a fresh process (its peak
  resident memory is reported). Graph share: ase-gnn's ``graph_from_atoms`` over a step.
* ``nequip-ours-nl``: ase-gnn's NequIP trained with the NequIP run's loss weights (errors only;
  its speed is that of ``nequip-ours``), to compare accuracy at equal weighting.
* Scaling (``--scaling``): one energy + forces call of the trained Cu models on 108 … 32,000
  atoms, ``--threads`` threads, float32, fresh process per case; ``--preload`` runs it under
  another memory allocator (see ``bench/ANALYSIS.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# bench/scaling.py imports only the standard library, so every benchmark environment can use its
# Cu supercell sizes, thread variables and peak-memory reading
from scaling import REPEATS, THREAD_VARIABLES, peak_mib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "compare"
VENVS = {
    "ase-gnn": ROOT / ".venv" / "bin" / "python",
    "mace": HERE / ".venv-mace" / "bin" / "python",
    "nequip": HERE / ".venv-nequip" / "bin" / "python",
}
#: model name -> (environment, label in tables)
MODELS = {
    "emt": ("ase-gnn", "EMT"),
    "schnet": ("ase-gnn", "ase-gnn SchNet"),
    "nequip-ours": ("ase-gnn", "ase-gnn NequIP"),
    "nequip-ours-nl": ("ase-gnn", "ase-gnn NequIP, NequIP's loss weights"),
    "mace": ("mace", "MACE-small"),
    "nequip": ("nequip", "NequIP (mir-group)"),
}
#: ase-gnn models -> architecture; "-nl" trains with the loss weights of the NequIP run below
#: (energy per atom : forces : stress = 1 : 1 : 1) instead of ase-gnn's defaults (1 : 10 : 0)
OURS = {"schnet": "SchNet", "nequip-ours": "NequIP", "nequip-ours-nl": "NequIP"}
#: models timed as another model of the same architecture and size (no own speed runs)
SAME_SPEED = {"nequip-ours-nl": "nequip-ours"}
MD_SIZES = [108, 500, 2048]
CUTOFF = 5.0
SPECIES = {"cu": ["Cu"], "ethanol": ["H", "C", "O"]}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per model")
    parser.add_argument("--data", nargs="+", default=["cu", "ethanol"], choices=list(SPECIES))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--sizes", type=int, nargs="+", default=MD_SIZES, choices=sorted(REPEATS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--steps", type=int, default=15, help="timed MD steps per case, at most")
    parser.add_argument("--threads", type=int, default=2, help="threads for training")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="re-time the MD steps of models trained by an earlier run (no data, training, errors)",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="time per atom of energy + forces of the trained Cu models from 108 to 32,000 atoms "
        "(--threads threads, float32; no training)",
    )
    parser.add_argument(
        "--preload",
        metavar="LIBRARY",
        help="with --scaling: run the workers with LD_PRELOAD=LIBRARY, a memory allocator such "
        "as /lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 (results kept apart from glibc's)",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from the saved results"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # JSON: one job in this process
    return parser.parse_args()


# -- workers: run inside the model's own environment ------------------------------------------
def worker(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job (data, train, errors or speed) and return its JSON-able result."""
    if job["kind"] == "data":
        return make_data(job)
    if job["kind"] == "train":
        start = time.perf_counter()
        trainers = {**dict.fromkeys(OURS, train_ours), "mace": train_mace}
        trainers.get(job["model"], train_nequip)(job)
        return {"train_s": time.perf_counter() - start}
    calc = calculator(job)
    if job["kind"] == "errors":
        return test_errors(calc, job)
    if job["kind"] == "scaling":
        return call_speed(calc, job)
    return md_speed(calc, job)


def make_data(job: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    from ase.io import write

    if job["data"] == "cu":
        from ase_gnn.data.generate import generate_emt

        structures = generate_emt("Cu", 300, seed=0, progress=False)
    else:
        from ase_gnn.data.molecules import generate_xtb

        structures = generate_xtb("CH3CH2OH", 600, seed=0, progress=False)
    order = np.random.default_rng(0).permutation(len(structures))
    n = len(structures)
    parts = {"train": order[: int(0.8 * n)], "valid": order[int(0.8 * n) : int(0.9 * n)]}
    parts["test"] = order[int(0.9 * n) :]
    structures = [_labels_only(atoms) for atoms in structures]
    folder = Path(job["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    for name, index in parts.items():
        write(folder / f"{name}.xyz", [structures[k] for k in index], format="extxyz")
    # train + valid together, for trainers that split off their own validation fraction
    both = np.concatenate([parts["train"], parts["valid"]])
    write(folder / "train_valid.xyz", [structures[k] for k in both], format="extxyz")
    return {name: len(index) for name, index in parts.items()}


def _labels_only(atoms):  # type: ignore[no-untyped-def]  # ASE objects
    """A copy with the energy, forces (and stress) only: extra keys such as xTB's ``dipole``
    collide with field names that other packages reserve."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    clean = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if atoms.pbc.all():
        results["stress"] = atoms.get_stress()
    clean.calc = SinglePointCalculator(clean, **results)
    return clean


def train_ours(job: dict[str, Any]) -> None:
    import torch
    from ase.io import read

    import ase_gnn
    from ase_gnn.training import LossWeights, train_model

    folder = Path(job["folder"])
    train = read(folder / "train.xyz", ":")
    valid = read(folder / "valid.xyz", ":")
    torch.manual_seed(0)
    model = ase_gnn.ARCHITECTURES[OURS[job["model"]]](species=SPECIES[job["data"]], cutoff=CUTOFF)
    weights = None  # ase-gnn's defaults
    if job["model"].endswith("-nl"):
        weights = LossWeights(energy=1.0, forces=1.0, stress=1.0 if job["data"] == "cu" else 0.0)
    train_model(model, train, valid, epochs=10**6, weights=weights, time_budget=job["budget"],
        progress=False)  # fmt: skip
    ase_gnn.save_model(model, Path(job["workdir"]) / "model.safetensors")


def train_mace(job: dict[str, Any]) -> None:
    """``mace_run_train`` stopped at the budget, then its best checkpoint exported."""
    folder, workdir = Path(job["folder"]), Path(job["workdir"])
    command = [
        str(Path(sys.executable).with_name("mace_run_train")),
        "--name=mace", "--seed=0", f"--work_dir={workdir}",
        f"--train_file={folder / 'train.xyz'}", f"--valid_file={folder / 'valid.xyz'}",
        "--energy_key=energy", "--forces_key=forces", "--E0s=average",
        "--model=MACE", "--num_channels=32", "--max_L=0", f"--r_max={CUTOFF}",
        "--correlation=3", "--num_interactions=2", "--batch_size=8", "--valid_batch_size=16",
        "--max_num_epochs=100000", "--device=cpu", "--default_dtype=float32",
        "--num_workers=0", "--plot=False", "--eval_interval=1",
    ]  # fmt: skip
    try:
        subprocess.run(command, timeout=job["budget"], capture_output=True, check=True)
    except subprocess.TimeoutExpired:
        pass  # the budget is spent; export the best checkpoint (no further training)
    subprocess.run(
        [*command[:-3], "--max_num_epochs=1", "--restart_latest", "--plot=False"],
        capture_output=True,
        check=True,
    )


def train_nequip(job: dict[str, Any]) -> None:
    """``nequip-train`` with Lightning's ``max_time`` as the budget."""
    folder, workdir = Path(job["folder"]), Path(job["workdir"])
    species = SPECIES[job["data"]]
    periodic = job["data"] == "cu"
    loss = "EnergyForceStressLoss" if periodic else "EnergyForceLoss"
    metrics = "EnergyForceStressMetrics" if periodic else "EnergyForceMetrics"
    coefficients = "{total_energy: 1.0, forces: 1.0" + (", stress: 1.0}" if periodic else "}")
    metric_coefficients = "{total_energy_mae: 1.0, forces_mae: 1.0" + (
        ", stress_mae: 1.0}" if periodic else "}"
    )
    minutes, seconds = divmod(int(job["budget"]), 60)
    config = f"""
run: [train]
cutoff_radius: {CUTOFF}
model_type_names: {species}
data:
  _target_: nequip.data.datamodule.ASEDataModule
  seed: 0
  split_dataset: {{file_path: {folder / "train_valid.xyz"}, train: 0.9, val: 0.1}}
  transforms:
    - _target_: nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper
      model_type_names: ${{model_type_names}}
    - _target_: nequip.data.transforms.NeighborListTransform
      r_max: ${{cutoff_radius}}
  train_dataloader: {{_target_: torch.utils.data.DataLoader, batch_size: 8, shuffle: true}}
  val_dataloader: {{_target_: torch.utils.data.DataLoader, batch_size: 16}}
  stats_manager:
    _target_: nequip.data.CommonDataStatisticsManager
    type_names: ${{model_type_names}}
trainer:
  _target_: lightning.Trainer
  accelerator: cpu
  max_epochs: 100000
  max_time: "00:00:{minutes:02d}:{seconds:02d}"
  logger: false
  enable_progress_bar: false
  callbacks:
    - _target_: lightning.pytorch.callbacks.ModelCheckpoint
      monitor: val0_epoch/weighted_sum
      dirpath: {workdir}
      filename: best
      save_last: true
training_module:
  _target_: nequip.train.EMALightningModule
  ema_decay: 0.99
  loss: {{_target_: nequip.train.{loss}, per_atom_energy: true, coeffs: {coefficients}}}
  val_metrics: {{_target_: nequip.train.{metrics}, coeffs: {metric_coefficients}}}
  optimizer: {{_target_: torch.optim.Adam, lr: 0.005}}
  model:
    _target_: nequip.model.NequIPGNNModel
    seed: 0
    model_dtype: float32
    type_names: ${{model_type_names}}
    r_max: ${{cutoff_radius}}
    num_layers: 3
    l_max: 1
    parity: true
    num_features: 32
    radial_mlp_depth: 2
    radial_mlp_width: 64
    avg_num_neighbors: ${{training_data_stats:num_neighbors_mean}}
    per_type_energy_shifts: ${{training_data_stats:per_atom_energy_mean}}
    per_type_energy_scales: ${{training_data_stats:forces_rms}}
"""
    (workdir / "config.yaml").write_text(config)
    command = [
        str(Path(sys.executable).with_name("nequip-train")),
        "-cp", str(workdir), "-cn", "config.yaml", f"hydra.run.dir={workdir / 'hydra'}",
    ]  # fmt: skip
    subprocess.run(command, capture_output=True, check=True)


def calculator(job: dict[str, Any]):  # type: ignore[no-untyped-def]  # an ASE calculator
    """The ASE calculator of a trained model, in ``job["dtype"]``."""
    workdir = Path(job["workdir"])
    model, dtype = job["model"], job.get("dtype", "float64")
    if model == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if model in OURS:
        from ase_gnn import GNNCalculator

        return GNNCalculator(workdir / "model.safetensors", dtype=dtype)
    if model == "mace":
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=str(workdir / "mace.model"), device="cpu",
                              default_dtype=dtype)  # fmt: skip
    from nequip.integrations.ase import NequIPCalculator

    # The model's dtype is fixed when it is built (model_dtype: float32 here).
    return NequIPCalculator._from_saved_model(
        str(workdir / "best.ckpt"), device="cpu", chemical_species_to_atom_type_map=True
    )


def test_errors(calc, job: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import numpy as np
    from ase.io import read

    energy, forces = [], []
    for atoms in read(Path(job["folder"]) / "test.xyz", ":"):
        reference_e, reference_f = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = calc
        energy.append(abs(atoms.get_potential_energy() - reference_e) / len(atoms))
        forces.append(np.abs(atoms.get_forces() - reference_f).ravel())
    return {
        "energy_mae": 1e3 * float(np.mean(energy)),
        "forces_mae": 1e3 * float(np.mean(np.concatenate(forces))),
    }


def md_speed(calc, job: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import numpy as np
    import torch
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    torch.set_num_threads(1)
    atoms = _rattled_cu(job["size"])
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    atoms.calc = calc
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dynamics.run(2)  # warm-up
    steps = []
    start = time.perf_counter()
    while len(steps) < 5 or (len(steps) < job["steps"] and time.perf_counter() - start < 30):
        step_start = time.perf_counter()
        dynamics.run(1)
        steps.append(time.perf_counter() - step_start)
    result = {
        "step_ms": 1e3 * statistics.median(steps),
        "peak_mib": peak_mib(),
    }
    if job["model"] in OURS:
        from ase_gnn import graph_from_atoms

        graph_start = time.perf_counter()
        for _ in range(5):
            graph_from_atoms(atoms, CUTOFF)
        result["graph_share"] = (time.perf_counter() - graph_start) / 5 / statistics.median(steps)
    return result


def call_speed(calc, job: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Median time of one energy + forces call on rattled fcc Cu of ``job["size"]`` atoms, after
    one warm-up call; at least 2 timed calls, more while under 10 s."""
    atoms = _rattled_cu(job["size"])
    atoms.calc = calc
    atoms.get_forces()  # warm-up
    calls: list[float] = []
    start = time.perf_counter()
    while len(calls) < 2 or time.perf_counter() - start < 10:
        atoms.positions += 1e-3  # a new configuration, so the calculator computes again
        call_start = time.perf_counter()
        atoms.get_forces()
        calls.append(time.perf_counter() - call_start)
    return {
        "call_ms": 1e3 * statistics.median(calls),
        "calls": len(calls),
        "peak_mib": peak_mib(),
    }


def _rattled_cu(size: int):  # type: ignore[no-untyped-def]  # ase.Atoms
    from ase.build import bulk

    atoms = bulk("Cu", cubic=True).repeat(REPEATS[size])
    atoms.rattle(0.05, seed=0)
    return atoms


# -- driver -------------------------------------------------------------------------------------
def run(
    model: str, job: dict[str, Any], threads: int, preload: str | None = None
) -> dict[str, Any]:
    """Run ``job`` for ``model`` in a fresh process of its environment (``preload``: a library
    for ``LD_PRELOAD``)."""
    python = VENVS[MODELS[model][0]]
    if not python.exists():
        sys.exit(f"{python} is missing: run `make bench` to create the benchmark environments")
    env = {**os.environ, **{v: str(threads) for v in THREAD_VARIABLES}}
    if preload:
        env["LD_PRELOAD"] = preload
    done = subprocess.run(
        [str(python), __file__, "--worker", json.dumps({"model": model, **job})],
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        print(f"# {model} {job['kind']} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        if done.returncode == -9:
            return {"failed": "killed by SIGKILL (out of memory?)"}
        return {"failed": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"}
    return json.loads(lines[-1].removeprefix("RESULT "))  # type: ignore[no-any-return]


def versions() -> dict[str, str]:
    """Versions of the packages in every environment that exists."""
    found = {}
    for env, packages in (("ase-gnn", "ase-gnn torch e3nn ase"), ("mace", "mace-torch e3nn"),
                          ("nequip", "nequip e3nn lightning")):  # fmt: skip
        python = VENVS[env]
        if python.exists():
            code = (
                "import importlib.metadata as m, sys; "
                "print(' '.join(f'{p} {m.version(p)}' for p in sys.argv[1:]))"
            )
            out = subprocess.run([str(python), "-c", code, *packages.split()],
                                 capture_output=True, text=True)  # fmt: skip
            found[env] = out.stdout.strip() or out.stderr.strip()[-200:]
    return found


def main() -> None:
    args = parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return
    started = time.perf_counter()
    # Results of earlier runs are kept unless rerun, so one model can be redone alone.
    saved = HERE / "results.json"  # committed beside RESULTS.md; models stay in bench/out
    results: dict[str, dict[str, Any]] = json.loads(saved.read_text()) if saved.exists() else {}
    if args.report_only:
        write_report(args, results)
        return
    if args.scaling:
        scaling(args, results)
    else:
        train_and_time(args, results)
    runs = results.setdefault("_runs", {}).setdefault("commands", [])
    command = " ".join(["python bench/compare.py", *sys.argv[1:]])
    runs.append(f"`{command}` ({(time.perf_counter() - started) / 60:.0f} min)")
    saved.write_text(json.dumps(results, indent=1))
    write_report(args, results)


def train_and_time(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    """Data, training, test errors and MD step times of every model (the step times alone with
    ``--speed-only``), into ``results``."""
    if not args.speed_only:
        results.setdefault("_runs", {})["budget"] = args.budget
    for data in args.data:
        folder = OUT / data
        if not args.speed_only:
            made = run("emt", {"kind": "data", "data": data, "folder": str(folder)}, 1)
            print(f"# {data}: {made}", file=sys.stderr)
        for model in args.models:
            if model == "emt" and data != "cu":
                continue
            workdir = OUT / data / model
            job = {"data": data, "folder": str(folder), "workdir": str(workdir)}
            if args.speed_only:
                entry = results.setdefault(f"{data}/{model}", {})
            else:
                shutil.rmtree(workdir, ignore_errors=True)
                workdir.mkdir(parents=True)
                entry = results[f"{data}/{model}"] = {}
                if model != "emt":
                    entry.update(run(model, {**job, "kind": "train", "budget": args.budget},
                                     args.threads))  # fmt: skip
                entry.update(run(model, {**job, "kind": "errors"}, args.threads))
            if data == "cu" and model not in SAME_SPEED:
                for dtype in args.dtypes:
                    if model == "nequip" and dtype != "float32":
                        entry[f"{dtype}/-"] = {"n/a": "dtype fixed at training"}
                        continue
                    for size in args.sizes:
                        speed = run(model, {**job, "kind": "speed", "dtype": dtype,
                                            "size": size, "steps": args.steps}, 1)  # fmt: skip
                        entry[f"{dtype}/{size}"] = speed
            print(f"#   {data}/{model}: {entry}", file=sys.stderr, flush=True)


def scaling(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    """Time per atom of the trained Cu models at every size of ``REPEATS``, each case in a fresh
    process; a size whose memory, extrapolated from the two sizes before it, would not fit in
    the memory available now is skipped and says so."""
    folder = OUT / "cu"
    prefix = scaling_prefix(args.preload)
    for model in (m for m in args.models if m not in SAME_SPEED):
        entry = results.setdefault(f"cu/{model}", {})
        job = {"data": "cu", "folder": str(folder), "workdir": str(folder / model),
               "kind": "scaling", "dtype": "float32"}  # fmt: skip
        done: list[tuple[int, float]] = []  # (atoms, peak MiB) of the cases that ran
        for size in sorted(REPEATS):
            if len(done) >= 2:
                (n0, m0), (n1, m1) = done[-2:]
                needed = m1 + (m1 - m0) / (n1 - n0) * (size - n1)
                if needed > 0.9 * available_mib():
                    entry[f"{prefix}/{size}"] = {
                        "n/a": f"needs ~{needed / 1024:.0f} GiB, "
                        f"{available_mib() / 1024:.0f} GiB free"
                    }
                    continue
            case = run(model, {**job, "size": size}, args.threads, args.preload)
            entry[f"{prefix}/{size}"] = case
            if "peak_mib" in case:
                done.append((size, case["peak_mib"]))
            print(f"#   cu/{model} N={size}: {case}", file=sys.stderr, flush=True)


def scaling_prefix(preload: str | None) -> str:
    """Result key prefix of a scaling run: ``scaling`` (glibc), ``scaling:tcmalloc_minimal``..."""
    return "scaling" + (
        f":{Path(preload).name.split('.so')[0].removeprefix('lib')}" if preload else ""
    )


def available_mib() -> float:
    """``MemAvailable`` of ``/proc/meminfo`` in MiB (infinite where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def write_report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    """``RESULTS.md`` with the tables and ratios, and ``results.png``."""
    lines = [
        "# Benchmark: ase-gnn beside MACE, NequIP and EMT",
        "",
        "Where ase-gnn loses and why, with profiles: [ANALYSIS.md](ANALYSIS.md).",
        "",
        "Commands (a later run replaces what it redoes): "
        + "; ".join(results["_runs"]["commands"])
        + f". Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}.",
        "",
        "Packages: " + "; ".join(f"{env}: {v}" for env, v in versions().items()),
        "",
        f"Training: {results['_runs'].get('budget', args.budget):.0f} s wall clock per model, "
        f"float32, {args.threads} threads. "
        "Errors: test split through each ASE calculator in float64 (NequIP (mir-group) in "
        "float32, the dtype its model fixes at training). "
        "MD: median VelocityVerlet step, 1 thread, fresh process per case.",
        "",
    ]
    for data in SPECIES:
        if not any(key.startswith(f"{data}/") for key in results):
            continue
        lines += [f"## {data}", "", "| model | energy MAE meV/atom | forces MAE meV/Å |"
                  + "".join(f" {d} {n} ms/step |" for d in args.dtypes for n in args.sizes)
                  * (data == "cu"), "|---" * (3 + len(args.dtypes) * len(args.sizes)
                                              * (data == "cu")) + "|"]  # fmt: skip
        for model in MODELS:
            entry = results.get(f"{data}/{model}")
            if entry is None:
                continue
            row = f"| {MODELS[model][1]} | {_number(entry, 'energy_mae')} | "
            row += f"{_number(entry, 'forces_mae')} |"
            if data == "cu" and model in SAME_SPEED:
                row += f" as {MODELS[SAME_SPEED[model]][1]} |" * len(args.dtypes) * len(args.sizes)
            elif data == "cu":
                row += "".join(
                    f" {_number(entry.get(f'{d}/{n}', entry.get(f'{d}/-', {})), 'step_ms')} |"
                    for d in args.dtypes
                    for n in args.sizes
                )
            lines.append(row)
        lines.append("")
    lines += memory_table(args, results)
    lines += ratios(args, results)
    lines += scaling_table(args, results)
    Path(args.out).write_text("\n".join(lines) + "\n")
    plot(args, results)
    print("\n".join(lines))


def _number(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if isinstance(value, (int, float)):
        return f"{value:.3g}"
    return f"n/a ({entry['n/a']})" if "n/a" in entry else f"failed ({entry.get('failed')})"


def memory_table(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> list[str]:
    """Peak resident memory of the MD processes and ase-gnn's graph-construction share (Cu)."""
    dtype = args.dtypes[0]
    lines = [f"## Peak memory and graph construction (Cu, {dtype})", "",
             "| model | " + " | ".join(f"N = {n}: peak MiB / graph %" for n in args.sizes) + " |",
             "|---|" + "---|" * len(args.sizes)]  # fmt: skip
    for model in MODELS:
        entry = results.get(f"cu/{model}")
        if entry is None or model in SAME_SPEED:
            continue
        cells = []
        for n in args.sizes:
            case = entry.get(f"{dtype}/{n}", {})
            share = case.get("graph_share")
            graph = f"{100 * share:.1f} %" if share is not None else "-"
            cells.append(f"{_number(case, 'peak_mib')} / {graph}")
        lines.append(f"| {MODELS[model][1]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def ratios(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> list[str]:
    """Step-time ratios ase-gnn / MACE, ase-gnn / NequIP and ase-gnn / EMT on Cu."""
    pairs = [("schnet", "emt"), ("schnet", "mace"), ("nequip-ours", "nequip"),
             ("nequip-ours", "mace")]  # fmt: skip
    lines = ["## Ratios of MD step time (Cu)", "", "| ours / theirs | dtype | "
             + " | ".join(f"N = {n}" for n in args.sizes) + " |",
             "|---|---|" + "---|" * len(args.sizes)]  # fmt: skip
    for ours, theirs in pairs:
        a, b = results.get(f"cu/{ours}", {}), results.get(f"cu/{theirs}", {})
        for dtype in args.dtypes:
            cells = []
            for n in args.sizes:
                x = a.get(f"{dtype}/{n}", {}).get("step_ms")
                y = b.get(f"{dtype}/{n}", {}).get("step_ms")
                cells.append(f"{x / y:.2f}" if x and y else "-")
            lines.append(f"| {MODELS[ours][1]} / {MODELS[theirs][1]} | {dtype} | "
                         + " | ".join(cells) + " |")  # fmt: skip
    return [*lines, ""]


def scaling_table(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> list[str]:
    """Time per atom and peak memory of energy + forces from 108 to 32,000 atoms (Cu), one table
    per memory allocator that was run."""
    prefixes = sorted({key.split("/")[0] for entry in results.values() for key in entry
                       if key.startswith("scaling")})  # fmt: skip
    return [line for prefix in prefixes for line in _scaling_table(args, results, prefix)]


def _scaling_table(
    args: argparse.Namespace, results: dict[str, dict[str, Any]], prefix: str
) -> list[str]:
    sizes = sorted(REPEATS)
    rows = []
    for model in MODELS:
        entry = results.get(f"cu/{model}", {})
        cases = [entry.get(f"{prefix}/{n}", {}) for n in sizes]
        if not any(cases):
            continue
        cells, per_atom = [], []
        for n, case in zip(sizes, cases):
            if "call_ms" in case:
                per_atom.append(1e3 * case["call_ms"] / n)
                cells.append(f"{per_atom[-1]:.0f} ({case['peak_mib'] / 1024:.1f})")
            else:
                cells.append(_number(case, "call_ms") if case else "-")
        growth = f"{per_atom[-1] / min(per_atom):.2f}" if len(per_atom) > 1 else "-"
        rows.append(f"| {MODELS[model][1]} | " + " | ".join(cells) + f" | {growth} |")
    if not rows:
        return []
    allocator = prefix.partition(":")[2] or "glibc malloc"
    option = f" --preload .../lib{prefix.partition(':')[2]}.so" if ":" in prefix else ""
    return [
        f"## Time per atom up to 32,000 atoms (Cu, float32, {args.threads} threads, {allocator})",
        "",
        "Energy + forces of rattled fcc Cu, median call after a warm-up, fresh process per case: "
        "µs per atom (peak resident GiB). Growth: µs/atom at the largest size over the lowest "
        f"µs/atom (1.00 is linear scaling). `python bench/compare.py --scaling{option}`.",
        "",
        "| model | " + " | ".join(f"N = {n}" for n in sizes) + " | growth |",
        "|---|" + "---|" * (len(sizes) + 1),
        *rows,
        "",
    ]


def plot(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 4), layout="constrained")
    speed, error, large = figure.subplots(1, 3)
    dtype = args.dtypes[0]
    for index, model in enumerate(MODELS):
        style = {"color": f"C{index}", "label": MODELS[model][1]}
        entry = results.get(f"cu/{model}", {})
        timed = results.get(f"cu/{SAME_SPEED.get(model, model)}", {})
        times = [timed.get(f"{dtype}/{n}", {}).get("step_ms") for n in args.sizes]
        if all(isinstance(t, float) for t in times) and model not in SAME_SPEED:
            per_atom = [1e3 * t / n for t, n in zip(times, args.sizes)]
            speed.plot(args.sizes, per_atom, "o-", **style)
        if isinstance(entry.get("forces_mae"), float) and isinstance(times[0], float):
            error.scatter(times[0], entry["forces_mae"], **style)
        for prefix, line in (("scaling", "o-"), ("scaling:tcmalloc_minimal", "s--")):
            ran = [(n, entry[f"{prefix}/{n}"]["call_ms"]) for n in sorted(REPEATS)
                   if "call_ms" in entry.get(f"{prefix}/{n}", {})]  # fmt: skip
            if ran:
                large.plot([n for n, _ in ran], [1e3 * t / n for n, t in ran], line,
                           **(style if line == "o-" else {"color": style["color"]}))  # fmt: skip
    speed.set(xscale="log", xlabel="atoms", ylabel=f"µs per atom per MD step ({dtype})",
              title="speed, fcc Cu, 1 thread")  # fmt: skip
    error.set(xlabel=f"ms per MD step at {args.sizes[0]} atoms", ylabel="force MAE / meV/Å",
              title=f"accuracy after {results['_runs'].get('budget', args.budget):.0f} s "
              "of training")  # fmt: skip
    large.set(xscale="log", yscale="log", xlabel="atoms", ylabel="µs per atom per energy + forces",
              title=f"float32, {args.threads} threads; dashed: tcmalloc")  # fmt: skip
    for axes in (speed, error, large):
        if axes.has_data():
            axes.legend()
    figure.savefig(Path(args.out).with_name("results.png"), dpi=120)


if __name__ == "__main__":
    main()
