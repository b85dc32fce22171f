"""Attributions against known energy decompositions, for every method.

Trains a small SchNet on each data set for a wall-time budget, then explains held-out structures
and reports the correlation (Pearson / Spearman) of

- bond scores (edge level, both directions summed) with the true pair energies V(r) of every
  bond, for the pair potentials (Lennard-Jones argon, Morse copper); the learned mask of
  ``gnn_explainer`` is an unsigned importance and is compared with |V|;
- atom scores with the true per-atom energies (ASE's ``energies``: half of each pair for the pair
  potentials, EMT's own decomposition for EMT copper), at edge level (each bond split between
  its atoms) and at atom level;

plus the mean |completeness gap| relative to |f(x) − f(baseline)|, the seconds per structure, and
the share of the energy by distance band (the long-range probe).

Usage::

    python bench/explain_groundtruth.py                 # 90 s of training per data set
    python bench/explain_groundtruth.py --budget 30 --structures 4 --methods integrated_gradients
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.lj import LennardJones
from ase.calculators.morse import MorsePotential

from ase_gnn import SchNet
from ase_gnn.data.generate import generate_emt, generate_lennard_jones, generate_morse
from ase_gnn.training import GraphDataset, evaluate_metrics, prepare_model, train_model
from explain import METHODS, Explainer
from explain.groundtruth import bond_energies, correlation

OPTIONS = {
    "gradient_shap": {"n_samples": 32},
    "shapley_value_sampling": {"n_samples": 4},
}


def datasets(
    count: int,
) -> dict[str, tuple[list[Atoms], str, Callable[[], Calculator] | None]]:
    """Labelled structures, the calculator of their isolated-atom energies E0 and, for pair
    potentials, the calculator of the pair energies."""
    morse = {"epsilon": 0.3429, "r0": 2.866, "rho0": 1.3588 * 2.866}
    return {
        "LJ argon": (
            generate_lennard_jones(count, seed=0, progress=False),
            "isolated:lj",
            lambda: LennardJones(sigma=3.4, epsilon=0.0104, rc=5.0, ro=4.0, smooth=True),
        ),
        "Morse Cu": (
            generate_morse(count, seed=0, progress=False),
            "isolated:morse",
            lambda: MorsePotential(**morse, rcut1=4.0 / 2.866, rcut2=5.0 / 2.866),
        ),
        "EMT Cu": (generate_emt("Cu", count, seed=0, progress=False), "isolated:emt", None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=90.0, help="training seconds per set")
    parser.add_argument("--data", type=int, default=200, help="structures per data set")
    parser.add_argument("--structures", type=int, default=6, help="held-out structures explained")
    parser.add_argument("--methods", nargs="+", default=sorted(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# explain_groundtruth  torch {torch.__version__}  threads={args.threads}")
    print(f"# SchNet(hidden 32, 2 interactions), {args.budget:g} s training per data set\n")
    print(
        "| data | method | bond r Pearson | bond r Spearman | atom r (edge level) "
        "| atom r (atom level) | mean abs gap / span | s per structure |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, (structures, isolated, pair) in datasets(args.data).items():
        split = int(0.8 * len(structures))
        train, test = structures[:split], structures[split:]
        element = structures[0].get_chemical_symbols()[0]
        model = SchNet([element], hidden_channels=32, num_interactions=2)
        # The physical E0 (isolated atom), not a least-squares fit: the attributions' baseline
        # "isolated atoms" must be what the reference calculator gives for them.
        prepare_model(model, train, isolated)
        train_model(
            model, train, test[:10], epochs=10_000, time_budget=args.budget,
            fit_reference_energies=False, progress=False,
        )  # fmt: skip
        metrics = evaluate_metrics(model, GraphDataset(test, model.cutoff, dtype=model.dtype))
        model = model.double()
        explained = [a for a in test if len(a) >= 8][: args.structures]
        for method in args.methods:
            row = _row(model, method, explained, pair)
            print(f"| {name} | {method} | {row} |", flush=True)
        bands = _bands(model, explained)
        print(
            f"|  {name}: test MAE {1e3 * metrics['energy_mae']:.2f} meV/atom, "
            f"{1e3 * metrics['forces_mae']:.1f} meV/Å; IG energy share by distance: {bands} |"
        )


def _row(
    model: SchNet,
    method: str,
    structures: list[Atoms],
    pair: Callable[[], Calculator] | None,
) -> str:
    options = OPTIONS.get(method, {})
    start = time.perf_counter()
    edge = Explainer(model, method, level="edge", **options).explain(structures)
    atom = Explainer(model, method, level="atom", **options).explain(structures)
    seconds = (time.perf_counter() - start) / len(structures)
    true_atoms = np.concatenate([a.get_potential_energies() for a in structures])
    edge_atoms = correlation(np.concatenate([a.node for a in edge]), true_atoms)
    atom_atoms = correlation(np.concatenate([a.node for a in atom]), true_atoms)
    bond = {"pearson": float("nan"), "spearman": float("nan")}
    if pair is not None:
        scores, true = zip(*(bond_energies(a, pair) for a in edge))
        # A learned mask is an unsigned importance: compare it with |V|.
        magnitude = np.abs if METHODS[method].mask else np.asarray
        bond = correlation(np.concatenate(scores), magnitude(np.concatenate(true)))
    gaps = [
        abs(a.completeness_gap) / max(abs(a.target_value - a.baseline_value), 1e-12)
        for a in edge + atom
    ]
    return (
        f"{bond['pearson']:.3f} | {bond['spearman']:.3f} | {edge_atoms['pearson']:.3f} "
        f"| {atom_atoms['pearson']:.3f} | {np.mean(gaps):.2e} | {seconds:.2f}"
    )


def _bands(model: SchNet, structures: list[Atoms]) -> str:
    totals: dict[str, float] = {}
    for attribution in Explainer(model, level="edge").explain(structures):
        for band, value in attribution.by_distance([0, 2, 3, 4, 5]).items():
            totals[band] = totals.get(band, 0.0) + value
    whole = sum(totals.values())
    return ", ".join(f"{band} {100 * value / whole:.0f} %" for band, value in totals.items())


if __name__ == "__main__":
    main()
