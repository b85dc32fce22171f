"""Node-, edge- and graph-level tasks on generated data, each beside a simple baseline.

1. Ethanol, GFN2-xTB (tblite) Langevin MD at 500 K: one SchNet trained on energy and forces
   together with heads for partial charges (node), Wiberg bond orders and distances (edge),
   HOMO-LUMO gap and dipole magnitude (graph). Baselines: the per-element mean (charges), the
   per-element-pair mean (bond orders, distances), the training mean (gap, dipole).
2. Cu crystal phases, EMT: fcc, bcc and hcp crystals (strained, rattled, 300-900 K MD) and
   the liquid (EMT MD at 2500 K), classified by a graph head trained with the energy.
   Baseline: the majority class.
3. Random Cu-Au alloys, EMT: masked species (labels unused: the pretraining head of
   :mod:`ase_gnn.training.pretrain`; baseline: always the more common element), and the energy per
   atom (baseline: the composition-only model E = Σ_Z n_Z E_Z, fitted by least squares).
4. Unsupervised, with a SchNet trained on bulk Cu EMT data only (crystals, strained, MD):
   KMeans clusters of the atomic environments of a (111) slab with a vacancy against the known
   classes (surface, subsurface, vacancy neighbour, bulk), and of a bicrystal with Σ3 twin
   boundaries against the distance from the twin plane, as adjusted Rand index; and anomaly
   scores of held-out bulk structures against compressed (−7 %), strongly rattled (0.3 Å, as
   in a melt) and surface structures (ROC AUC). Baselines: clusters of the coordination
   number within 3 Å, and anomaly scores from the model's energy per atom (distance to the
   training mean).

Usage::

    OMP_NUM_THREADS=1 python bench/tasks.py               # 90 s of training per task
    OMP_NUM_THREADS=1 python bench/tasks.py --budget 20   # a quick look
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict

import numpy as np
import torch
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin

from ase_gnn import SchNet, graph_from_atoms
from ase_gnn.data.generate import generate_emt_alloy
from ase_gnn.data.molecules import generate_xtb
from ase_gnn.simulate.md import thermalize_momenta
from ase_gnn.training import GraphDataset, evaluate_metrics
from ase_gnn.training.config import HeadConfig, RunConfig, TrainConfig
from ase_gnn.training.data import fit_atomic_energies, head_labels
from ase_gnn.training.pretrain import pretrain
from ase_gnn.training.setup import prepare_model
from ase_gnn.training.trainer import Trainer


def train_with_heads(
    structures: list[Atoms], heads: tuple[HeadConfig, ...], budget: float, cutoff: float
) -> tuple[SchNet, list[Atoms], list[Atoms]]:
    """SchNet trained on energy, forces and ``heads`` (80/10/10 split); test and train sets."""
    n = len(structures)
    train, valid, test = (
        structures[: n * 8 // 10],
        structures[n * 8 // 10 : n * 9 // 10],
        structures[n * 9 // 10 :],
    )
    species = sorted({s for a in structures for s in a.get_chemical_symbols()})
    model = SchNet(species, cutoff=cutoff)
    prepare_model(model, train, "fit")
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(
            heads=heads,
            run=RunConfig(epochs=100_000, time_budget=budget, out_dir=folder, progress=False),
        )
        Trainer(model, config).fit(train, valid)
    return model, test, train


def _metrics(model: SchNet, test: list[Atoms], heads: tuple[HeadConfig, ...]) -> dict[str, float]:
    return evaluate_metrics(
        model, GraphDataset(test, model.cutoff, model.dtype, heads=heads), heads=heads
    )


def baseline(train: list[Atoms], test: list[Atoms], head: HeadConfig, cutoff: float) -> float:
    """MAE (regression) or accuracy (classification) of the simple baseline of the module doc."""

    def labelled(structures: list[Atoms]) -> list[tuple[np.ndarray, np.ndarray]]:
        rows = []
        for atoms in structures:
            graph = graph_from_atoms(atoms, cutoff)
            values = head_labels(atoms, graph, [head])[head.name].numpy()
            if head.level == "node":
                groups = atoms.numbers
            elif head.level == "edge":
                groups = np.sort(atoms.numbers[graph.edge_index.numpy()], axis=0)
                groups = groups[0] * 1000 + groups[1]
            else:
                groups = np.zeros(1, dtype=int)
            rows.append((groups, values))
        return rows

    table: dict[int, list[float]] = defaultdict(list)
    for groups, values in labelled(train):
        for g, v in zip(groups, values):
            table[int(g)].append(v)
    errors = []
    for groups, values in labelled(test):
        for g, v in zip(groups, values):
            if head.task == "classification":
                counts = np.bincount(np.asarray(table[int(g)], dtype=int))
                errors.append(float(np.argmax(counts) == v))
            else:
                errors.append(abs(float(np.mean(table[int(g)])) - float(v)))
    return float(np.mean(errors))


def ethanol(count: int, budget: float) -> None:
    structures = generate_xtb("CH3CH2OH", count, seed=0, progress=False)
    for atoms in structures:
        atoms.arrays["distance"] = atoms.get_all_distances()
    heads = (
        HeadConfig("charges", "node", weight=100.0),
        HeadConfig("bond_orders", "edge", weight=10.0),
        HeadConfig("distance", "edge"),
        HeadConfig("homo_lumo_gap", "graph"),
        HeadConfig("dipole", "graph", weight=10.0),
    )
    model, test, train = train_with_heads(structures, heads, budget, cutoff=4.0)
    metrics = evaluate_metrics(
        model, GraphDataset(test, model.cutoff, model.dtype, heads=heads), heads=heads
    )
    energy, forces = 1e3 * metrics["energy_mae"], 1e3 * metrics["forces_mae"]
    print(f"| ethanol xTB | energy | graph | {energy:.2f} meV/atom | forces {forces:.1f} meV/Å |")
    unit = {"charges": "e", "distance": "Å", "homo_lumo_gap": "eV", "dipole": "e·Å"}
    for head in heads:
        reference = baseline(train, test, head, model.cutoff)
        value = metrics[head.name + "_mae"]
        row = f"MAE {value:.4g} {unit.get(head.name, '')} | {reference:.4g}"
        print(f"| ethanol xTB | {head.name} | {head.level} | {row} |", flush=True)


def phases(count: int, budget: float) -> None:
    rng = np.random.default_rng(0)
    lattice = {"fcc": ("fcc", 3.61, True), "bcc": ("bcc", 2.87, True), "hcp": ("hcp", 2.56, False)}
    structures = []
    for k in range(count):
        name = ["fcc", "bcc", "hcp", "liquid"][k % 4]
        kind, a, cubic = lattice["fcc" if name == "liquid" else name]
        atoms = bulk("Cu", kind, a=a, cubic=cubic).repeat((3, 3, 3) if cubic else (3, 3, 2))
        atoms.set_cell(atoms.cell * (1 + rng.uniform(-0.02, 0.02)), scale_atoms=True)
        atoms.calc = EMT()
        temperature = 2500.0 if name == "liquid" else float(rng.uniform(300, 900))
        thermalize_momenta(atoms, temperature, rng=rng)
        dynamics = Langevin(
            atoms, 2 * units.fs, temperature_K=temperature, friction=0.02 / units.fs,
            fixcm=False, rng=rng,
        )  # fmt: skip
        dynamics.run(150 if name == "liquid" else 20)
        results = {p: atoms.get_properties([p])[p] for p in ("energy", "forces", "stress")}
        snapshot = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
        snapshot.calc = SinglePointCalculator(snapshot, **results)
        snapshot.info["phase"] = name
        structures.append(snapshot)
    order = rng.permutation(len(structures))
    structures = [structures[i] for i in order]
    heads = (
        HeadConfig("phase", "graph", "classification", classes=("fcc", "bcc", "hcp", "liquid")),
    )
    model, test, train = train_with_heads(structures, heads, budget, cutoff=5.0)
    metrics = evaluate_metrics(
        model, GraphDataset(test, model.cutoff, model.dtype, heads=heads), heads=heads
    )
    accuracy, majority = metrics["phase_accuracy"], baseline(train, test, heads[0], 5.0)
    print(
        f"| Cu phases EMT | phase | graph | accuracy {accuracy:.3f} | {majority:.3f} |", flush=True
    )


def masked_species(count: int, budget: float) -> None:
    data = generate_emt_alloy(("Cu", "Au"), count, seed=0, progress=False)
    model = SchNet(["X", "Cu", "Au"], cutoff=4.5)
    history = pretrain(model, data, epochs=100_000, time_budget=budget, progress=False)
    numbers = np.concatenate([a.numbers for a in data])
    majority = max(np.mean(numbers == 29), np.mean(numbers == 79))
    accuracy = history.rows[-1]["valid_masked_species_accuracy"]
    print(f"| Cu-Au EMT | masked species | node | accuracy {accuracy:.3f} | {majority:.3f} |")
    model, test, train = train_with_heads(data, (), budget, cutoff=4.5)
    energy_mae = 1e3 * _metrics(model, test, ())["energy_mae"]
    species = [29, 79]
    reference = fit_atomic_energies(train, species)  # composition only: E = Σ_Z n_Z E_Z
    composition = np.mean([
        abs(a.get_potential_energy() - sum(reference[species.index(z)] for z in a.numbers)) / len(a)
        for a in test
    ])  # fmt: skip
    row = f"MAE {energy_mae:.2f} meV/atom | {1e3 * composition:.2f}"
    print(f"| Cu-Au EMT | energy | graph | {row} |")


def unsupervised(count: int, budget: float) -> None:
    from ase.build import fcc111
    from sklearn.metrics import adjusted_rand_score, roc_auc_score

    from ase_gnn import AnomalyDetector, GNNCalculator, cluster, embed
    from ase_gnn.data._structures import fcc_twin_bicrystal
    from ase_gnn.data.generate import generate_emt

    data = generate_emt("Cu", count, seed=0, progress=False)
    bulk_only = [a for a in data if a.info["config_type"] in ("bulk", "strained", "md")]
    model, held_out, train = train_with_heads(bulk_only, (), budget, cutoff=5.0)

    slab = fcc111("Cu", (4, 4, 7), vacuum=8.0, a=3.61)
    layer = np.round(slab.positions[:, 2] - slab.positions[:, 2].min(), 1)
    layers = np.unique(layer)
    middle = np.flatnonzero(layer == layers[3])[5]
    neighbors = np.flatnonzero(
        (slab.get_distances(middle, range(len(slab)), mic=True) < 3.0)
        & (np.arange(len(slab)) != middle)
    )
    surface, subsurface = np.isin(layer, layers[[0, -1]]), np.isin(layer, layers[[1, -2]])
    known = np.where(surface, 0, np.where(subsurface, 1, 3))
    known[neighbors] = 2
    del slab[middle]
    known = np.delete(known, middle)
    labels = cluster(embed(model, slab).atoms, 4)
    coordination = (slab.get_all_distances(mic=True) < 3.0).sum(axis=1) - 1
    simple = cluster(coordination[:, None].astype(float), 4)
    gnn_ari, simple_ari = adjusted_rand_score(known, labels), adjusted_rand_score(known, simple)
    row = f"ARI {gnn_ari:.3f} | {simple_ari:.3f}"
    print(f"| Cu slab + vacancy | environment clusters | node | {row} |")
    twins, distance = fcc_twin_bicrystal("Cu", 3.61)
    known = np.minimum(distance, 3)  # on the twin plane, 1, 2, and 3 or more layers away
    labels = cluster(embed(model, twins).atoms, 4)
    coordination = (twins.get_all_distances(mic=True) < 3.0).sum(axis=1) - 1
    simple = cluster(coordination[:, None].astype(float), 4)
    row = f"ARI {adjusted_rand_score(known, labels):.3f} | {adjusted_rand_score(known, simple):.3f}"
    print(f"| Cu Σ3 twin bicrystal | layers from the twin plane | node | {row} |")

    rng = np.random.default_rng(1)
    unusual = []
    for atoms in held_out[:10]:
        compressed = atoms.copy()
        compressed.set_cell(atoms.cell * 0.93, scale_atoms=True)
        hot = atoms.copy()
        hot.rattle(0.3, seed=int(rng.integers(1 << 30)))
        unusual += [compressed, hot]
    unusual += [a for a in data if a.info["config_type"] == "surface"][:10]
    detector = AnomalyDetector(model).fit(train)
    scores = np.concatenate([detector.score(held_out), detector.score(unusual)])
    truth = [0] * len(held_out) + [1] * len(unusual)
    calc = GNNCalculator(model)
    per_atom = np.array([calc.get_potential_energy(a) / len(a) for a in held_out + unusual])
    reference = np.mean([calc.get_potential_energy(a) / len(a) for a in train])
    gnn_auc = roc_auc_score(truth, scores)
    energy_auc = roc_auc_score(truth, abs(per_atom - reference))
    row = f"ROC AUC {gnn_auc:.3f} | {energy_auc:.3f}"
    print(f"| Cu EMT, bulk-trained | anomaly: compressed, hot, surface | graph | {row} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=90.0, help="training seconds per task")
    parser.add_argument("--threads", type=int, default=2)
    tasks = {"ethanol": (ethanol, 500), "phases": (phases, 160)}
    tasks |= {"masked": (masked_species, 200), "unsupervised": (unsupervised, 300)}
    parser.add_argument("--only", nargs="+", choices=sorted(tasks), default=list(tasks))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# bench/tasks.py  torch {torch.__version__}  threads={args.threads}", end="  ")
    print(f"budget={args.budget:g} s per task\n")
    print("| data | target | level | held-out result | baseline |")
    print("|---|---|---|---|---|")
    for name in args.only:
        task, count = tasks[name]
        task(count, args.budget)


if __name__ == "__main__":
    main()
