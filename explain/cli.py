"""``ase-gnn-explain``: attributions of a model file on a structure file, written to a folder.

::

    ase-gnn-explain cu.safetensors slab.extxyz --method ig --level edge --target energy --out out
    ase-gnn-explain si.safetensors si.extxyz --level triplet --many-body --out out

writes into ``--out``:

==========================  =================================================================
``attribution.json``        method, target, level, target and baseline values, completeness
                            gap, every score (atoms, edges with their shifts), and the
                            faithfulness metrics (fidelity±, deletion/insertion areas against a
                            random ranking, sparsity); not for ``--level triplet``
``atoms.csv``               index, symbol, x, y, z (Å), score
``edges.csv``               (edge level) i, j, cell shift, length (Å), score
``structure.png``           3-D view coloured by score
``curves.png``              deletion and insertion curves against a random ranking
``triplets.csv``            (``--level triplet``) every triplet: atoms, shifts, distances, the
                            angle at the centre, its Integrated Hessians ``interaction`` and
                            the model's exact Δ3 (``energy``, :mod:`explain.many_body`)
``many_body/``              (``--many-body``, or ``--level triplet``) the many-body expansion:
                            ``many_body.json``, ``pairs.csv``, ``triplets.csv``, ``many_body.png``
``viewer.html``             (``--chemiscope``) atoms, bonds and triplets coloured by score in
                            chemiscope's viewer, one page that opens offline
                            (:mod:`explain.viewer`)
==========================  =================================================================

With ``--index`` selecting several frames of a trajectory (e.g. ``--index ::10``), each frame's
files go to ``frame_000/``, ``frame_001/``, ... and ``viewer.html`` plays through the frames.

Methods: ``ig`` (Integrated Gradients), ``ih`` (Integrated Hessians), ``saliency``, ``shap``
(GradientShap), ``ablation``, ``shapley`` or any name of :data:`explain.METHODS`. Targets:
``energy``, ``energy_per_atom``, ``local:I`` (atom I's energy), ``force:I,AXIS`` (AXIS x, y, z
or 0-2), ``stress:I,J``. Errors in the arguments are one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ALIASES = {
    "ig": "integrated_gradients",
    "ih": "integrated_hessians",
    "shap": "gradient_shap",
    "ablation": "feature_ablation",
    "shapley": "shapley_value_sampling",
}


def parse_target(text: str) -> Any:
    """The :class:`explain.Target` a ``--target`` string names (module docstring).

    Raises
    ------
    ValueError
        For an unknown target or malformed indices.
    """
    from explain import Energy, EnergyPerAtom, ForceComponent, LocalEnergy, StressComponent

    name, _, rest = text.partition(":")
    try:
        if name == "energy" and not rest:
            return Energy()
        if name == "energy_per_atom" and not rest:
            return EnergyPerAtom()
        if name == "local":
            return LocalEnergy(int(rest))
        if name == "force":
            atom, axis = rest.split(",")
            direction = "xyz".index(axis) if axis in ("x", "y", "z") else int(axis)
            return ForceComponent(int(atom), direction)
        if name == "stress":
            i, j = rest.split(",")
            return StressComponent(int(i), int(j))
    except ValueError:
        pass
    raise ValueError(
        f"unknown target {text!r}: use energy, energy_per_atom, local:I, force:I,AXIS "
        "(AXIS x, y, z or 0-2) or stress:I,J"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ase-gnn-explain", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("model", help="model file (.safetensors)")
    parser.add_argument("structure", help="structure file ASE can read (extxyz, cif, POSCAR...)")
    parser.add_argument(
        "--index", default=None, help="frame(s) of a trajectory, ASE's syntax (default: the last)"
    )
    parser.add_argument(
        "--method", default=None, help="ig (default), ih (default for --level triplet), saliency..."
    )
    parser.add_argument("--level", default="edge", choices=["edge", "atom", "triplet"])
    parser.add_argument("--target", default="energy", help="energy, force:I,AXIS, stress:I,J...")
    parser.add_argument("--many-body", action="store_true", help="write the many-body expansion")
    parser.add_argument("--chemiscope", action="store_true",
                        help="write viewer.html, an interactive chemiscope view")  # fmt: skip
    parser.add_argument("--top", type=int, default=10, help="k of fidelity (bonds or atoms)")
    parser.add_argument("--out", required=True, help="output folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ase-gnn-explain`` (module docstring); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, TypeError) as error:
        print(f"ase-gnn-explain: error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import ase.io
    import matplotlib

    matplotlib.use("Agg")
    from ase_gnn import load_model
    from explain import METHODS

    chosen = args.method or ("ih" if args.level == "triplet" else "ig")
    method = ALIASES.get(chosen, chosen)
    if method not in METHODS:
        raise ValueError(
            f"unknown method {chosen!r}; choose one of {sorted(ALIASES)} or {sorted(METHODS)}"
        )
    if args.level == "triplet" and method != "integrated_hessians":
        raise ValueError("--level triplet needs Integrated Hessians (--method ih)")
    target = parse_target(args.target)
    if not Path(args.structure).exists():
        raise FileNotFoundError(f"no structure file {args.structure}")
    read = ase.io.read(args.structure, index=args.index if args.index is not None else -1)
    frames = read if isinstance(read, list) else [read]
    if not frames:
        raise ValueError(f"--index {args.index} selects no frame of {args.structure}")
    model = load_model(args.model, dtype="float64")
    out = Path(args.out)
    results = []
    for n, atoms in enumerate(frames):
        folder = out if len(frames) == 1 else out / f"frame_{n:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        results.append(_explain_frame(args, model, method, target, atoms, folder))
    written = [path for result in results for path in result[-1]]
    if args.chemiscope:
        from explain.viewer import write_chemiscope

        attributions, expansions, values, _ = zip(*results)
        triplet_values = None if values[0] is None else list(values)
        written.append(write_chemiscope(out / "viewer.html", list(attributions),
                                        None if expansions[0] is None else list(expansions),
                                        triplet_values))  # fmt: skip
    attribution = results[0][0]
    print(f"{method} on {len(frames[0])} atoms ({attribution.target}, {args.level} level): "
          f"target {attribution.target_value:.6g}, completeness gap "
          f"{attribution.completeness_gap:.2e}"
          + (f" (frame 0 of {len(frames)})" if len(frames) > 1 else "")
          + f"; wrote {len(written)} files to {out}")  # fmt: skip
    return 0


def _explain_frame(
    args: argparse.Namespace, model: Any, method: str, target: Any, atoms: Any, out: Path
) -> tuple[Any, Any, np.ndarray | None, list[Path]]:
    """Explain one structure into ``out``: its attribution, its many-body expansion (or None),
    the triplet interactions (``--level triplet``, else None) and the files written."""
    from explain import Explainer, many_body
    from explain._forward import Level
    from explain.many_body import triplet_interactions
    from explain.visualize import plot_curves

    level: Level = "atom" if args.level == "atom" else "edge"  # triplets come from edges
    explainer = Explainer(model, method, target, level=level)
    attribution = explainer.explain(atoms)
    written = [_write_atoms(attribution, out / "atoms.csv")]
    if level == "edge":
        written.append(_write_edges(attribution, out / "edges.csv"))
    summary, curves = _summary(explainer, attribution, args.top)
    expansion, scores = None, None
    if args.level == "triplet" or args.many_body:
        expansion = many_body(model, atoms)
        written += expansion.write(out / "many_body")
        expansion.plot(out / "many_body" / "many_body.png")
        written.append(out / "many_body" / "many_body.png")
        summary["many_body"] = {"sums": expansion.sums, "remainder": expansion.remainder,
                                "profile": expansion.profile()}  # fmt: skip
        if args.level == "triplet":
            scores = triplet_interactions(attribution, expansion)
            written.append(expansion.write_triplets(out / "triplets.csv", {"interaction": scores}))
    (out / "attribution.json").write_text(json.dumps(summary, indent=1))
    attribution.plot3d(str(out / "structure.png"))
    written += [out / "attribution.json", out / "structure.png"]
    if curves is not None:
        plot_curves(curves, out / "curves.png")
        written.append(out / "curves.png")
    return attribution, expansion, scores, written


def _summary(explainer: Any, attribution: Any, top: int) -> tuple[dict[str, Any], Any]:
    """The JSON document (what was explained, the scores, the faithfulness metrics) and the
    deletion/insertion curves (None for masks)."""
    from explain import METHODS
    from explain.metrics import deletion_insertion, fidelity, sparsity

    summary: dict[str, Any] = {
        "method": attribution.method,
        "target": attribution.target,
        "level": attribution.level,
        "baseline": attribution.baseline,
        "target_value": attribution.target_value,
        "baseline_value": attribution.baseline_value,
        "completeness_gap": attribution.completeness_gap,
        "node": attribution.node.tolist(),
        "edge": None if attribution.edge is None else attribution.edge.tolist(),
        "edge_index": attribution.edge_index.tolist(),
        "edge_shift": attribution.edge_shift.tolist(),
    }
    faithfulness: dict[str, Any] = {"sparsity": sparsity(attribution)}
    curves = None
    if not METHODS[attribution.method].mask and len(attribution.scores):
        k = max(1, min(top, len(attribution.scores)))
        result = fidelity(explainer, attribution, k)
        faithfulness["fidelity"] = {"k": k, "plus": result.plus, "minus": result.minus}
        curves = deletion_insertion(explainer, attribution)
        faithfulness["curves"] = {
            "deletion_auc": curves.deletion_auc,
            "insertion_auc": curves.insertion_auc,
            "random_deletion_auc": curves.random_deletion_auc,
            "random_insertion_auc": curves.random_insertion_auc,
        }
    summary["faithfulness"] = faithfulness
    return summary, curves


def _write_atoms(attribution: Any, path: Path) -> Path:
    atoms = attribution.atoms
    with path.open("w") as file:
        file.write("index,symbol,x,y,z,score\n")
        for i, (symbol, position, score) in enumerate(
            zip(atoms.get_chemical_symbols(), atoms.positions, attribution.node)
        ):
            file.write(f"{i},{symbol},{position[0]:.8f},{position[1]:.8f},{position[2]:.8f},"
                       f"{score:.10g}\n")  # fmt: skip
    return path


def _write_edges(attribution: Any, path: Path) -> Path:
    table = np.column_stack([attribution.edge_index.T, np.rint(attribution.edge_shift),
                             attribution.edge_lengths, attribution.edge])  # fmt: skip
    np.savetxt(path, table, delimiter=",", comments="", header="i,j,shift_x,shift_y,shift_z,"
               "length,score", fmt=["%d"] * 5 + ["%.10g"] * 2)  # fmt: skip
    return path


if __name__ == "__main__":
    sys.exit(main())
