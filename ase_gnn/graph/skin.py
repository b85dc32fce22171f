"""A Verlet-skin neighbor list for MD: rebuild the pair list only when atoms moved enough.

Pairs are searched once within ``cutoff + skin``; at every step the cached pairs are measured
again and those closer than ``cutoff`` form the graph. No pair can enter the cutoff sphere
unnoticed while every atom has moved less than ``skin / 2`` since the search (two atoms then
approach each other by less than ``skin``), so the graph equals a fresh one (same edges, possibly
in another order). A search is redone when an atom moved further, or when the cell, the periodic
axes or the atoms themselves changed.

The graph's positions are :func:`~ase_gnn.graph.neighbors.wrapped_positions` of the current atoms,
exactly as in a fresh graph; the cached cell shifts are moved along when an atom has been wrapped
into the cell by other lattice vectors than at the search.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from ase import Atoms

from ase_gnn.graph.atomic_graph import AtomicGraph
from ase_gnn.graph.neighbors import (
    graph_from_atoms,
    structure_charge,
    validate_structure,
    wrapped_positions,
)


class SkinNeighborList:
    """Graphs of a changing structure from a cached, skin-padded pair list.

    Parameters
    ----------
    cutoff
        The model's cutoff, Å.
    skin
        Extra search radius, Å: larger means fewer searches but more pairs to measure.

    Attributes
    ----------
    searches
        Number of pair searches so far (the first one included).
    """

    def __init__(self, cutoff: float, skin: float = 1.0) -> None:
        if not skin > 0:
            raise ValueError(f"skin must be positive, got {skin}")
        self.cutoff, self.skin = float(cutoff), float(skin)
        self.searches = 0
        self._padded: AtomicGraph | None = None
        self._reference: Atoms | None = None
        self._offsets = np.zeros((0, 3), dtype=np.int64)  # lattice offsets at the search

    def _stale(self, atoms: Atoms) -> bool:
        reference = self._reference
        if reference is None or len(reference) != len(atoms):
            return True
        if (reference.numbers != atoms.numbers).any() or (reference.pbc != atoms.pbc).any():
            return True
        if not np.array_equal(reference.cell.array, atoms.cell.array):
            return True
        moved = np.linalg.norm(atoms.positions - reference.positions, axis=1)
        return bool(moved.max(initial=0.0) > 0.5 * self.skin)

    def graph(
        self, atoms: Atoms, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> AtomicGraph:
        """The radius graph of ``atoms`` at ``cutoff``, as :func:`ase_gnn.graph_from_atoms`."""
        validate_structure(atoms, self.cutoff)
        padded = self._padded
        wrapped, offsets = wrapped_positions(atoms)  # float64, before the cast
        if padded is None or padded.dtype != dtype or self._stale(atoms):
            padded = graph_from_atoms(atoms, self.cutoff + self.skin, dtype=dtype, device=device)
            self._padded, self._reference, self._offsets = padded, atoms.copy(), offsets
            self.searches += 1
        positions = torch.as_tensor(wrapped, dtype=dtype, device=padded.positions.device)
        center, neighbor = padded.edge_index
        # the shifts refer to the positions wrapped as at the search: rewrap them as now
        moved = torch.as_tensor(offsets - self._offsets, dtype=dtype, device=positions.device)
        shift = padded.edge_shift + moved[neighbor] - moved[center]
        vectors = positions[neighbor] - positions[center] + shift @ padded.cell[0]
        keep = vectors.norm(dim=1) < self.cutoff
        graph = dataclasses.replace(
            padded,
            positions=positions,
            edge_index=padded.edge_index[:, keep],
            edge_shift=shift[keep],
            charge=torch.tensor([structure_charge(atoms)], dtype=dtype, device=positions.device),
        )
        return graph.to(device)
