"""Accuracy for a fixed training budget on the demo's Cu EMT data, and what EMA and the E0 fit add.

Trains SchNet (default size) on the same 300 EMT structures and 80/10/10 split as ``make demo``
for a wall-time budget (or a fixed number of epochs), and prints test MAE of energy per atom and
forces, training throughput (structures per second) and epochs run. Variants:

    --variant full      E0 by least squares, EMA 0.99 (the defaults)
    --variant no-ema    E0 by least squares, no weight averaging
    --variant no-e0     EMA, but E0 = 0 (the network must learn the ~-3.5 eV/atom offset)

Example (the figures reported for the training issue)::

    python bench/train_budget.py --budget 300 --threads 2
    python bench/train_budget.py --epochs 40 --threads 1 --variant no-ema
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from ase_gnn.generate import generate_emt, write_dataset
from ase_gnn.training import config_from_dict, train_from_config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=float, default=None, help="seconds of training")
    parser.add_argument("--epochs", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", choices=["full", "no-ema", "no-e0"], default="full")
    parser.add_argument("--structures", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        data = f"{folder}/cu.extxyz"
        write_dataset(generate_emt("Cu", args.structures, seed=0, progress=False), data)
        config = config_from_dict(
            {
                "model": {"atomic_energies": {"Cu": 0.0} if args.variant == "no-e0" else "fit"},
                "data": {"train": data, "valid_fraction": 0.1, "test_fraction": 0.1},
                "optimizer": {"ema_decay": None if args.variant == "no-ema" else 0.99},
                "run": {
                    "epochs": args.epochs,
                    "time_budget": args.budget,
                    "out_dir": folder,
                    "progress": False,
                },
            }
        )
        start = time.perf_counter()
        _, history, metrics = train_from_config(config, log=lambda text: None)
        seconds = time.perf_counter() - start
    train_size = round(0.8 * args.structures)
    result = {
        "variant": args.variant,
        "threads": args.threads,
        "epochs": len(history.rows),
        "train_seconds": round(history.seconds, 1),
        "structures_per_second": round(len(history.rows) * train_size / history.seconds, 2),
        "test_energy_mae_meV_per_atom": round(1e3 * metrics["test"]["energy_mae"], 2),
        "test_forces_mae_meV_per_A": round(1e3 * metrics["test"]["forces_mae"], 2),
        "total_seconds": round(seconds, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
