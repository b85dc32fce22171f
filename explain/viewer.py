"""Interactive views of attributions in `chemiscope <https://chemiscope.org>`_.

:func:`write_chemiscope` turns the attributions of one structure or of every frame of a
trajectory (and, optionally, their many-body expansions) into a chemiscope dataset: atoms
coloured by their scores, the strongest bonds drawn as cylinders coloured by theirs, the
strongest triplets as arcs at their centre atom, and per-frame values on the map, so a user can
rotate the structure, colour it by another score and play through the frames in a browser.

- ``*.html``: one standalone page, the chemiscope viewer (the ``chemiscope.min.js`` that the
  ``chemiscope`` package ships) and the data inline; it opens from disk with no network.
- ``*.json`` / ``*.json.gz``: chemiscope's input file, for https://chemiscope.org, the
  ``chemiscope`` command or ``chemiscope.show_input`` in a notebook.

Colours are symmetric about zero over all frames: blue lowers the explained value, red raises
it (as in :mod:`explain.visualize`). Needs the ``chemiscope`` extra (``pip install
'ase-gnn[chemiscope]'``).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from explain.visualize import triplet_arc

if TYPE_CHECKING:
    from explain.many_body import ManyBody
    from explain.result import Attribution

_PALETTE = "bwr"  # chemiscope's blue-white-red, the colours of the bonds and arcs below


def chemiscope_input(
    attributions: Attribution | Sequence[Attribution] | None = None,
    expansions: ManyBody | Sequence[ManyBody] | None = None,
    triplet_values: np.ndarray | Sequence[np.ndarray] | None = None,
    top_bonds: int = 24,
    top_triplets: int = 12,
    name: str = "ase-gnn attributions",
) -> dict[str, Any]:
    """A chemiscope dataset of attributions and/or many-body terms, one structure per frame.

    Parameters
    ----------
    attributions
        One :class:`~explain.result.Attribution` or one per frame. Atom scores become the atom
        property ``"score"`` (the colour of the atoms); edge-level bond scores (both directions
        summed) become the ``"bonds"`` shape.
    expansions
        One :func:`~explain.many_body.many_body` result per frame (the same structures). Adds the
        atom properties ``"pair energy"`` (½ Σ Δ2 of the atom's pairs, eV) and ``"triplet
        energy"`` (Σ Δ3 of the triplets centred on the atom, eV), and the ``"triplets"`` shape.
        Without attributions, the bonds are the Δ2 pair terms and the atoms are coloured by
        ``"pair energy"``.
    triplet_values
        ``[T]`` per frame, what colours the triplets (e.g.
        :func:`~explain.many_body.triplet_interactions`, eV); default their Δ3.
    top_bonds, top_triplets
        How many bonds and triplets to draw per frame, by largest |value|.
    name
        Dataset name shown by the viewer.

    Returns
    -------
    dict
        The dataset (chemiscope's JSON format), with the settings that show it.

    Raises
    ------
    ValueError
        With neither attributions nor expansions, frame counts that differ, expansions of other
        structures, or triplet values of the wrong length.
    ImportError
        Without the ``chemiscope`` package.
    """
    try:
        import chemiscope
    except ImportError as error:  # pragma: no cover - the dev extra installs it
        raise ImportError(
            "the chemiscope export needs the chemiscope package: pip install 'ase-gnn[chemiscope]'"
        ) from error
    frames_a = _frames(attributions)
    frames_m = _frames(expansions)
    if not frames_a and not frames_m:
        raise ValueError("give attributions, many-body expansions or both")
    if frames_a and frames_m and len(frames_a) != len(frames_m):
        raise ValueError(f"{len(frames_a)} attributions but {len(frames_m)} expansions")
    structures = [a.atoms for a in frames_a] or [m.atoms for m in frames_m]
    for atoms, expansion in zip(structures, frames_m):
        if len(atoms) != len(expansion.atoms) or not np.allclose(
            atoms.positions, expansion.atoms.positions
        ):
            raise ValueError("the attributions and the expansions are of different structures")
    values = _triplet_values(frames_m, triplet_values)

    atom_properties: dict[str, list[np.ndarray]] = {}
    frame_properties: dict[str, list[float]] = {"frame": list(range(len(structures)))}
    bonds: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # start, vector, value per bond
    if frames_a:
        atom_properties["score"] = [a.node for a in frames_a]
        frame_properties["target"] = [a.target_value for a in frames_a]
        frame_properties["sum of scores"] = [float(a.node.sum()) for a in frames_a]
        if all(np.isfinite(a.completeness_gap) for a in frames_a):
            frame_properties["completeness gap"] = [a.completeness_gap for a in frames_a]
        if all(a.edge is not None for a in frames_a):
            bonds = [_attribution_bonds(a) for a in frames_a]
    if frames_m:
        atom_properties["pair energy"] = [_pair_energy_per_atom(m) for m in frames_m]
        frame_properties["energy"] = [m.energy for m in frames_m]
        for order, label in ((2, "sum of pair terms"), (3, "sum of triplet terms")):
            if all(m.order >= order for m in frames_m):
                frame_properties[label] = [m.sums[order] for m in frames_m]
        if all(m.order >= 3 for m in frames_m):
            atom_properties["triplet energy"] = [
                _triplet_energy_per_atom(m, v) for m, v in zip(frames_m, values)
            ]
        frame_properties["remainder"] = [m.remainder for m in frames_m]
        if not bonds:
            bonds = [_pair_bonds(m) for m in frames_m]

    shapes: dict[str, Any] = {}
    if bonds:
        shapes["bonds"] = _cylinders(bonds, top_bonds, radius=(0.04, 0.22))
    if frames_m and all(m.order >= 3 for m in frames_m):
        arcs = [_arcs(m, v, top_triplets) for m, v in zip(frames_m, values)]
        shapes["triplets"] = _cylinders(arcs, None, radius=(0.06, 0.06))
    properties = {
        name: {"target": "atom", "values": np.concatenate(v).tolist(), "units": "eV"}
        for name, v in atom_properties.items()
    }
    for key, column in frame_properties.items():
        properties[key] = {"target": "structure", "values": [float(x) for x in column]}
    colour = next(iter(atom_properties))
    limit = max(float(np.abs(np.concatenate(atom_properties[colour])).max()), 1e-12)
    periodic = any(atoms.pbc.any() for atoms in structures)
    settings = chemiscope.quick_settings(
        x="frame",
        y="target" if frames_a else "energy",
        trajectory=len(structures) > 1,
        periodic=periodic,
        target="structure",
        structure_settings={
            "color": {"property": colour, "palette": _PALETTE, "min": -limit, "max": limit},
            "shape": ",".join(shapes),
            "environments": {"activated": False},
            "supercell": [1, 1, 1],
        },
    )
    return chemiscope.create_input(
        structures=[_bare(atoms) for atoms in structures],
        metadata={"name": name, "description": _description(frames_a, frames_m)},
        properties=properties,
        environments=chemiscope.all_atomic_environments(structures),
        shapes=shapes,
        settings=settings,
    )


def write_chemiscope(
    path: str | Path,
    attributions: Attribution | Sequence[Attribution] | None = None,
    expansions: ManyBody | Sequence[ManyBody] | None = None,
    triplet_values: np.ndarray | Sequence[np.ndarray] | None = None,
    top_bonds: int = 24,
    top_triplets: int = 12,
    name: str = "ase-gnn attributions",
) -> Path:
    """Write :func:`chemiscope_input` as a standalone HTML page or a chemiscope input file.

    Parameters
    ----------
    path
        ``*.html`` (viewer and data in one file, opens offline in any browser), ``*.json`` or
        ``*.json.gz`` (chemiscope's input format).
    attributions, expansions, triplet_values, top_bonds, top_triplets, name
        As for :func:`chemiscope_input`.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError
        For another file extension, or as :func:`chemiscope_input`.
    """
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix not in (".html", ".json", ".json.gz"):
        raise ValueError(f"write {path.name} as .html, .json or .json.gz")
    data = chemiscope_input(attributions, expansions, triplet_values, top_bonds, top_triplets,
                            name)  # fmt: skip
    text = json.dumps(data, allow_nan=False)
    if suffix == ".html":
        path.write_text(_html(text, name), encoding="utf-8")
    elif suffix == ".json.gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _frames(items: Any) -> list[Any]:
    if items is None:
        return []
    return list(items) if isinstance(items, Sequence) else [items]


def _bare(atoms: Atoms) -> Atoms:
    """The structure without arrays or info that chemiscope would turn into properties."""
    return Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)


def _triplet_values(expansions: list[ManyBody], values: Any) -> list[np.ndarray]:
    if values is None:
        return [m.triplet_energy for m in expansions]
    per_frame = [values] if isinstance(values, np.ndarray) and values.ndim == 1 else list(values)
    if len(per_frame) != len(expansions):
        raise ValueError(f"triplet values for {len(per_frame)} frames, {len(expansions)} given")
    out = []
    for m, v in zip(expansions, per_frame):
        v = np.asarray(v, dtype=float)
        if v.shape != m.triplet_energy.shape:
            raise ValueError(f"{v.shape[0]} triplet values for {len(m.triplet_energy)} triplets")
        out.append(v)
    return out


def _attribution_bonds(attribution: Attribution) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    edges, scores, _ = attribution.bonds()
    start = attribution.atoms.positions[attribution.edge_index[0, edges]]
    return start, attribution.edge_vectors[edges], scores


def _pair_bonds(expansion: ManyBody) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    positions, cell = expansion.atoms.positions, expansion.atoms.cell.array
    i, j = expansion.pair_index.T
    vectors = positions[j] + expansion.pair_shift @ cell - positions[i]
    return positions[i], vectors, expansion.pair_energy


def _pair_energy_per_atom(expansion: ManyBody) -> np.ndarray:
    out = np.zeros(len(expansion.atoms))
    if expansion.order >= 2 and len(expansion.pair_energy):
        np.add.at(out, expansion.pair_index.reshape(-1), np.repeat(expansion.pair_energy / 2, 2))
    return out


def _triplet_energy_per_atom(expansion: ManyBody, values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(expansion.atoms))
    np.add.at(out, expansion.triplet_index[:, 0], values)
    return out


def _arcs(expansion: ManyBody, values: np.ndarray, top: int) -> tuple[np.ndarray, ...]:
    """Each of the ``top`` strongest triplets as 8 segments of an arc at its centre."""
    positions, cell = expansion.atoms.positions, expansion.atoms.cell.array
    chosen = np.argsort(-np.abs(values), kind="stable")[:top]
    starts, vectors, scores = [], [], []
    for t in chosen:
        i, j, k = expansion.triplet_index[t]
        ends = positions[[j, k]] + expansion.triplet_shift[t] @ cell
        arc = triplet_arc(positions[i], ends, 0.4, 9)
        starts.append(arc[:-1])
        vectors.append(np.diff(arc, axis=0))
        scores.append(np.full(len(arc) - 1, values[t]))
    if not starts:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(starts), np.concatenate(vectors), np.concatenate(scores)


def _cylinders(
    frames: Sequence[tuple[np.ndarray, ...]], top: int | None, radius: tuple[float, float]
) -> dict[str, Any]:
    """A chemiscope ``cylinders`` shape: per frame, the ``top`` segments by |value|, coloured
    (and, for a radius range, sized) by value on one scale over all frames."""
    values = np.concatenate([f[2] for f in frames])
    limit = max(float(np.abs(values).max(initial=0.0)), 1e-12)
    structure = []
    for start, vector, value in frames:
        keep = np.argsort(-np.abs(value), kind="stable")[:top]
        size = radius[0] + (radius[1] - radius[0]) * np.abs(value[keep]) / limit
        structure.append({
            "bases": np.round(start[keep], 4).tolist(),
            "vectors": np.round(vector[keep], 4).tolist(),
            "radii": np.round(size, 4).tolist(),
            "colors": [_colour(v / limit) for v in value[keep]],
        })  # fmt: skip
    return {"kind": "cylinders", "parameters": {"global": {}, "structure": structure}}


def _colour(x: float) -> str:
    """Blue-white-red of x in [−1, 1] (the ``bwr`` palette the atoms use), as #rrggbb."""
    x = float(np.clip(x, -1.0, 1.0))
    rgb = (1.0 + x, 1.0 + x, 1.0) if x < 0 else (1.0, 1.0 - x, 1.0 - x)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in rgb))


def _description(attributions: list[Attribution], expansions: list[ManyBody]) -> str:
    parts = []
    if attributions:
        a = attributions[0]
        parts.append(f"{a.method} attributions of {a.target} ({a.level} level, baseline "
                     f"{a.baseline}); atom and bond colours: score, eV")  # fmt: skip
    if expansions:
        parts.append("many-body expansion: pair energy ½ΣΔ2 and triplet energy ΣΔ3 per atom, eV; "
                     "arcs: the strongest triplets")  # fmt: skip
    return f"{len(attributions or expansions)} frame(s). " + "; ".join(parts) + "."


def _html(data: str, title: str) -> str:
    """A page that shows the dataset with chemiscope's viewer, everything inline.

    ``body[data-status]`` becomes ``"loaded"`` once the viewer is up, or ``"error"`` with the
    message on the page; tests read it in headless Chromium.
    """
    import chemiscope

    library = Path(chemiscope.__file__).parent / "sphinx" / "static" / "chemiscope.min.js"
    if not library.exists():  # pragma: no cover - depends on the chemiscope release
        raise ImportError(f"this chemiscope release ships no viewer at {library}")
    data = data.replace("</", "<\\/")  # nothing inside the JSON may close the script element
    return _PAGE.format(title=title, library=library.read_text(encoding="utf-8"), data=data)


_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
  html, body {{ margin: 0; height: 100%; font-family: sans-serif; }}
  #viewer {{ display: flex; height: 100vh; }}
  #structure-column {{ flex: 3; display: flex; flex-direction: column; min-width: 0; }}
  #chemiscope-structure {{ flex: 1; position: relative; min-height: 0; }}
  #map-column {{ flex: 2; display: flex; flex-direction: column; min-width: 0; }}
  #chemiscope-map {{ flex: 1; position: relative; min-height: 0; }}
</style>
<script>{library}</script>
</head>
<body data-status="loading">
<div id="viewer">
  <div id="structure-column">
    <div id="chemiscope-structure"></div><div id="chemiscope-info"></div>
  </div>
  <div id="map-column"><div id="chemiscope-meta"></div><div id="chemiscope-map"></div></div>
</div>
<script type="application/json" id="chemiscope-data">{data}</script>
<script>
(async () => {{
  try {{
    const dataset = JSON.parse(document.getElementById("chemiscope-data").textContent);
    const config = {{map: "chemiscope-map", info: "chemiscope-info", meta: "chemiscope-meta",
                    structure: "chemiscope-structure"}};
    window.visualizer = await Chemiscope.DefaultVisualizer.load(config, dataset);
    document.body.dataset.status = "loaded";
  }} catch (error) {{
    document.body.dataset.status = "error";
    document.body.insertAdjacentText("afterbegin", "chemiscope: " + error);
    console.error(error);
  }}
}})();
</script>
</body>
</html>
"""
