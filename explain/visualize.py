"""Plots of attributions (matplotlib through its object API: headless-safe, no pyplot state).

Every function draws into a new figure (or a given ``ax``), saves it if ``path`` is given and
returns the figure. Scores use a diverging colour map centred on zero (blue negative, red
positive), so a bond that lowers the energy is blue.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    from explain.many_body import ManyBody
    from explain.metrics import Curves
    from explain.result import Attribution

Path = str | os.PathLike[str] | None


def _figure(ax: Axes | None, projection: str | None = None) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    if ax is not None:
        figure = ax.get_figure()
        assert figure is not None
        return figure, ax  # type: ignore[return-value]  # a SubFigure is drawn into the same way
    figure = Figure(figsize=(6.0, 5.0), layout="constrained")
    return figure, figure.add_subplot(projection=projection)


def _finish(figure: Figure, path: Path) -> Figure:
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


def _norm(values: np.ndarray) -> Normalize:
    from matplotlib.colors import TwoSlopeNorm

    limit = float(np.abs(values).max()) if len(values) else 1.0
    limit = limit if limit > 0 else 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)


def _cell_edges(cell: np.ndarray) -> list[np.ndarray]:
    """The 12 edges of the cell parallelepiped, each ``[2, 3]``."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    edges = []
    for a in range(8):
        for b in range(a + 1, 8):
            if np.abs(corners[a] - corners[b]).sum() == 1:
                edges.append(np.stack([corners[a], corners[b]]) @ cell)
    return edges


def plot_structure(
    attribution: Attribution,
    path: Path = None,
    ax: Axes | None = None,
    projection: Literal["3d", "2d"] = "3d",
    plane: tuple[int, int] = (0, 1),
    max_bonds: int = 300,
    cmap: str = "coolwarm",
    atom_size: float = 120.0,
) -> Figure:
    """Atoms coloured by their scores, bonds by theirs, and the cell box.

    A bond across a periodic boundary is drawn from its atom to the neighbor's periodic image
    (r_i to r_i + r_ij), so it leaves the box where the bond really points.

    Parameters
    ----------
    attribution
        Any attribution (bonds are drawn for edge level).
    path
        Image file to write, or None.
    ax
        Axes to draw into (3-D axes for ``projection="3d"``), or None for a new figure.
    projection
        ``"3d"`` or ``"2d"`` (a projection on ``plane``).
    plane
        Cartesian axes of the 2-D projection, e.g. (0, 1) for x-y.
    max_bonds
        Draw only the bonds with the largest |score| (all if fewer).
    cmap
        Diverging colour map.
    atom_size
        Marker area of the atoms, points².
    """
    figure, ax = _figure(ax, "3d" if projection == "3d" else None)
    atoms = attribution.atoms
    axes = [0, 1, 2] if projection == "3d" else list(plane)
    segments: list[np.ndarray] = []
    if attribution.edge is not None and len(attribution.edge):
        edges, scores, _ = attribution.bonds()
        keep = np.argsort(-np.abs(scores), kind="stable")[:max_bonds]
        start = atoms.positions[attribution.edge_index[0, edges[keep]]]
        segments = list(np.stack([start, start + attribution.edge_vectors[edges[keep]]], axis=1))
        bond_scores = scores[keep]
        bond_norm = _norm(bond_scores)
        _draw_segments(ax, [s[:, axes] for s in segments], bond_scores, bond_norm, cmap, 2.5)
        mappable = _mappable(bond_norm, cmap)
        figure.colorbar(mappable, ax=ax, shrink=0.7, label=f"bond score ({attribution.target})")
    if atoms.pbc.any() and atoms.cell.rank == 3:  # draw the cell
        for edge in _cell_edges(atoms.cell.array):
            ax.plot(*edge[:, axes].T, color="0.5", lw=0.8)
    style: dict[str, Any] = {"depthshade": False} if projection == "3d" else {"zorder": 3}
    points = ax.scatter(  # type: ignore[misc]  # mypy reads the star-args as c= and s=
        *atoms.positions[:, axes].T,
        c=attribution.node,
        cmap=cmap,
        norm=_norm(attribution.node),
        s=atom_size,
        edgecolors="k",
        linewidths=0.5,
        **style,
    )
    figure.colorbar(points, ax=ax, shrink=0.7, label=f"atom score ({attribution.target})")
    labels = ["x / Å", "y / Å", "z / Å"]
    ax.set_xlabel(labels[axes[0]])
    ax.set_ylabel(labels[axes[1]])
    if projection == "3d":
        ax.set_zlabel(labels[2])  # type: ignore[attr-defined]  # Axes3D
    else:
        ax.set_aspect("equal")
    ax.set_title(f"{attribution.method}, {attribution.level} level")
    return _finish(figure, path)


def _mappable(norm: Normalize, cmap: str) -> Any:
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)


def _draw_segments(
    ax: Axes,
    segments: list[np.ndarray],
    values: np.ndarray,
    norm: Normalize,
    cmap: str,
    width: float,
) -> None:
    if not segments:
        return
    if segments[0].shape[1] == 3:
        from mpl_toolkits.mplot3d.art3d import Line3DCollection  # type: ignore[import-untyped]

        lines: Any = Line3DCollection(segments, cmap=cmap, norm=norm, linewidths=width)
        lines.set_array(values)
        ax.add_collection3d(lines)  # type: ignore[attr-defined]  # Axes3D
    else:
        from matplotlib.collections import LineCollection

        lines = LineCollection(segments, cmap=cmap, norm=norm, linewidths=width, zorder=2)
        lines.set_array(values)
        ax.add_collection(lines)
    ax.autoscale_view()


def plot_vs_distance(
    attributions: Attribution | Mapping[str, Attribution],
    path: Path = None,
    ax: Axes | None = None,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
) -> Figure:
    """Bond score against bond length, for one or several (labelled) attributions.

    Parameters
    ----------
    attributions
        Edge-level attribution(s), e.g. ``{"integrated_gradients": a, "saliency": b}``.
    reference
        Optional ``(distances, energies)`` curve to draw beside them (e.g. a pair potential).
    """
    figure, ax = _figure(ax)
    if not isinstance(attributions, Mapping):
        attributions = {attributions.method: attributions}
    for label, attribution in attributions.items():
        _, scores, lengths = attribution.bonds()
        ax.scatter(lengths, scores, s=8, alpha=0.6, label=label)
    if reference is not None:
        ax.plot(*reference, color="k", lw=1.2, label="reference")
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set(xlabel="bond length / Å", ylabel="bond score")
    ax.legend()
    return _finish(figure, path)


def plot_curves(curves: Curves | Mapping[str, Curves], path: Path = None) -> Figure:
    """Deletion and insertion curves (explained fraction), with the random-order reference AUC."""
    from matplotlib.figure import Figure

    if not isinstance(curves, Mapping):
        curves = {"ranking": curves}
    figure = Figure(figsize=(9.0, 4.0), layout="constrained")
    deletion_ax, insertion_ax = figure.subplots(1, 2)
    for label, curve in curves.items():
        for ax, values, auc, random_auc in (
            (deletion_ax, curve.deletion_explained, curve.deletion_auc, curve.random_deletion_auc),
            (
                insertion_ax,
                curve.insertion_explained,
                curve.insertion_auc,
                curve.random_insertion_auc,
            ),
        ):
            ax.plot(
                curve.fraction, values, label=f"{label} (AUC {auc:.2f}, random {random_auc:.2f})"
            )
    for ax, title in ((deletion_ax, "deletion"), (insertion_ax, "insertion")):
        ax.set(title=title, xlabel="fraction of inputs", ylabel="fraction of f(x) − f(baseline)")
        ax.legend(fontsize=8)
    return _finish(figure, path)


def plot_method_comparison(
    values: Mapping[str, Mapping[str, float]], path: Path = None, ax: Axes | None = None
) -> Figure:
    """Grouped bar chart: ``{method: {metric: value}}``, one group per metric."""
    figure, ax = _figure(ax)
    methods = list(values)
    metrics = list(dict.fromkeys(name for row in values.values() for name in row))
    width = 0.8 / max(1, len(methods))
    for k, method in enumerate(methods):
        heights = [values[method].get(name, np.nan) for name in metrics]
        ax.bar(np.arange(len(metrics)) + k * width, heights, width, label=method)
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, metrics)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.legend(fontsize=8)
    return _finish(figure, path)


def plot_timeseries(
    attributions: Sequence[Attribution],
    path: Path = None,
    ax: Axes | None = None,
    top: int = 5,
    times: np.ndarray | None = None,
) -> Figure:
    """Scores of the ``top`` atoms with the largest mean |score| along a trajectory.

    Parameters
    ----------
    attributions
        One attribution per frame (same atoms in every frame).
    times
        ``[T]`` time of every frame (e.g. fs); frame numbers if None.
    """
    figure, ax = _figure(ax)
    scores = np.stack([attribution.node for attribution in attributions])  # [T, N]
    x = np.arange(len(scores)) if times is None else np.asarray(times)
    for atom in np.argsort(-np.abs(scores).mean(axis=0), kind="stable")[:top]:
        symbol = attributions[0].atoms.get_chemical_symbols()[atom]
        ax.plot(x, scores[:, atom], label=f"{symbol}{atom}")
    ax.set(
        xlabel="frame" if times is None else "time",
        ylabel=f"atom score ({attributions[0].target})",
        title=f"{attributions[0].method}: largest contributions",
    )
    ax.legend(fontsize=8)
    return _finish(figure, path)


def plot_triplets(
    expansion: ManyBody,
    values: np.ndarray | None = None,
    top: int = 8,
    path: Path = None,
    ax: Axes | None = None,
    cmap: str = "coolwarm",
    label: str = "Δ3 (eV)",
) -> Figure:
    """3-D view of a structure with its strongest triplets: both legs and a wedge at the centre.

    Parameters
    ----------
    expansion
        A :func:`~explain.many_body.many_body` result of order 3 (its atoms and triplets).
    values
        ``[T]`` a score per triplet (e.g. :func:`~explain.many_body.triplet_interactions`);
        default its Δ3.
    top
        How many triplets to draw, by largest |value|.
    path, ax, cmap
        As for :func:`plot_structure`.
    label
        Colour bar label.
    """
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    figure, ax = _figure(ax, "3d")
    atoms = expansion.atoms
    values = expansion.triplet_energy if values is None else np.asarray(values, float)
    if len(values) != len(expansion.triplet_energy):
        raise ValueError(f"{len(values)} values for {len(expansion.triplet_energy)} triplets")
    chosen = np.argsort(-np.abs(values), kind="stable")[:top]
    norm = _norm(values[chosen])
    colours = _mappable(norm, cmap).to_rgba(values[chosen])
    cell = atoms.cell.array
    for t, colour in zip(chosen, colours):
        i, j, k = expansion.triplet_index[t]
        centre = atoms.positions[i]
        ends = atoms.positions[[j, k]] + expansion.triplet_shift[t] @ cell
        for end in ends:
            ax.plot(*np.stack([centre, end]).T, color=colour, lw=2.0)
        arc = triplet_arc(centre, ends, 0.35, 16)
        wedge = Poly3DCollection([[centre, *arc]], alpha=0.6)
        wedge.set_facecolor(colour)
        ax.add_collection3d(wedge)  # type: ignore[attr-defined]  # Axes3D
        ax.scatter(*ends.T, color="0.7", s=40, depthshade=False)  # type: ignore[misc]
    if atoms.pbc.any() and atoms.cell.rank == 3:
        for edge in _cell_edges(cell):
            ax.plot(*edge.T, color="0.5", lw=0.8)
    ax.scatter(*atoms.positions.T, color="0.6", edgecolors="k", linewidths=0.5, s=60,  # type: ignore[misc]
               depthshade=False)  # fmt: skip
    figure.colorbar(_mappable(norm, cmap), ax=ax, shrink=0.7, label=label)
    ax.set_xlabel("x / Å")
    ax.set_ylabel("y / Å")
    ax.set_zlabel("z / Å")  # type: ignore[attr-defined]  # Axes3D
    ax.set_title(f"the {len(chosen)} strongest triplets")
    return _finish(figure, path)


def triplet_arc(centre: np.ndarray, ends: np.ndarray, fraction: float, points: int) -> np.ndarray:
    """``[points, 3]`` an arc of the angle j-i-k about its centre i, Å.

    Parameters
    ----------
    centre
        ``[3]`` position of the centre atom i, Å.
    ends
        ``[2, 3]`` positions of j and k (the periodic images the triplet uses), Å.
    fraction
        Arc radius as a fraction of the shorter leg.
    points
        Number of points from the leg to j to the leg to k.
    """
    u, v = ends[0] - centre, ends[1] - centre
    radius = fraction * min(np.linalg.norm(u), np.linalg.norm(v))
    u = u / np.linalg.norm(u)
    w = v - (v @ u) * u
    w = w / np.linalg.norm(w) if np.linalg.norm(w) > 1e-12 else np.cross(u, [0, 0, 1.0])
    angle = np.arccos(np.clip(u @ v / np.linalg.norm(v), -1.0, 1.0))
    a = np.linspace(0.0, angle, points)[:, None]
    return centre + radius * (np.cos(a) * u + np.sin(a) * w)
