"""Atomic graphs: the structure type (``atomic_graph``), neighbour search (``neighbors``) and the
Verlet-skin neighbour list (``skin``).

The names of ``atomic_graph`` are also importable from here, as they were from the module
``ase_gnn.graph`` before 0.2 (``from ase_gnn.graph import AtomicGraph`` keeps working).
"""

from ase_gnn.graph.atomic_graph import (
    MIN_STRESS_VOLUME,
    AtomicGraph,
    atoms_per_graph,
    batch_graphs,
    edge_pairs,
    edge_vectors,
    has_stress,
    reverse_edges,
    stress_mask,
    sum_per_graph,
    unbatch,
)

__all__ = [
    "MIN_STRESS_VOLUME",
    "AtomicGraph",
    "atoms_per_graph",
    "batch_graphs",
    "edge_pairs",
    "edge_vectors",
    "has_stress",
    "reverse_edges",
    "stress_mask",
    "sum_per_graph",
    "unbatch",
]
