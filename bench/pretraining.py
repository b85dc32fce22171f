"""Does self-supervised pretraining help when few energy labels exist? Several label draws.

Generates random Cu-Au EMT alloys, pretrains one SchNet on the structures of an unlabelled pool
(denoising + masked species, :mod:`ase_gnn.training.pretrain`), then fine-tunes copies of it on N
labelled structures drawn from a separate pool, and trains the same architecture from scratch on
the same N. Reports test MAE (energy per atom, forces) as mean ± standard deviation over label
draws, for N = 8, 16, 32, with the pretrained energy readout kept and re-initialised.

Usage::

    python bench/pretraining.py                     # 300 unlabelled, 40 s pretraining, 4 draws
    python bench/pretraining.py --draws 2 --pretrain-seconds 20
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from ase_gnn import SchNet
from ase_gnn.data.generate import generate_emt_alloy
from ase_gnn.models.nn.mlp import xavier_init_
from ase_gnn.training import GraphDataset, LossWeights, evaluate_metrics, train_model
from ase_gnn.training.pretrain import pretrain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unlabelled", type=int, default=300)
    parser.add_argument("--pretrain-seconds", type=float, default=40.0)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--epochs", type=int, default=100, help="fine-tuning epochs")
    parser.add_argument(
        "--learning-rate", type=float, default=3e-3, help="fine-tuning (and scratch) learning rate"
    )
    parser.add_argument("--noise", type=float, default=0.05, help="denoising σ, Å")
    parser.add_argument(
        "--energy-only",
        action="store_true",
        help="fine-tune on energies alone (force loss weight 0): labels without forces",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = generate_emt_alloy(("Cu", "Au"), args.unlabelled + 220, seed=0, progress=False)
    unlabelled = data[: args.unlabelled]
    labelled, valid, test = data[-220:-120], data[-120:-100], data[-100:]

    def new_model() -> SchNet:
        torch.manual_seed(0)
        return SchNet(["X", "Cu", "Au"], cutoff=4.5, hidden_channels=32, num_interactions=2)

    pretrained = new_model()
    history = pretrain(
        pretrained,
        unlabelled,
        epochs=100_000,
        noise=args.noise,
        time_budget=args.pretrain_seconds,
        progress=False,
    )
    last = history.rows[-1]
    print(
        f"# pretraining: {len(history.rows)} epochs, denoising MAE "
        f"{last['valid_forces_mae']:.3f} σ (0.80 for no prediction), masked species accuracy "
        f"{last['valid_masked_species_accuracy']:.3f}"
    )
    fresh_readout = copy.deepcopy(pretrained)
    xavier_init_(fresh_readout.output)
    starts = {"scratch": None, "pretrained": pretrained, "pretrained, fresh readout": fresh_readout}
    print("\n| labels | start | energy MAE meV/atom | forces MAE meV/Å |")
    print("|---|---|---|---|")
    for size in args.sizes:
        for name, start in starts.items():
            energies, forces = [], []
            for draw in range(args.draws):
                chosen = np.random.default_rng(draw).choice(len(labelled), size, replace=False)
                model = new_model() if start is None else copy.deepcopy(start)
                train = [labelled[i] for i in chosen]
                train_model(
                    model,
                    train,
                    valid,
                    epochs=args.epochs,
                    learning_rate=args.learning_rate,
                    weights=LossWeights(forces=0.0) if args.energy_only else None,
                    seed=draw,
                    progress=False,
                )
                metrics = evaluate_metrics(model, GraphDataset(test, model.cutoff, model.dtype))
                energies.append(1e3 * metrics["energy_mae"])
                forces.append(1e3 * metrics["forces_mae"])
            print(
                f"| {size} | {name} | {np.mean(energies):.1f} ± {np.std(energies):.1f} "
                f"| {np.mean(forces):.1f} ± {np.std(forces):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
