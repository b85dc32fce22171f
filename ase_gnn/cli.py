"""Command line: ``ase-gnn generate | train | evaluate | md | demo``. Thin wrappers over the
Python API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np


def _generate(args: argparse.Namespace) -> None:
    from ase_gnn import generate

    if args.kind == "emt":
        elements = args.element.split(",")
        if len(elements) == 1:
            data = generate.generate_emt(elements[0], args.structures, seed=args.seed)
        else:
            data = generate.generate_emt_alloy(elements, args.structures, seed=args.seed)
    elif args.kind == "xtb":
        from ase_gnn.molecules import generate_xtb

        data = generate_xtb(
            args.molecule, args.structures, seed=args.seed, temperature_K=args.temperature
        )
    elif args.kind == "lj":
        data = generate.generate_lennard_jones(args.structures, seed=args.seed)
    else:
        data = generate.generate_morse(args.structures, seed=args.seed)
    generate.write_dataset(data, args.out)
    print(f"wrote {len(data)} structures to {args.out}")


def _train(args: argparse.Namespace) -> None:
    import os

    import torch.distributed as dist

    from ase_gnn.training import load_config, train_from_config

    config = load_config(args.config, args.set)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:  # started by torchrun: one process per rank, rendezvous from its env vars
        backend = "nccl" if config.run.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
    try:
        train_from_config(config, resume=args.resume)
    finally:
        if distributed:
            dist.destroy_process_group()


def _evaluate(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ase_gnn.io import load_model
    from ase_gnn.training import GraphDataset, LabelKeys, evaluate, read_structures
    from ase_gnn.training.setup import format_metrics, parity_plots

    model = load_model(args.model, dtype=args.dtype)
    keys = LabelKeys(args.energy_key, args.forces_key, args.stress_key)
    metrics = {}
    for path in args.data:
        structures = read_structures(path)
        dataset = GraphDataset(
            structures, model.cutoff, model.dtype, keys, model.species, name=str(path)
        )
        metrics[Path(path).stem] = evaluate(model, dataset)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            parity_plots(model, structures, Path(args.out) / f"parity_{Path(path).stem}.png", keys)
    print(format_metrics(metrics))


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
    trajectory = run_nve(
        atoms,
        calc,
        steps=args.steps,
        timestep_fs=args.timestep,
        temperature_K=args.temperature,
        interval=args.interval,
        progress=True,
    )
    if args.out:
        ase.io.write(args.out, trajectory.frames)
    print(
        f"{len(atoms)} atoms, {args.steps} steps: drift {trajectory.drift_per_atom():+.3f} "
        f"meV/atom/ps, mean T {np.mean(trajectory.temperature):.0f} K"
    )


def _demo(args: argparse.Namespace) -> None:
    from ase_gnn.demo import run_demo

    run_demo(
        args.out,
        num_structures=args.structures,
        train_seconds=args.train_seconds,
        md_steps=args.md_steps,
        seed=args.seed,
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ase-gnn``."""
    parser = argparse.ArgumentParser(prog="ase-gnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="generate labelled data with an ASE calculator")
    gen.add_argument(
        "kind",
        choices=["emt", "lj", "morse", "xtb"],
        help="xtb: GFN2-xTB MD of a molecule (needs tblite; set OMP_NUM_THREADS=1)",
    )
    gen.add_argument("--molecule", default="CH3CH2OH", help="G2 molecule name for xtb")
    gen.add_argument("--temperature", type=float, default=500.0, help="xtb MD temperature, K")
    gen.add_argument("--element", default="Cu", help="EMT metal, or comma-separated alloy")
    gen.add_argument("--structures", type=int, default=300)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", required=True, help="output extxyz file")
    gen.set_defaults(run=_generate)

    train = commands.add_parser(
        "train",
        help="train a potential from a TOML config (also under torchrun)",
        description="Train from a TOML config; every key is documented in "
        "ase_gnn.training.config. Under `torchrun --nproc_per_node=N -m ase_gnn train ...` "
        "the run is data-parallel.",
    )
    train.add_argument("config", nargs="?", help="TOML file (default: all defaults)")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set run.epochs=10 (repeatable)",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from <out_dir>/checkpoints/last.ckpt if present",
    )
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="error table and parity plots of a model")
    evaluate.add_argument("model", help="model file (.safetensors)")
    evaluate.add_argument("data", nargs="+", help="labelled data files")
    evaluate.add_argument("--out", help="folder for parity plots")
    evaluate.add_argument("--dtype", choices=["float32", "float64"], default=None)
    evaluate.add_argument("--energy-key", default="energy")
    evaluate.add_argument("--forces-key", default="forces")
    evaluate.add_argument("--stress-key", default="stress")
    evaluate.set_defaults(run=_evaluate)

    md = commands.add_parser("md", help="NVE molecular dynamics with a trained model")
    md.add_argument("model", help="model file (.safetensors)")
    md.add_argument(
        "--structure", help="start structure file (default: fcc bulk of the model's first species)"
    )
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
