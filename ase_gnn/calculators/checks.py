"""Checks shared by the calculators and batched evaluation: a model and a graph they can use.

The input checks turn a silent wrong answer into a ``ValueError`` before the model runs: a model
whose total energy is not extensive would give ASE an intensive ``energy`` and forces scaled by
1/N, and two atoms at the same position give non-finite energies. :func:`check_finite` is the
last line of defence on the results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import CalculationFailed

from ase_gnn.graph.atomic_graph import AtomicGraph, edge_vectors
from ase_gnn.graph.neighbors import wrapped_positions
from ase_gnn.models.base import EnergyModel

#: Atoms closer than this (Å), periodic images included, count as being at the same position.
MIN_DISTANCE = 1e-6


def check_extensive(model: EnergyModel) -> None:
    """Raise ``ValueError`` unless ``model``'s total energy is extensive (``readout="sum"``).

    Parameters
    ----------
    model
        The potential a calculator or :func:`ase_gnn.evaluate` is about to use.

    Raises
    ------
    ValueError
        For ``readout="mean"``: the energy would be per atom (intensive) and the forces, its
        derivatives, scaled by 1/N, which no ASE dynamics or optimizer can use.
    """
    readout = getattr(model, "readout", "sum")
    if readout != "sum":
        raise ValueError(
            f"the model has readout={readout!r}: its energy is intensive (divided by the number "
            "of atoms) and its forces are scaled by 1/N, so it cannot serve as an ASE "
            "calculator; use readout='sum' for potentials (a mean readout is for graph heads)"
        )


def coincident_edge(graph: AtomicGraph) -> tuple[int, float] | None:
    """The first edge of ``graph`` shorter than :data:`MIN_DISTANCE`, and its length in Å.

    Every cutoff is longer than :data:`MIN_DISTANCE`, so any two atoms at the same position
    (periodic images included) are joined by an edge. None if there is no such edge.
    """
    with torch.no_grad():
        lengths = edge_vectors(graph).norm(dim=1)  # [E], Å
        close = torch.nonzero(lengths < MIN_DISTANCE).flatten()
    if close.numel() == 0:
        return None
    return int(close[0]), float(lengths[close[0]])


def check_distinct_positions(graph: AtomicGraph, atoms: Atoms, where: str = "") -> None:
    """Raise ``ValueError`` naming two atoms of ``graph`` that are at the same position.

    Uses the edges already built: any pair closer than :data:`MIN_DISTANCE` Å, periodic images
    included, is an edge, because every cutoff is longer.

    Parameters
    ----------
    graph
        The graph of ``atoms`` (one structure).
    atoms
        The structure itself: the message names a periodic image by its cell shift in
        ``atoms.positions`` (the graph's positions are wrapped into the cell).
    where
        Prefix for the message, such as ``"structure 3: "``.

    Raises
    ------
    ValueError
        ``"atoms 3 and 7 are at the same position ..."`` for the first such pair.
    """
    found = coincident_edge(graph)
    if found is None:
        return
    edge, length = found
    center, neighbor = (int(k) for k in graph.edge_index[:, edge])
    # The graph's shift refers to wrapped positions; name the image as in atoms.positions.
    _, offsets = wrapped_positions(atoms)
    shift = graph.edge_shift[edge].round().long().cpu().numpy()
    shift = shift - offsets[neighbor] + offsets[center]
    i, j = sorted((center, neighbor))
    if (i, j) != (center, neighbor):
        shift = -shift
    image = f" (periodic image shifted by {shift.tolist()} cells)" if shift.any() else ""
    raise ValueError(
        f"{where}atoms {i} and {j} are at the same position{image}, "
        f"{length:.3g} Å apart: the model's energy is not defined there; "
        "remove the duplicate atom"
    )


def check_finite(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` unchanged, or ``CalculationFailed`` naming the first non-finite property."""
    for name, value in results.items():
        if not np.isfinite(value).all():
            raise CalculationFailed(f"the model returned non-finite {name}")
    return results
