"""Command line: ``ase-gnn generate | train | evaluate | md | lammps | ipi | demo | embed |
cluster | anomaly | diagnose``.
Thin wrappers over the Python API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms


def _generate(args: argparse.Namespace) -> None:
    from ase_gnn.data import generate

    if args.kind == "emt":
        elements = args.element.split(",")
        if len(elements) == 1:
            data = generate.generate_emt(elements[0], args.structures, seed=args.seed)
        else:
            data = generate.generate_emt_alloy(elements, args.structures, seed=args.seed)
    elif args.kind == "xtb":
        from ase_gnn.data.molecules import generate_xtb

        data = generate_xtb(
            args.molecule, args.structures, seed=args.seed, temperature_K=args.temperature
        )
    elif args.kind == "xtb-pairs":
        from ase_gnn.data.molecules import generate_xtb_pairs

        first, _, second = args.molecule.partition(",")
        data = generate_xtb_pairs(first, second or first, args.structures, seed=args.seed)
    elif args.kind == "sw":
        from ase_gnn.data.silicon import generate_sw

        data = generate_sw(args.structures, seed=args.seed, clusters=not args.no_clusters)
    elif args.kind == "ionic":
        from ase_gnn.data.ionic import generate_ionic

        data = generate_ionic(args.structures, seed=args.seed)
    elif args.kind == "lj":
        data = generate.generate_lennard_jones(args.structures, seed=args.seed)
    else:
        data = generate.generate_morse(args.structures, seed=args.seed)
    generate.write_dataset(data, args.out)
    print(f"wrote {len(data)} structures to {args.out}")


def _train(args: argparse.Namespace) -> None:
    import dataclasses
    import os

    import torch.distributed as dist

    from ase_gnn.training import load_config, train_from_config

    config = load_config(args.config, args.set)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:  # started by torchrun: one process per rank, rendezvous from its env vars
        backend = "nccl" if config.run.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
    try:
        if args.committee is None:
            train_from_config(config, resume=args.resume)
        else:  # K members that differ only in their seed, each in its own folder
            for member in range(args.committee):
                run = dataclasses.replace(
                    config.run,
                    seed=config.run.seed + member,
                    out_dir=os.path.join(config.run.out_dir, f"member_{member}"),
                )
                train_from_config(dataclasses.replace(config, run=run), resume=args.resume)
    finally:
        if distributed:
            dist.destroy_process_group()


def _evaluate(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ase_gnn.models.io import load_model
    from ase_gnn.training import GraphDataset, LabelKeys, evaluate_metrics, read_structures
    from ase_gnn.training.setup import format_metrics, parity_plots

    model = load_model(args.model, dtype=args.dtype)
    keys = LabelKeys(args.energy_key, args.forces_key, args.stress_key)
    metrics = {}
    for path in args.data:
        structures = read_structures(path)
        dataset = GraphDataset(
            structures, model.cutoff, model.dtype, keys, model.species, name=str(path)
        )
        metrics[Path(path).stem] = evaluate_metrics(model, dataset)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            parity_plots(model, structures, Path(args.out) / f"parity_{Path(path).stem}.png", keys)
    print(format_metrics(metrics))


def _md(args: argparse.Namespace) -> None:
    import ase.io
    from ase.build import bulk

    from ase_gnn.calculators.calculator import GNNCalculator
    from ase_gnn.simulate.md import run_nve
    from ase_gnn.training import read_structures

    calc = GNNCalculator(args.model, dtype=args.dtype)
    if args.structure:
        atoms = read_structures(args.structure, index="-1")[0]
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
    drift = "n/a (fewer than two frames)"
    if len(trajectory.frames) >= 2:
        drift = f"{trajectory.drift_per_atom():+.3f} meV/atom/ps"
    print(
        f"{len(atoms)} atoms, {args.steps} steps: drift {drift}, "
        f"mean T {np.mean(trajectory.temperature):.0f} K"
    )


def _lammps(args: argparse.Namespace) -> None:
    from ase_gnn.lammps.script import run_script
    from ase_gnn.models.io import load_model, resolve_device

    device = resolve_device(args.device)
    models = [load_model(path, device=device, dtype=args.dtype) for path in args.model]
    run_script(
        args.script,
        models[0] if len(models) == 1 else models,
        args.fix,
        types=args.types,
        variables=args.var or (),
        log=args.log,
    )


def _ipi(args: argparse.Namespace) -> None:
    from ase_gnn.ipi import Driver, run_driver
    from ase_gnn.models.io import load_model, resolve_device
    from ase_gnn.training import read_structures

    model = load_model(args.model, device=resolve_device(args.device), dtype=args.dtype)
    atoms = read_structures(args.structure, index="0")[0]
    driver = Driver(model, atoms.get_chemical_symbols(), pbc=bool(atoms.pbc.any()))
    run_driver(driver, args.address, port=args.port, unix=args.unix)
    print(f"evaluated {driver.structures} structures in {driver.calls} model calls")


def _demo(args: argparse.Namespace) -> None:
    from ase_gnn.cli.demo import run_demo

    run_demo(
        args.out,
        num_structures=args.structures,
        train_seconds=args.train_seconds,
        md_steps=args.md_steps,
        seed=args.seed,
    )


def _labels_of(structures: Sequence[Atoms], key: str | None) -> np.ndarray | None:
    """``info[key]`` of every structure, or None if a structure lacks it."""
    if key is None or not all(key in atoms.info for atoms in structures):
        return None
    return np.array([str(atoms.info[key]) for atoms in structures])


def _embed(args: argparse.Namespace) -> None:
    from ase_gnn import embed, load_model
    from ase_gnn.analysis.plots import embedding_map
    from ase_gnn.training import read_structures

    model = load_model(args.model)
    structures = read_structures(args.data)
    embeddings = embed(model, structures, progress=True)
    np.savez(
        args.out,
        atoms=embeddings.atoms,
        structures=embeddings.structures,
        structure_index=embeddings.structure_index,
    )
    print(f"{len(structures)} structures, {len(embeddings.atoms)} atoms, "
          f"{embeddings.atoms.shape[1]} features -> {args.out}")  # fmt: skip
    if args.plot:
        labels = _labels_of(structures, args.label_key)
        embedding_map(embeddings.structures, args.plot, labels, method=args.method)


def _cluster(args: argparse.Namespace) -> None:
    import ase.io
    from sklearn.metrics import adjusted_rand_score

    from ase_gnn import cluster, embed, load_model
    from ase_gnn.analysis.plots import embedding_map
    from ase_gnn.training import read_structures

    model = load_model(args.model)
    structures = read_structures(args.data)
    embeddings = embed(model, structures, progress=True)
    features = embeddings.atoms if args.level == "atom" else embeddings.structures
    labels = cluster(features, args.clusters, method=args.method, seed=args.seed)
    sizes = np.bincount(labels, minlength=args.clusters)
    print(f"{args.clusters} clusters of {args.level}s, sizes {sizes.tolist()}")
    for index, atoms in enumerate(structures):
        atoms.calc = None
        if args.level == "atom":
            atoms.arrays["cluster"] = labels[embeddings.structure_index == index]
        else:
            atoms.info["cluster"] = int(labels[index])
    if args.out:
        ase.io.write(args.out, structures)
    known = None
    if args.label_key and args.level == "structure":
        known = _labels_of(structures, args.label_key)
    elif args.label_key and all(args.label_key in a.arrays for a in structures):
        known = np.concatenate([np.asarray(a.arrays[args.label_key]) for a in structures])
    if known is not None:
        print(f"adjusted Rand index vs {args.label_key}: {adjusted_rand_score(known, labels):.3f}")
    if args.plot:
        embedding_map(features, args.plot, labels, title=f"{args.clusters} clusters")


def _anomaly(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ase_gnn import AnomalyDetector, load_model
    from ase_gnn.analysis.plots import anomaly_histogram
    from ase_gnn.training import read_structures

    model = load_model(args.model)
    detector = AnomalyDetector(model, k=args.k).fit(read_structures(args.train))
    print(f"fitted on {args.train}; threshold (99th percentile of training atoms) "
          f"{detector.threshold:.3f}")  # fmt: skip
    scores = {}
    rows = ["file,index,formula,score"]
    for path in args.data:
        structures = read_structures(path)
        scores[Path(path).stem] = values = detector.score(structures)
        above = float(np.mean(values > detector.threshold))
        print(f"{path}: median {np.median(values):.3f}, max {values.max():.3f}, "
              f"{100 * above:.0f} % above threshold")  # fmt: skip
        rows += [
            f"{path},{k},{atoms.get_chemical_formula()},{value:.6g}"
            for k, (atoms, value) in enumerate(zip(structures, values))
        ]
    if args.out:
        Path(args.out).write_text("\n".join(rows) + "\n")
    if args.plot:
        anomaly_histogram(scores, args.plot, detector.threshold)


def _diagnose(args: argparse.Namespace) -> None:
    from ase_gnn.analysis.diagnose import diagnose
    from ase_gnn.training import read_structures

    selected = read_structures(args.structure, index=args.index)
    if len(selected) != 1 or ":" in args.index:
        raise ValueError(f"--index {args.index!r} selects several structures; give one index")
    (atoms,) = selected
    sweep = None
    if args.sweep:
        low, high, count = args.sweep
        sweep = np.linspace(low, high, int(count))
    report = diagnose(atoms, cutoff=args.cutoff, model=args.model, sweep=sweep)
    print(report)
    if args.plot:
        report.plot(args.plot)


def _number(kind: type, low: float, strict: bool) -> Any:
    """An argparse type: ``kind`` values above ``low`` (``strict``) or at least ``low``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not np.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(
                f"must be {'greater than' if strict else 'at least'} {low}, got {text}"
            )
        return value

    return parse


COUNT = _number(int, 1, strict=False)  # steps, structures, members, ...
POSITIVE = _number(float, 0, strict=True)  # time steps, cutoffs, seconds
NON_NEGATIVE = _number(float, 0, strict=False)  # temperatures


def _generate_parser(commands: Any) -> None:
    """``ase-gnn generate``."""
    gen = commands.add_parser("generate", help="generate labelled data with an ASE calculator")
    gen.add_argument(
        "kind",
        choices=["emt", "ionic", "lj", "morse", "sw", "xtb", "xtb-pairs"],
        help="ionic: Fumi-Tosi NaCl with full Coulomb, labelled by LAMMPS (needs the lammps "
        "extra); sw: Stillinger-Weber silicon (needs matscipy); xtb: GFN2-xTB MD of a molecule "
        "(needs tblite; set OMP_NUM_THREADS=1); xtb-pairs: two molecules or a molecule and an ion "
        "(--molecule H2O,Na+) from contact to 15 Å, GFN2-xTB",
    )
    gen.add_argument(
        "--no-clusters", action="store_true", help="sw: no isolated dimers, trimers, clusters"
    )
    gen.add_argument(
        "--molecule",
        default="CH3CH2OH",
        help="G2 molecule name for xtb; for xtb-pairs two names or ions, e.g. H2O,Na+",
    )
    gen.add_argument(
        "--temperature", type=NON_NEGATIVE, default=500.0, help="xtb MD temperature, K"
    )
    gen.add_argument("--element", default="Cu", help="EMT metal, or comma-separated alloy")
    gen.add_argument("--structures", type=COUNT, default=300)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", required=True, help="output extxyz file")
    gen.set_defaults(run=_generate)


def _train_parser(commands: Any) -> None:
    """``ase-gnn train``."""
    train = commands.add_parser(
        "train",
        help="train a potential from a TOML config (also under torchrun)",
        description="Train from a TOML config; every key is documented in "
        "ase_gnn.training.config. Under `torchrun --nproc_per_node=N -m ase_gnn train ...` "
        "the run is data-parallel.",
    )
    train.add_argument(
        "--committee",
        type=COUNT,
        metavar="K",
        help="train K members with seeds seed…seed+K−1 into <out_dir>/member_<k> "
        "(for ase_gnn.CommitteeCalculator)",
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


def _evaluate_parser(commands: Any) -> None:
    """``ase-gnn evaluate``."""
    evaluate = commands.add_parser("evaluate", help="error table and parity plots of a model")
    evaluate.add_argument("model", help="model file (.safetensors)")
    evaluate.add_argument("data", nargs="+", help="labelled data files")
    evaluate.add_argument("--out", help="folder for parity plots")
    evaluate.add_argument("--dtype", choices=["float32", "float64"], default=None)
    evaluate.add_argument("--energy-key", default="energy")
    evaluate.add_argument("--forces-key", default="forces")
    evaluate.add_argument("--stress-key", default="stress")
    evaluate.set_defaults(run=_evaluate)


def _md_parser(commands: Any) -> None:
    """``ase-gnn md``."""
    md = commands.add_parser("md", help="NVE molecular dynamics with a trained model")
    md.add_argument("model", help="model file (.safetensors)")
    md.add_argument(
        "--structure", help="start structure file (default: fcc bulk of the model's first species)"
    )
    md.add_argument("--repeat", type=COUNT, default=3, help="bulk supercell size per axis")
    md.add_argument("--steps", type=COUNT, default=500)
    md.add_argument("--timestep", type=POSITIVE, default=2.0, help="fs")
    md.add_argument("--temperature", type=NON_NEGATIVE, default=300.0, help="K")
    md.add_argument("--interval", type=COUNT, default=10)
    md.add_argument("--dtype", choices=["float32", "float64"], default=None)
    md.add_argument("--out", help="trajectory file to write (e.g. md.extxyz)")
    md.set_defaults(run=_md)


def _device_options(parser: argparse.ArgumentParser) -> None:
    """``--dtype`` and ``--device`` of the model."""
    parser.add_argument("--dtype", choices=["float32", "float64"], default=None)
    parser.add_argument("--device", default="cpu", help="torch device of the model, e.g. cuda:0")


def _lammps_parser(commands: Any) -> None:
    """``ase-gnn lammps``."""
    run = commands.add_parser(
        "lammps",
        help="run a LAMMPS input script with a model as its fix external (under mpirun too)",
    )
    run.add_argument("script", help="LAMMPS input script (units metal, pair_style zero, fix ...)")
    run.add_argument(
        "--model", required=True, nargs="+",
        help="model file (.safetensors); several make a committee whose per-atom force spread "
        "is the property d_<fix>_force_std",
    )  # fmt: skip
    run.add_argument("--fix", default="gnn", help="ID of the script's fix external (gnn)")
    run.add_argument(
        "--types", nargs="+", metavar="ELEMENT",
        help="element of each atom type, type 1 first (default: from the types' masses)",
    )  # fmt: skip
    run.add_argument(
        "--var", nargs=2, action="append", metavar=("NAME", "VALUE"),
        help="a LAMMPS index variable, as lmp -var NAME VALUE (repeatable)",
    )  # fmt: skip
    run.add_argument("--log", default="log.lammps", help="LAMMPS log file ('none' for none)")
    _device_options(run)
    run.set_defaults(run=_lammps)


def _ipi_parser(commands: Any) -> None:
    """``ase-gnn ipi``."""
    ipi = commands.add_parser("ipi", help="answer an i-PI server's force requests with a model")
    ipi.add_argument("--model", required=True, help="model file (.safetensors)")
    ipi.add_argument(
        "--structure", required=True,
        help="structure file with i-PI's atoms in its order (elements; periodic or not)",
    )  # fmt: skip
    ipi.add_argument("--address", default="localhost", help="host, or socket name with --unix")
    ipi.add_argument("--port", type=int, default=31415)
    ipi.add_argument("--unix", action="store_true", help="UNIX domain socket /tmp/ipi_<address>")
    _device_options(ipi)
    ipi.set_defaults(run=_ipi)


def _demo_parser(commands: Any) -> None:
    """``ase-gnn demo``."""
    demo = commands.add_parser("demo", help="generate, train, evaluate and run MD end to end")
    demo.add_argument("--out", default="demo_out")
    demo.add_argument("--structures", type=COUNT, default=300)
    demo.add_argument("--train-seconds", type=POSITIVE, default=240.0)
    demo.add_argument("--md-steps", type=COUNT, default=500)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)


def _embed_parser(commands: Any) -> None:
    """``ase-gnn embed``."""
    embed = commands.add_parser("embed", help="per-atom and per-structure embeddings of a model")
    embed.add_argument("model", help="model file (.safetensors)")
    embed.add_argument("data", help="structure file")
    embed.add_argument("--out", default="embeddings.npz", help="npz file to write")
    embed.add_argument("--plot", help="image of a 2-D map of the structure embeddings")
    embed.add_argument("--method", choices=["pca", "tsne", "umap"], default="pca")
    embed.add_argument("--label-key", default="config_type", help="info key colouring the map")
    embed.set_defaults(run=_embed)


def _cluster_parser(commands: Any) -> None:
    """``ase-gnn cluster``."""
    clusters = commands.add_parser("cluster", help="cluster atomic environments or structures")
    clusters.add_argument("model", help="model file (.safetensors)")
    clusters.add_argument("data", help="structure file")
    clusters.add_argument("--clusters", type=COUNT, default=4)
    clusters.add_argument("--level", choices=["atom", "structure"], default="atom")
    clusters.add_argument("--method", choices=["kmeans", "gaussian_mixture"], default="kmeans")
    clusters.add_argument("--label-key", help="known labels (arrays or info) to score against")
    clusters.add_argument("--out", help="extxyz with arrays['cluster'] or info['cluster']")
    clusters.add_argument("--plot", help="image of a 2-D map coloured by cluster")
    clusters.add_argument("--seed", type=int, default=0)
    clusters.set_defaults(run=_cluster)


def _anomaly_parser(commands: Any) -> None:
    """``ase-gnn anomaly``."""
    anomaly = commands.add_parser("anomaly", help="out-of-distribution scores of structures")
    anomaly.add_argument("model", help="model file (.safetensors)")
    anomaly.add_argument("data", nargs="+", help="structure files to score")
    anomaly.add_argument("--train", required=True, help="structures the model was trained on")
    anomaly.add_argument("--k", type=COUNT, default=5, help="nearest training environments")
    anomaly.add_argument("--out", help="CSV of per-structure scores")
    anomaly.add_argument("--plot", help="image of score histograms per file")
    anomaly.set_defaults(run=_anomaly)


def _diagnose_parser(commands: Any) -> None:
    """``ase-gnn diagnose``."""
    check = commands.add_parser(
        "diagnose", help="neighbor statistics and problems of a structure's graph; cutoff sweep"
    )
    check.add_argument("structure", help="structure file (any format ASE reads)")
    check.add_argument("--index", default="-1", help="which frame of the file (ASE index)")
    check.add_argument("--cutoff", type=POSITIVE, help="graph cutoff in Å (default: the model's)")
    check.add_argument("--model", help="model file: adds the energy of a cutoff sweep")
    check.add_argument(
        "--sweep", type=float, nargs=3, metavar=("FROM", "TO", "COUNT"), help="sweep cutoffs, Å"
    )
    check.add_argument("--plot", help="image of the coordination histogram and the sweep")
    check.set_defaults(run=_diagnose)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ase-gnn``."""
    parser = argparse.ArgumentParser(prog="ase-gnn", description=__doc__)
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of an error"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _generate_parser(commands)
    _train_parser(commands)
    _evaluate_parser(commands)
    _md_parser(commands)
    _lammps_parser(commands)
    _ipi_parser(commands)
    _demo_parser(commands)
    _embed_parser(commands)
    _cluster_parser(commands)
    _anomaly_parser(commands)
    _diagnose_parser(commands)
    return parser


# What a user can cause: bad values or types in settings, files that are missing, unreadable or
# in the way, missing optional packages. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, TypeError, OSError, KeyError, ImportError)


def _one_line(error: BaseException) -> str:
    """The message of a user error, on one line."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(text.split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ase-gnn`` console script.

    Returns 0 on success and 2 for a user error (see :data:`USER_ERRORS`), printed as one line
    ``ase-gnn: error: ...``; ``--traceback`` shows the full traceback instead.
    """
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except USER_ERRORS as error:
        if args.traceback:
            raise
        print(f"ase-gnn: error: {_one_line(error)}", file=sys.stderr)
        return 2
    return 0
