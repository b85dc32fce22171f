"""``Attribution``: scores on the atoms and bonds of one structure, with what they explain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ase import Atoms

from ase_gnn import reverse_edges as graph_reverse_edges

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Attribution:
    """Attributions of one target of one structure.

    Attributes
    ----------
    atoms
        The structure (a copy without calculator).
    method, target, level, baseline
        How the scores were made (``level``: ``"edge"``, ``"atom"`` or ``"position"``).
    node
        ``[N]`` scores per atom, in the target's unit (eV for energies). For edge level, each
        edge's score split equally between its two atoms, so ``node.sum() == edge.sum()``; for
        position level, the norm of each atom's gradient row.
    edge
        ``[E]`` scores per directed edge (edge level only, else None).
    edge_index
        ``[2, E]`` centre i and neighbor j of every edge.
    edge_shift
        ``[E, 3]`` integer cell offsets: r_ij = r_j + shift · cell − r_i.
    position
        ``[N, 3]`` gradients of the target with respect to positions (position level only).
    target_value
        The target at the input (all gates 1).
    baseline_value
        The target at the baseline (``"isolated"``: every gate 0, energy = Σ E0); NaN where
        there is no baseline (position level).
    completeness_gap
        ``sum(scores) − (target_value − baseline_value)``; near 0 for complete methods
        (Integrated Gradients, Shapley values), NaN where undefined (masks, position level).
    convergence_delta
        Captum's estimate of the integration error (Integrated Gradients), else None.
    interaction
        ``[K, K]`` pairwise interactions of the inputs (edges or atoms), symmetric, rows summing
        to the scores (``integrated_hessians`` only, else None); see
        :func:`explain.many_body.triplet_interactions`.
    """

    atoms: Atoms
    method: str
    target: str
    level: str
    baseline: str
    node: np.ndarray
    edge: np.ndarray | None
    edge_index: np.ndarray
    edge_shift: np.ndarray
    position: np.ndarray | None
    target_value: float
    baseline_value: float
    completeness_gap: float
    convergence_delta: float | None = None
    interaction: np.ndarray | None = None

    @property
    def scores(self) -> np.ndarray:
        """The attributed inputs: ``edge`` at edge level, ``node`` otherwise."""
        return self.edge if self.edge is not None else self.node

    @property
    def edge_vectors(self) -> np.ndarray:
        """``[E, 3]`` bond vectors r_ij, Å."""
        positions = self.atoms.positions
        i, j = self.edge_index
        return positions[j] + self.edge_shift @ self.atoms.cell.array - positions[i]

    @property
    def edge_lengths(self) -> np.ndarray:
        """``[E]`` bond lengths, Å."""
        return np.linalg.norm(self.edge_vectors, axis=1)

    def bonds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Undirected bonds, each directed pair i→j, j→i merged.

        Returns
        -------
        edges : ndarray
            ``[P]`` index of one directed edge per bond (i ≤ j), into ``edge_index``.
        scores : ndarray
            ``[P]`` bond scores: the sum of both directions.
        lengths : ndarray
            ``[P]`` bond lengths, Å.
        """
        if self.edge is None:
            raise ValueError(f"bond scores need edge-level attributions, not {self.level!r}")
        reverse = reverse_edges(self.edge_index, self.edge_shift)
        forward = np.flatnonzero(np.arange(len(reverse)) <= reverse)
        return forward, self.edge[forward] + self.edge[reverse[forward]], self.edge_lengths[forward]

    def by_distance(self, bands: np.ndarray | list[float] | None = None) -> dict[str, float]:
        """Sum of edge scores in distance bands, e.g. ``{"0-2 Å": …, "2-3 Å": …}``.

        Parameters
        ----------
        bands
            Band edges in Å (default 0, 2, 3, 4, 5, … up to the longest edge).
        """
        if self.edge is None:
            raise ValueError(f"distance bands need edge-level attributions, not {self.level!r}")
        lengths = self.edge_lengths
        if bands is None:
            bands = [0.0, 2.0, *np.arange(3.0, max(3.0, float(np.ceil(lengths.max()))) + 1)]
        edges = np.asarray(bands, dtype=float)
        index = np.digitize(lengths, edges) - 1
        return {
            f"{edges[k]:g}-{edges[k + 1]:g} Å": float(self.edge[index == k].sum())
            for k in range(len(edges) - 1)
        }

    def to_atoms(self) -> Atoms:
        """A copy of the structure with the scores in ``atoms.arrays`` for ASE viewers/writers.

        ``arrays["attribution"]`` holds ``node`` ``[N]`` (and ``"attribution_gradient"`` the
        ``[N, 3]`` position gradients); ``info`` holds method, target, level and the values.
        """
        atoms = self.atoms.copy()
        atoms.arrays["attribution"] = self.node.copy()
        if self.position is not None:
            atoms.arrays["attribution_gradient"] = self.position.copy()
        atoms.info.update(
            attribution_method=self.method,
            attribution_target=self.target,
            attribution_level=self.level,
            attribution_target_value=self.target_value,
            attribution_baseline_value=self.baseline_value,
        )
        return atoms

    def plot3d(self, path: str | None = None, ax: Axes | None = None, **kwargs: Any) -> Figure:
        """3-D view; see :func:`explain.visualize.plot_structure`."""
        from explain.visualize import plot_structure

        return plot_structure(self, path=path, ax=ax, projection="3d", **kwargs)

    def plot2d(self, path: str | None = None, ax: Axes | None = None, **kwargs: Any) -> Figure:
        """Projection on a plane; see :func:`explain.visualize.plot_structure`."""
        from explain.visualize import plot_structure

        return plot_structure(self, path=path, ax=ax, projection="2d", **kwargs)


def reverse_edges(edge_index: np.ndarray, edge_shift: np.ndarray) -> np.ndarray:
    """``[E]`` index of the reverse of every edge (see :func:`ase_gnn.reverse_edges`).

    Raises
    ------
    ValueError
        If some edge has no reverse (the neighbor list is not symmetric).
    """
    reverse = graph_reverse_edges(torch.as_tensor(edge_index), torch.as_tensor(edge_shift))
    if bool((reverse < 0).any()):
        raise ValueError("the neighbor list is not symmetric: some edge has no reverse")
    return reverse.numpy()


def bond_ids(edge_index: np.ndarray, edge_shift: np.ndarray) -> np.ndarray:
    """``[E]`` bond 0…P−1 of every edge; an edge and its reverse share one."""
    first = np.minimum(np.arange(edge_index.shape[1]), reverse_edges(edge_index, edge_shift))
    return np.unique(first, return_inverse=True)[1].reshape(-1)


def match_rows(rows: np.ndarray, queries: np.ndarray, error: str) -> np.ndarray:
    """Index into ``rows`` ``[R, C]`` of every row of ``queries`` ``[Q, C]`` (integer arrays).

    Raises
    ------
    ValueError
        With message ``error`` if some query is not among the rows.
    """
    _, ids = np.unique(np.concatenate([rows, queries]), axis=0, return_inverse=True)
    ids = ids.reshape(-1)
    lookup = np.full(int(ids.max(initial=0)) + 1, -1)
    lookup[ids[: len(rows)]] = np.arange(len(rows))
    index = lookup[ids[len(rows) :]]
    if (index < 0).any():
        raise ValueError(error)
    return index
