"""Do trained models decompose like the potential they learned? Stillinger–Weber and a null test.

Usage::

    python bench/many_body_sw.py                     # SchNet and NequIP, with and without clusters
    python bench/many_body_sw.py --models SchNet --epochs 20 --out many_body_sw.png

Data: ``generate_sw`` (200 structures, with and without its isolated dimers, trimers and
clusters), a 180/20 split. Each model (4 Å cutoff, 2 interaction layers, E0 = SW's isolated
atom, 0 eV) is trained for ``--epochs`` on energies and forces. Then, on a compressed and
rattled 16-atom diamond cell and a 32-atom liquid snapshot, the order-3 many-body expansion of
the model is compared with Stillinger–Weber's own (whose Δ2 is φ2, Δ3 the three-body term and
R = 0): Pearson and Spearman correlations on the same pairs and triplets, the body-order
profile, and Δ3 against the angle at the centre (binned means; SW's has the (cos θ + 1/3)²
shape, zero at the tetrahedral 109.47°). The null test trains the same SchNet on
Lennard-Jones argon (a pure pair potential) and reports how much three-body energy and
remainder it invents.

A figure with the profiles and the Δ3-vs-angle curves is written to ``--out``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ase.build import bulk

from ase_gnn import ARCHITECTURES, GNNCalculator
from ase_gnn.data.generate import generate_lennard_jones
from ase_gnn.data.silicon import generate_sw, stillinger_weber
from ase_gnn.training import prepare_model, train_model
from explain import many_body, plot_profiles
from explain.groundtruth import correlation

ANGLES = np.arange(40.0, 181.0, 20.0)


def _model(name: str, species: str, cutoff: float):  # noqa: ANN202  (an EnergyModel)
    sizes = {"SchNet": {"hidden_channels": 32, "num_interactions": 2, "num_radial": 8},
             "NequIP": {"num_layers": 2, "num_features": 16, "avg_num_neighbors": 6.0}}  # fmt: skip
    return ARCHITECTURES[name](species=[species], cutoff=cutoff, **sizes[name])


def _test_structures() -> list:
    compressed = bulk("Si", "diamond", a=5.431 * 0.97, cubic=True) * (2, 1, 1)
    compressed.rattle(0.15, seed=5)
    liquid = next(a for a in generate_sw(40, seed=7, progress=False)
                  if a.info["config_type"] == "liquid")  # fmt: skip
    return [compressed, liquid]


def _angle_curve(result) -> np.ndarray:  # noqa: ANN001
    """Mean Δ3 (meV) per angle band."""
    index = np.digitize(result.triplet_angle, ANGLES)
    return np.array([1e3 * result.triplet_energy[index == b].mean() if (index == b).any()
                     else np.nan for b in range(1, len(ANGLES))])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["SchNet", "NequIP"])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", default="many_body_sw.png")
    args = parser.parse_args()
    structures = _test_structures()
    sw = stillinger_weber()
    references = [many_body(sw, atoms, cutoff=4.0) for atoms in structures]
    rows, curves, profiles = [], {"SW": _angle_curve(references[0])}, [references[0]]
    for clusters in (True, False):
        data = generate_sw(200, seed=0, clusters=clusters, progress=False)
        train, test = data[:180], data[180:]
        for name in args.models:
            model = _model(name, "Si", 4.0)
            prepare_model(model, train, "isolated:sw")
            start = time.perf_counter()
            train_model(model, train, test, epochs=args.epochs, batch_size=8,
                        fit_reference_energies=False, progress=False)  # fmt: skip
            seconds = time.perf_counter() - start
            calc = GNNCalculator(model, dtype="float64")
            mae = 1e3 * np.mean([abs(calc.get_potential_energy(a) - a.get_potential_energy())
                                 / len(a) for a in test])  # fmt: skip
            pair_r, triplet_r = [], []
            for atoms, reference in zip(structures, references):
                learned = many_body(model, atoms, cutoff=4.0)
                pair_r.append(correlation(learned.pair_energy, reference.pair_energy))
                triplet_r.append(correlation(learned.triplet_energy, reference.triplet_energy))
                if atoms is structures[0]:
                    label = f"{name}{'' if clusters else ' (no clusters)'}"
                    curves[label], profile = _angle_curve(learned), learned
            profiles.append(profile)
            rows.append((label, seconds, mae, pair_r, triplet_r, profile.profile()))
    print(f"\n{'model':22s} {'train s':>7s} {'meV/at':>6s} {'pairs r/ρ':>18s} {'triplets r/ρ':>18s}"
          "   2-body 3-body remainder   (test cells: compressed crystal | liquid)")  # fmt: skip
    for label, seconds, mae, pair_r, triplet_r, profile in rows:
        pairs = " ".join(f"{p['pearson']:.2f}/{p['spearman']:.2f}" for p in pair_r)
        triplets = " ".join(f"{t['pearson']:.2f}/{t['spearman']:.2f}" for t in triplet_r)
        fractions = " ".join(f"{v:6.2f}" for v in profile.values())
        print(f"{label:22s} {seconds:7.0f} {mae:6.1f} "
              f"{pairs:>18s} {triplets:>18s}   {fractions}")  # fmt: skip
    print(
        f"{'Stillinger-Weber':22s} {'':7s} {'':6s} {'':>18s} {'':>18s}   "
        + " ".join(f"{v:6.2f}" for v in references[0].profile().values())
    )
    print("\nmean Δ3 (meV) per angle band " + " ".join(f"{a:.0f}-" for a in ANGLES[:-1]))
    for label, curve in curves.items():
        print(f"{label:22s} " + " ".join(f"{v:6.1f}" for v in curve))
    # the null test: a pair potential, learned
    lj = generate_lennard_jones(140, seed=0, progress=False)
    model = _model("SchNet", "Ar", 5.0)
    prepare_model(model, lj[:120], "isolated:lj")
    train_model(model, lj[:120], lj[120:], epochs=args.epochs, batch_size=8,
                fit_reference_energies=False, progress=False)  # fmt: skip
    snapshot = next(a for a in lj[120:] if a.info["config_type"] == "md")
    null = many_body(model, snapshot)
    print(
        f"\nnull test, SchNet on Lennard-Jones ({len(snapshot)}-atom MD snapshot): profile "
        + ", ".join(f"{k} {v:.3f}" for k, v in null.profile().items())
        + " (the truth: 2-body 1, 3-body 0, remainder 0)"
    )
    _figure(profiles, [r[0] for r in rows], curves, args.out)


def _figure(profiles, labels, curves, path) -> None:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    plot_profiles(profiles, ["SW", *labels], ax=left)
    centres = 0.5 * (ANGLES[1:] + ANGLES[:-1])
    for label, curve in curves.items():
        right.plot(centres, curve, "o-", label=label, lw=2.5 if label == "SW" else 1.2)
    right.axvline(109.47, color="0.6", ls="--", lw=0.8)
    right.set(xlabel="angle at the centre (°)", ylabel="mean Δ3 (meV)")
    right.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
