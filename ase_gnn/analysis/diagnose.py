"""Graph-construction diagnostics: what the radius graph of a structure looks like, and how much
a model's prediction depends on where the graph is cut.

A message-passing model only sees the edges of its graph, so a structure whose graph is odd (atoms
without neighbors, atoms that see their own periodic image, atoms far closer than any bond) gets a
prediction that may be silently wrong. :func:`diagnose` reports these, and with a model it sweeps
the graph cutoff: the energy predicted when only edges shorter than r are kept (edges beyond the
model's cutoff never contribute), which shows how sensitive the prediction is to the graph
definition.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from ase.data import chemical_symbols, covalent_radii

from ase_gnn.graph.atomic_graph import edge_vectors
from ase_gnn.graph.neighbors import graph_from_atoms, perpendicular_widths
from ase_gnn.models.base import EnergyModel
from ase_gnn.models.forces import predict
from ase_gnn.models.io import load_model

if TYPE_CHECKING:
    from ase import Atoms
    from matplotlib.figure import Figure

#: A pair closer than this fraction of the sum of covalent radii is reported as too short.
SHORT_FACTOR = 0.6
#: At most this many problem atoms or pairs are listed by name in the summary.
LISTED = 10


@dataclass
class GraphDiagnosis:
    """The report of :func:`diagnose`; ``str()`` gives a readable summary.

    Attributes
    ----------
    cutoff
        The graph cutoff in Å.
    neighbor_counts
        ``[N]`` neighbors of every atom within the cutoff (periodic images count).
    isolated
        Indices of atoms without any neighbor.
    self_images
        Indices of atoms that have one of their own periodic images within the cutoff.
    widths
        ``[3]`` perpendicular cell widths in Å (``inf`` on non-periodic axes).
    short_pairs
        ``(i, j, distance Å, threshold Å)`` for pairs closer than ``SHORT_FACTOR`` × the sum of
        their covalent radii (i ≤ j, each pair once).
    sweep_cutoffs
        ``[K]`` graph cutoffs r of the sweep in Å.
    sweep_neighbors
        ``[K]`` mean neighbor count at each r.
    sweep_energies
        ``[K]`` model energy per atom in eV when only edges shorter than r are kept, or None
        without a model.
    full_energy
        Model energy per atom in eV on its full graph (every edge within the model's cutoff, as
        the calculator sees it): the reference of the sweep's ΔE; None without a model.
    """

    cutoff: float
    neighbor_counts: np.ndarray
    isolated: np.ndarray
    self_images: np.ndarray
    widths: np.ndarray
    short_pairs: list[tuple[int, int, float, float]]
    sweep_cutoffs: np.ndarray
    sweep_neighbors: np.ndarray
    sweep_energies: np.ndarray | None = None
    full_energy: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def narrow_axes(self) -> list[int]:
        """Periodic axes (0, 1, 2) narrower than the cutoff: atoms there see their own images."""
        return [axis for axis in range(3) if self.widths[axis] < self.cutoff]

    def __str__(self) -> str:
        counts = self.neighbor_counts
        lines = [f"graph of {counts.size} atoms at cutoff {self.cutoff:g} Å"]
        if counts.size:
            lines.append(
                f"  neighbors per atom: min {counts.min()}, median {np.median(counts):g}, "
                f"mean {counts.mean():.1f}, max {counts.max()}"
            )
        periodic = np.isfinite(self.widths)
        if periodic.any():
            widths = ", ".join(f"{'abc'[a]} {self.widths[a]:.3f}" for a in np.flatnonzero(periodic))
            lines.append(f"  cell widths (Å): {widths}")
        if self.sweep_energies is not None:
            lines.append(
                f"  cutoff sweep (edges shorter than r kept; full graph: {self.full_energy:.5f} "
                "eV/atom):"
            )
            lines.append("      r (Å)   neighbors   E/atom (eV)   ΔE/atom vs full (meV)")
            for r, n, e, change in zip(
                self.sweep_cutoffs, self.sweep_neighbors, self.sweep_energies, self._changes()
            ):
                lines.append(f"    {r:7.3f}   {n:9.2f}   {e:11.5f}   {change:14.2f}")
        lines += [f"  problem: {p}" for p in self.problems] or ["  no problems found"]
        return "\n".join(lines)

    def _changes(self) -> np.ndarray:
        """``[K]`` sweep energies per atom minus the full graph's, meV."""
        assert self.sweep_energies is not None and self.full_energy is not None
        return 1e3 * (self.sweep_energies - self.full_energy)

    def plot(self, path: str | os.PathLike[str] | None = None) -> Figure:
        """Neighbor-count histogram and the cutoff sweep (neighbors and, with a model, energy).

        Parameters
        ----------
        path
            Save the figure there when given.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        figure = Figure(figsize=(9.0, 3.6), layout="constrained")
        histogram, sweep = figure.subplots(1, 2)
        counts = self.neighbor_counts
        if counts.size:
            bins = np.arange(counts.min(), counts.max() + 2) - 0.5
            histogram.hist(counts, bins=bins, color="tab:blue")
        histogram.xaxis.set_major_locator(MaxNLocator(integer=True))
        histogram.set(
            xlabel=f"neighbors within {self.cutoff:g} Å", ylabel="atoms", title="coordination"
        )
        sweep.plot(self.sweep_cutoffs, self.sweep_neighbors, "o-", color="tab:blue")
        sweep.set(xlabel="graph cutoff r / Å", ylabel="mean neighbors", title="cutoff sweep")
        if self.sweep_energies is not None:
            energy_axis = sweep.twinx()
            energy_axis.plot(self.sweep_cutoffs, self._changes(), "s-", color="tab:red")
            energy_axis.set_ylabel("ΔE per atom vs full graph / meV", color="tab:red")
        if path is not None:
            figure.savefig(path, dpi=120)
        return figure


def diagnose(
    atoms: Atoms,
    cutoff: float | None = None,
    model: EnergyModel | str | os.PathLike[str] | None = None,
    sweep: np.ndarray | None = None,
) -> GraphDiagnosis:
    """Report on the radius graph of ``atoms`` and, with a model, sweep the graph cutoff.

    Parameters
    ----------
    atoms
        The structure (positions in Å).
    cutoff
        Graph cutoff in Å; defaults to the model's.
    model
        Optional model (or model file): adds the energy per atom of a cutoff sweep.
    sweep
        ``[K]`` graph cutoffs r in Å for the sweep; by default 11 values from 0.5 to 1.0 times the
        cutoff. With a model, values above its cutoff are pointless (edges beyond it carry
        no message) and are refused.

    Returns
    -------
    GraphDiagnosis
        Neighbor statistics, isolated atoms, self images, narrow cells, short pairs, the sweep,
        and ``problems``: one readable sentence per finding.

    Raises
    ------
    ValueError
        For structures that cannot be made into a graph at all (NaN positions, zero periodic
        cell vectors, ...; see :func:`ase_gnn.graph.neighbors.validate_structure`), without a
        cutoff, or for sweep cutoffs beyond the model's.
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if cutoff is None:
        if model is None:
            raise ValueError("diagnose needs a cutoff (in Å) or a model to take it from")
        cutoff = float(model.cutoff)
    sweep = np.linspace(0.5, 1.0, 11) * cutoff if sweep is None else np.sort(sweep)
    if model is not None and sweep.max() > model.cutoff + 1e-9:
        raise ValueError(
            f"sweep cutoffs up to {sweep.max():g} Å exceed the model's cutoff {model.cutoff:g} Å"
        )
    graph = graph_from_atoms(atoms, max(cutoff, float(sweep.max())))  # validates the input
    center, neighbor = graph.edge_index.numpy()
    distance = torch.linalg.norm(edge_vectors(graph), dim=1).numpy()
    inside = distance < cutoff
    counts = np.bincount(center[inside], minlength=len(atoms))
    isolated = np.flatnonzero(counts == 0)
    self_images = np.unique(center[inside & (center == neighbor)])
    widths = perpendicular_widths(atoms.cell[:], atoms.pbc)
    numbers = atoms.numbers
    threshold = SHORT_FACTOR * (covalent_radii[numbers[center]] + covalent_radii[numbers[neighbor]])
    short = np.flatnonzero((distance < threshold) & (center <= neighbor))
    short_pairs = [
        (int(center[k]), int(neighbor[k]), float(distance[k]), float(threshold[k])) for k in short
    ]
    sweep_neighbors = np.array([(distance < r).sum() / max(len(atoms), 1) for r in sweep])
    energies = full = None
    if model is not None:
        energies, full = _sweep_energies(model, atoms, sweep)
    report = GraphDiagnosis(
        cutoff,
        counts,
        isolated,
        self_images,
        widths,
        short_pairs,
        sweep,
        sweep_neighbors,
        energies,
        full,
    )
    report.problems = _problems(report, atoms)
    return report


def _sweep_energies(
    model: EnergyModel, atoms: Atoms, sweep: np.ndarray
) -> tuple[np.ndarray, float]:
    """Energies per atom in eV: ``[K]`` for the sweep and one for the full graph.

    At each r of ``sweep`` only the edges shorter than r are kept; the full graph keeps every
    edge within the model's cutoff.
    """
    graph = graph_from_atoms(atoms, model.cutoff, dtype=model.dtype, device=model.device)
    distance = torch.linalg.norm(edge_vectors(graph), dim=1)
    num_atoms = max(len(atoms), 1)
    energies = []
    for r in sweep:
        keep = (distance < float(r)).to(graph.dtype)
        prediction = predict(model, graph, forces=False, edge_weight=keep)
        energies.append(float(prediction.energy.sum()) / num_atoms)
    full = float(predict(model, graph, forces=False).energy.sum()) / num_atoms
    return np.array(energies), full


def _problems(report: GraphDiagnosis, atoms: Atoms) -> list[str]:
    """One sentence per finding of ``report``."""

    def listed(indices: np.ndarray) -> str:
        more = f" and {indices.size - LISTED} more" if indices.size > LISTED else ""
        return f"{indices[:LISTED].tolist()}{more}"

    problems = []
    if report.isolated.size:
        problems.append(
            f"{report.isolated.size} atoms have no neighbor within {report.cutoff:g} Å: "
            f"{listed(report.isolated)}; the model gives them their isolated-atom energy and zero "
            "force"
        )
    if report.narrow_axes:
        axes = ", ".join("abc"[axis] for axis in report.narrow_axes)
        widths = ", ".join(f"{report.widths[axis]:.3f}" for axis in report.narrow_axes)
        problems.append(
            f"the cell is narrower than the cutoff along {axes} (widths {widths} Å < "
            f"{report.cutoff:g} Å): the cutoff sphere spans several periodic images of the cell"
        )
    if report.self_images.size:
        problems.append(
            f"{report.self_images.size} atoms see their own periodic image within the cutoff: "
            f"{listed(report.self_images)}; a defect or molecule in such a cell interacts with "
            "its copies"
        )
    for i, j, distance, threshold in report.short_pairs[:LISTED]:
        pair = f"{chemical_symbols[atoms.numbers[i]]}{i}-{chemical_symbols[atoms.numbers[j]]}{j}"
        problems.append(
            f"{pair} are {distance:.3f} Å apart, closer than {threshold:.3f} Å "
            f"({SHORT_FACTOR} × the sum of covalent radii): overlapping atoms, outside any "
            "training data"
        )
    if len(report.short_pairs) > LISTED:
        problems.append(f"... and {len(report.short_pairs) - LISTED} more short pairs")
    return problems
