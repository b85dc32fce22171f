"""Short-range against long-range SchNet on NaCl with full Coulomb, at equal training time.

Usage::

    python bench/long_range_ionic.py                        # 600 structures, 240 s per model
    python bench/long_range_ionic.py --budget 60 --structures 300 --out long_range_ionic.png

Data: ``ase-gnn generate ionic`` (Fumi–Tosi NaCl with formal charges, labelled by LAMMPS:
crystals, MD, Schottky pairs, slabs and oppositely charged fragment pairs 2.6–16 Å apart), an
80/10/10 split, 60 more held-out fragment pairs (seed 1) for the distance bins, and one
dissociation curve of an Na₄Cl₃⁺/Na₃Cl₄⁻-type pair from contact to 20 Å
(past the 16 Å of the training data). Three SchNet models of the same size (5 Å cutoff, 3
interactions of width 64) train for the same wall-clock ``--budget`` on 2 threads:

* ``short-range``: no long-range term;
* ``latent charges``: ``long_range=True``, charges learned from energies and forces alone;
* ``charges target``: ``long_range=True`` and the formal charges as a node target
  (``charges_weight = 1``).

Printed: test energy MAE (meV/atom) and force MAE (meV/Å) overall and per config type, the
energy MAE of fragment pairs (eV per structure) binned by their shortest inter-fragment distance
(inside the cutoff, 1–2× and beyond 2× the cutoff), the same for the dissociation curve, and an
NVE check (64-ion crystal at 600 K, 1 fs, 2 ps): the drift and spread of the total energy of
each model next to those of the reference potential itself. The figure ``--out`` shows the
dissociation curves and their errors.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.md.verlet import VelocityVerlet

from ase_gnn import GNNCalculator
from ase_gnn.data.ionic import (
    dissociation_curve,
    formal_charges,
    fumi_tosi,
    generate_ionic,
)
from ase_gnn.models.schnet import SchNet
from ase_gnn.simulate.md import thermalize_momenta
from ase_gnn.training import LossWeights, prepare_model, train_model

CUTOFF = 5.0
VARIANTS = {
    "short-range": (False, 0.0),
    "latent charges": (True, 0.0),
    "charges target": (True, 1.0),
}


def _bins(separation: np.ndarray) -> dict[str, np.ndarray]:
    return {
        f"< {CUTOFF:.0f} Å": separation < CUTOFF,
        f"{CUTOFF:.0f}-{2 * CUTOFF:.0f} Å": (separation >= CUTOFF) & (separation < 2 * CUTOFF),
        f"> {2 * CUTOFF:.0f} Å": separation >= 2 * CUTOFF,
    }


def _predict(model: SchNet, structures: list[Atoms]) -> tuple[np.ndarray, list[np.ndarray]]:
    calc = GNNCalculator(model, dtype="float64")
    energies, forces = [], []
    for atoms in structures:
        probe = atoms.copy()
        probe.calc = calc
        energies.append(probe.get_potential_energy())
        forces.append(probe.get_forces())
    return np.array(energies), forces


def _nve_start() -> Atoms:
    """The NVE starting point: an MD snapshot of the 64-ion crystal (seed 11)."""
    atoms = next(
        a for a in generate_ionic(40, seed=11, progress=False) if a.info["config_type"] == "md"
    )
    return Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)


def _nve(
    calculator: Calculator, start: Atoms, seed: int = 0, steps: int = 2000
) -> tuple[float, float]:
    """Drift (meV/atom/ps, linear fit) and spread (meV/atom, std) of the NVE total energy."""
    atoms = start.copy()
    atoms.set_initial_charges(formal_charges(atoms))
    atoms.calc = calculator
    thermalize_momenta(atoms, 600.0, rng=np.random.default_rng(seed))
    dynamics = VelocityVerlet(atoms, 1.0 * units.fs)
    totals = []
    for _ in range(steps // 10):
        dynamics.run(10)
        totals.append(atoms.get_total_energy() / len(atoms))
    times = np.arange(len(totals)) * 10 * 1e-3  # ps
    slope = np.polyfit(times, totals, 1)[0]
    return 1e3 * slope, 1e3 * float(np.std(totals))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=600)
    parser.add_argument("--budget", type=float, default=240.0, help="training seconds per model")
    parser.add_argument("--out", default="long_range_ionic.png")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = generate_ionic(args.structures, seed=0, progress=False)
    n_train, n_valid = int(0.8 * len(data)), int(0.1 * len(data))
    train, valid, test = (
        data[:n_train],
        data[n_train : n_train + n_valid],
        data[n_train + n_valid :],
    )
    curve = dissociation_curve(np.linspace(2.8, 20.0, 44), seed=5)
    curve_separation = np.array([a.info["separation"] for a in curve])
    curve_reference = np.array([a.get_potential_energy() for a in curve])
    # fragment pairs for the distance bins: a held-out set of clusters (seed 1), as the test
    # split alone holds only a handful
    extra = generate_ionic(90, seed=1, fractions={"cluster": 1.0}, progress=False)
    pairs = [a for a in test + extra if "separation" in a.info]
    pair_separation = np.array([a.info["separation"] for a in pairs])
    print(f"{len(train)}/{len(valid)}/{len(test)} structures, {len(pairs)} held-out fragment pairs")

    nve_start = _nve_start()
    results, curves = {}, {}
    for name, (long_range, charges_weight) in VARIANTS.items():
        model = SchNet(species=["Na", "Cl"], cutoff=CUTOFF, hidden_channels=64,
                       num_interactions=3, num_radial=16, long_range=long_range)  # fmt: skip
        prepare_model(model, train)
        start = time.perf_counter()
        history = train_model(model, train, valid, epochs=100_000, time_budget=args.budget,
                              batch_size=8, fit_reference_energies=False, progress=False,
                              weights=LossWeights(charges=charges_weight))  # fmt: skip
        seconds = time.perf_counter() - start
        energies, forces = _predict(model, test)
        reference = np.array([a.get_potential_energy() for a in test])
        per_atom = np.abs(energies - reference) / np.array([len(a) for a in test])
        force_errors = [np.abs(f - a.get_forces()).mean() for f, a in zip(forces, test)]
        types = np.array([a.info["config_type"] for a in test])
        pair_energies, _ = _predict(model, pairs)
        pair_errors = np.abs(pair_energies - np.array([a.get_potential_energy() for a in pairs]))
        curve_energies, _ = _predict(model, curve)
        curves[name] = curve_energies
        curve_errors = np.abs(curve_energies - curve_reference)
        results[name] = {
            "epochs": len(history.rows),
            "seconds": seconds,
            "energy": 1e3 * per_atom.mean(),
            "forces": 1e3 * float(np.mean(force_errors)),
            "types": {
                t: (
                    1e3 * per_atom[types == t].mean(),
                    1e3 * float(np.mean(np.array(force_errors)[types == t])),
                )
                for t in sorted(set(types))
            },  # fmt: skip
            "pairs": {k: pair_errors[m].mean() for k, m in _bins(pair_separation).items()},
            "curve": {k: curve_errors[m].mean() for k, m in _bins(curve_separation).items()},
            "nve": _nve(GNNCalculator(model), nve_start),
        }

    print(
        f"\n{'model':16s} {'epochs':>6s} {'E meV/at':>9s} {'F meV/Å':>8s}   per config type (E, F)"
    )
    for name, row in results.items():
        types = "  ".join(f"{t} {e:.1f}/{f:.0f}" for t, (e, f) in row["types"].items())
        print(f"{name:16s} {row['epochs']:6d} {row['energy']:9.2f} {row['forces']:8.1f}   {types}")
    for key, title in (("pairs", "held-out fragment pairs"), ("curve", "dissociation curve")):
        print(
            f"\nenergy MAE of the {title} (eV per structure), by shortest inter-fragment distance"
        )
        print(f"{'model':16s} " + " ".join(f"{k:>10s}" for k in results["short-range"][key]))
        for name, row in results.items():
            print(f"{name:16s} " + " ".join(f"{v:10.3f}" for v in row[key].values()))
    reference_nve = _nve(fumi_tosi(), nve_start)
    print("\nNVE, 64 ions at 600 K, 1 fs, 2 ps: drift (meV/atom/ps), spread (meV/atom)")
    print(f"{'Fumi-Tosi (LAMMPS)':20s} {reference_nve[0]:8.3f} {reference_nve[1]:8.3f}")
    for name, row in results.items():
        print(f"{name:20s} {row['nve'][0]:8.3f} {row['nve'][1]:8.3f}")
    _figure(curve_separation, curve_reference, curves, args.out)


def _figure(separation, reference, curves, path) -> None:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(separation, reference - reference[-1], "k-", lw=2.5, label="Fumi-Tosi (LAMMPS)")
    for name, energies in curves.items():
        left.plot(separation, energies - reference[-1], "o-", ms=3, label=name)
        right.plot(separation, np.abs(energies - reference), "o-", ms=3, label=name)
    for axis in (left, right):
        for multiple in (1, 2):
            axis.axvline(multiple * CUTOFF, color="0.6", ls="--", lw=0.8)
        axis.set_xlabel("shortest inter-fragment distance (Å)")
    left.set_ylabel("E − E(20 Å) (eV)")
    right.set(ylabel="|error| (eV)", yscale="log")
    left.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
