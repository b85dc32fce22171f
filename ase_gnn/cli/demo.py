"""The main job end to end: EMT Cu data → train SchNet → test errors → 1 ps NVE MD vs EMT."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from ase_gnn.analysis.plots import learning_curve_plot
from ase_gnn.calculators.calculator import GNNCalculator
from ase_gnn.data.generate import generate_emt, write_dataset
from ase_gnn.models.io import save_model
from ase_gnn.models.schnet import SchNet
from ase_gnn.simulate.md import run_nve
from ase_gnn.training import GraphDataset, History, evaluate_metrics, train_model
from ase_gnn.training.data import split
from ase_gnn.training.setup import parity_plots


def _train(
    out: Path,
    train: list[Atoms],
    valid: list[Atoms],
    test: list[Atoms],
    seconds: float,
    seed: int,
    progress: bool,
    log: Any,
) -> tuple[SchNet, History, dict[str, float]]:
    """Step 2 of the demo: the trained model (also saved, with plots), its history and test
    metrics."""
    model = SchNet(species=["Cu"], cutoff=5.0)
    history = train_model(
        model, train, valid, epochs=10_000, time_budget=seconds, seed=seed, progress=progress
    )
    save_model(model, out / "cu_schnet.safetensors")
    metrics = evaluate_metrics(model, GraphDataset(test, model.cutoff, model.dtype))
    log(
        f"      {len(history.train_loss)} epochs in {history.seconds:.0f} s; test MAE: "
        f"energy {1e3 * metrics['energy_mae']:.2f} meV/atom, "
        f"forces {1e3 * metrics['forces_mae']:.1f} meV/Å"
    )
    learning_curve_plot(history.train_loss, history.valid, out / "learning_curve.png")
    parity_plots(model, test, out / "parity.png")
    return model, history, metrics


def run_demo(
    out: str | Path = "demo_out",
    num_structures: int = 300,
    train_seconds: float = 240.0,
    md_steps: int = 500,
    md_timestep_fs: float = 2.0,
    seed: int = 0,
    progress: bool = True,
    log: Any = print,
) -> dict[str, float]:
    """Run the demo and write its outputs to ``out``.

    Parameters
    ----------
    out
        Output folder: ``cu_emt.extxyz``, ``cu_schnet.safetensors``, ``parity.png``,
        ``learning_curve.png``, ``summary.json``.
    num_structures
        EMT structures to generate (80 % train, 10 % validation, 10 % test).
    train_seconds
        Wall-time budget for training, s.
    md_steps, md_timestep_fs
        Length of the NVE run on a 108-atom cell (default 500 × 2 fs = 1 ps).
    seed
        Seed of data generation, splitting and training.
    progress
        Show progress bars.
    log
        Function that prints a line.

    Returns
    -------
    dict
        The figures printed (test MAEs, drift, MD errors against EMT), also in ``summary.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log(f"[1/4] generating {num_structures} Cu structures with EMT")
    structures = generate_emt("Cu", num_structures, seed=seed, progress=progress)
    write_dataset(structures, out / "cu_emt.extxyz")
    train, valid, test = split(structures, [0.1, 0.1], seed)

    log(f"[2/4] training SchNet on {len(train)} structures for up to {train_seconds:.0f} s")
    model, history, metrics = _train(out, train, valid, test, train_seconds, seed, progress, log)

    log(f"[3/4] NVE MD, 108 Cu atoms, {md_steps} × {md_timestep_fs} fs at 300 K with the model")
    atoms = bulk("Cu", cubic=True).repeat((3, 3, 3))
    start = time.perf_counter()
    trajectory = run_nve(
        atoms,
        GNNCalculator(model),
        steps=md_steps,
        timestep_fs=md_timestep_fs,
        temperature_K=300.0,
        interval=10,
        seed=seed,
        progress=progress,
    )
    md_seconds = time.perf_counter() - start
    log(
        f"      {1e3 * md_seconds / md_steps:.1f} ms/step; total-energy drift "
        f"{trajectory.drift_per_atom():+.3f} meV/atom/ps, fluctuation "
        f"{trajectory.fluctuation_per_atom():.3f} meV/atom"
    )

    log("[4/4] comparing the trajectory's frames with EMT")
    energy_mae, forces_mae = _errors_against_emt(model, trajectory.frames)
    summary = {
        "train_structures": len(train),
        "epochs": len(history.train_loss),
        "test_energy_mae_meV_per_atom": 1e3 * metrics["energy_mae"],
        "test_forces_mae_meV_per_A": 1e3 * metrics["forces_mae"],
        "md_ms_per_step": 1e3 * md_seconds / md_steps,
        "nve_drift_meV_per_atom_per_ps": trajectory.drift_per_atom(),
        "nve_fluctuation_meV_per_atom": trajectory.fluctuation_per_atom(),
        "md_vs_emt_energy_mae_meV_per_atom": 1e3 * energy_mae,
        "md_vs_emt_forces_mae_meV_per_A": 1e3 * forces_mae,
    }
    log(
        f"      along the MD trajectory vs EMT: energy MAE "
        f"{summary['md_vs_emt_energy_mae_meV_per_atom']:.2f} meV/atom, forces MAE "
        f"{summary['md_vs_emt_forces_mae_meV_per_A']:.1f} meV/Å"
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log(f"wrote {out}/: cu_schnet.safetensors, parity.png, learning_curve.png, summary.json")
    return summary


def _errors_against_emt(model: SchNet, frames: list[Atoms]) -> tuple[float, float]:
    """Mean absolute errors of the model against EMT on ``frames``: (eV/atom, eV/Å)."""
    energy_errors, force_errors = [], []
    model_calc = GNNCalculator(model)
    for frame in frames:
        reference, predicted = frame.copy(), frame.copy()
        reference.calc, predicted.calc = EMT(), model_calc
        energy_errors.append(
            (predicted.get_potential_energy() - reference.get_potential_energy()) / len(frame)
        )
        force_errors.append(np.abs(predicted.get_forces() - reference.get_forces()).mean())
    return float(np.mean(np.abs(energy_errors))), float(np.mean(force_errors))
