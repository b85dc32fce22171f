"""Command line: ``ase-gnn generate | train | md | demo``. Thin wrappers over the Python API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np


def _generate(args: argparse.Namespace) -> None:
    from ase_gnn import generate

    if args.kind == "emt":
        elements = args.element.split(",")
        if len(elements) == 1:
            data = generate.generate_emt(elements[0], args.structures, seed=args.seed)
        else:
            data = generate.generate_emt_alloy(elements, args.structures, seed=args.seed)
    elif args.kind == "lj":
        data = generate.generate_lennard_jones(args.structures, seed=args.seed)
    else:
        data = generate.generate_morse(args.structures, seed=args.seed)
    generate.write_dataset(data, args.out)
    print(f"wrote {len(data)} structures to {args.out}")


def _train(args: argparse.Namespace) -> None:
    from ase_gnn.generate import read_dataset
    from ase_gnn.io import save_model
    from ase_gnn.models import ARCHITECTURES
    from ase_gnn.training import GraphDataset, LossWeights, evaluate, fit

    structures = read_dataset(args.data)
    order = np.random.default_rng(args.seed).permutation(len(structures))
    n_valid = max(1, int(args.valid_fraction * len(structures)))
    valid = [structures[i] for i in order[:n_valid]]
    train = [structures[i] for i in order[n_valid:]]
    species = sorted({s for a in structures for s in a.get_chemical_symbols()})
    if args.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {args.architecture!r}; known: {sorted(ARCHITECTURES)}")
    options: dict[str, Any] = {
        "hidden_channels": args.hidden_channels,
        "num_interactions": args.num_interactions,
        "num_radial": args.num_radial,
        "aggregation": args.aggregation,
    }
    model = ARCHITECTURES[args.architecture](
        species=species, cutoff=args.cutoff, readout=args.readout, **options
    )
    weights = LossWeights(args.energy_weight, args.forces_weight, args.stress_weight)
    history = fit(model, train, valid, epochs=args.epochs, batch_size=args.batch_size,
                  learning_rate=args.lr, weights=weights, time_budget=args.budget,
                  dtype=args.dtype, seed=args.seed)
    save_model(model, args.out)
    metrics = evaluate(model, GraphDataset(valid, model.cutoff, model.dtype))
    print(f"trained {len(history.train_loss)} epochs in {history.seconds:.0f} s; validation MAE "
          f"energy {1e3 * metrics['energy_mae']:.2f} meV/atom, forces "
          f"{1e3 * metrics['forces_mae']:.1f} meV/Å; wrote {args.out}")


def _md(args: argparse.Namespace) -> None:
    import ase.io
    from ase import Atoms
    from ase.build import bulk

    from ase_gnn.calculator import GNNCalculator
    from ase_gnn.md import run_nve

    calc = GNNCalculator(args.model, dtype=args.dtype)
    if args.structure:
        atoms = ase.io.read(args.structure, index=-1)
        assert isinstance(atoms, Atoms)
    else:
        atoms = bulk(calc.model.species_symbols[0], cubic=True).repeat([args.repeat] * 3)
    trajectory = run_nve(atoms, calc, steps=args.steps, timestep_fs=args.timestep,
                         temperature_K=args.temperature, interval=args.interval, progress=True)
    if args.out:
        ase.io.write(args.out, trajectory.frames)
    print(f"{len(atoms)} atoms, {args.steps} steps: drift {trajectory.drift_per_atom():+.3f} "
          f"meV/atom/ps, mean T {np.mean(trajectory.temperature):.0f} K")


def _demo(args: argparse.Namespace) -> None:
    from ase_gnn.demo import run_demo

    run_demo(args.out, num_structures=args.structures, train_seconds=args.train_seconds,
             md_steps=args.md_steps, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ase-gnn``."""
    parser = argparse.ArgumentParser(prog="ase-gnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="generate labelled data with an ASE calculator")
    gen.add_argument("kind", choices=["emt", "lj", "morse"])
    gen.add_argument("--element", default="Cu", help="EMT metal, or comma-separated alloy")
    gen.add_argument("--structures", type=int, default=300)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", required=True, help="output extxyz file")
    gen.set_defaults(run=_generate)

    train = commands.add_parser("train", help="train a potential on an extxyz/ASE data file")
    train.add_argument("data")
    train.add_argument("--out", default="model.safetensors")
    train.add_argument("--architecture", default="SchNet")
    train.add_argument("--cutoff", type=float, default=5.0)
    train.add_argument("--hidden-channels", type=int, default=64)
    train.add_argument("--num-interactions", type=int, default=3)
    train.add_argument("--num-radial", type=int, default=8)
    train.add_argument("--aggregation", choices=["sum", "mean", "max"], default="sum")
    train.add_argument("--readout", choices=["sum", "mean"], default="sum")
    train.add_argument("--epochs", type=int, default=200)
    train.add_argument("--budget", type=float, default=None, help="wall-time limit, s")
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--energy-weight", type=float, default=1.0)
    train.add_argument("--forces-weight", type=float, default=10.0)
    train.add_argument("--stress-weight", type=float, default=0.0)
    train.add_argument("--valid-fraction", type=float, default=0.1)
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=_train)

    md = commands.add_parser("md", help="NVE molecular dynamics with a trained model")
    md.add_argument("model", help="model file (.safetensors)")
    md.add_argument("--structure", help="start structure file (default: fcc bulk of the model's first species)")
    md.add_argument("--repeat", type=int, default=3, help="bulk supercell size per axis")
    md.add_argument("--steps", type=int, default=500)
    md.add_argument("--timestep", type=float, default=2.0, help="fs")
    md.add_argument("--temperature", type=float, default=300.0, help="K")
    md.add_argument("--interval", type=int, default=10)
    md.add_argument("--dtype", choices=["float32", "float64"], default=None)
    md.add_argument("--out", help="trajectory file to write (e.g. md.extxyz)")
    md.set_defaults(run=_md)

    demo = commands.add_parser("demo", help="generate, train, evaluate and run MD end to end")
    demo.add_argument("--out", default="demo_out")
    demo.add_argument("--structures", type=int, default=300)
    demo.add_argument("--train-seconds", type=float, default=240.0)
    demo.add_argument("--md-steps", type=int, default=500)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ase-gnn`` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"ase-gnn: error: {error}", file=sys.stderr)
        return 2
    return 0
