"""Committee spread as an uncertainty: does it grow off the training data and rank the error?

Trains K SchNet members (seeds 0…K−1, a wall-time budget each) on EMT Cu data without
surfaces, then reports, per group of structures (held-out, compressed by 7 %, heated to a melt,
surfaces never seen), the mean per-atom force spread ``forces_std`` and the true force error
against EMT, and the Spearman rank correlation between spread and error over held-out structures
and over all of them, per structure and per atom.

Usage::

    python bench/committee.py                    # K = 4, 60 s per member
    python bench/committee.py --members 3 --budget 20
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from scipy.stats import spearmanr

from ase_gnn import CommitteeCalculator, SchNet
from ase_gnn.data.generate import generate_emt
from ase_gnn.simulate.md import thermalize_momenta
from ase_gnn.training import train_model


def groups(data: list[Atoms], count: int) -> dict[str, list[Atoms]]:
    """Held-out structures and three kinds the members never saw."""
    held_out = [a for a in data if a.info["config_type"] != "surface"][-count:]
    compressed, melted = [], []
    rng = np.random.default_rng(0)
    for atoms in held_out:
        squeezed = atoms.copy()
        squeezed.set_cell(atoms.cell * 0.93, scale_atoms=True)
        compressed.append(squeezed)
        hot = atoms.copy()
        hot.calc = EMT()
        thermalize_momenta(hot, 3000.0, rng=rng)
        Langevin(
            hot, 2 * units.fs, temperature_K=3000.0, friction=0.02 / units.fs, fixcm=False, rng=rng
        ).run(50)
        melted.append(hot)
    surfaces = [a for a in data if a.info["config_type"] == "surface"][:count]
    return {
        "held-out": held_out,
        "compressed 7 %": compressed,
        "melted": melted,
        "surfaces": surfaces,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per member")
    parser.add_argument("--structures", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = generate_emt("Cu", args.structures, seed=0, progress=False)
    training = [a for a in data if a.info["config_type"] != "surface"][:-30]
    members = []
    for seed in range(args.members):
        torch.manual_seed(seed)
        model = SchNet(["Cu"])
        train_model(model, training[:-20], training[-20:], epochs=100_000, time_budget=args.budget,
            seed=seed, progress=False)  # fmt: skip
        members.append(model)
    calc = CommitteeCalculator(members)
    emt = EMT()
    print(f"# {args.members} SchNet members, {args.budget:g} s each, trained without surfaces\n")
    print("| structures | mean forces_std meV/Å | mean force error meV/Å |")
    print("|---|---|---|")
    spreads: dict[str, list[np.ndarray]] = {}
    errors: dict[str, list[np.ndarray]] = {}
    for name, structures in groups(data, 30).items():
        for atoms in structures:
            atoms = atoms.copy()
            reference = emt.get_forces(atoms)
            atoms.calc = calc
            error = np.linalg.norm(atoms.get_forces() - reference, axis=1)
            spreads.setdefault(name, []).append(calc.get_property("forces_std", atoms))
            errors.setdefault(name, []).append(error)
        spread, error = np.concatenate(spreads[name]), np.concatenate(errors[name])
        print(f"| {name} | {1e3 * spread.mean():.1f} | {1e3 * error.mean():.1f} |")
    print()
    for label, names in (("held-out", ["held-out"]), ("all", list(spreads))):
        per_structure = [
            spearmanr([s.mean() for n in names for s in spreads[n]],
                      [e.mean() for n in names for e in errors[n]]).statistic,
            spearmanr(np.concatenate([s for n in names for s in spreads[n]]),
                      np.concatenate([e for n in names for e in errors[n]])).statistic,
        ]  # fmt: skip
        print(f"Spearman(spread, error) over {label}: per structure {per_structure[0]:.3f}, "
              f"per atom {per_structure[1]:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
