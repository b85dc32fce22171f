"""Atomic graphs: the one structure type every model, trainer and explainer sees.

Shapes (N atoms, E edges, B graphs):

============== =============== ======= ==============================================
field          shape           dtype   meaning
============== =============== ======= ==============================================
species        [N]             long    atomic numbers Z
positions      [N, 3]          float   Cartesian positions, Å (wrapped and centred, below)
cell           [B, 3, 3]       float   lattice vectors as rows, Å (zero rows allowed on
                                       non-periodic axes)
pbc            [B, 3]          bool    periodic axes
edge_index     [2, E]          long    row 0 = centre atom i, row 1 = neighbor j
edge_shift     [E, 3]          float   integer cell offsets S, r_ij = r_j + S·cell − r_i
batch          [N]             long    graph index of every atom
ptr            [B + 1]         long    atoms of graph b are ptr[b]:ptr[b + 1]
charge         [B] or None     float   total charge of each structure, e (``atoms.info
                                       ["charge"]``); None: every structure neutral
============== =============== ======= ==============================================

The graph holds structure only; labels travel beside it.

Positions of a graph from :func:`~ase_gnn.graph.neighbors.graph_from_atoms` are
:func:`~ase_gnn.graph.neighbors.wrapped_positions`, not ``atoms.positions`` themselves: periodic
atoms wrapped into the cell (by whole lattice vectors, per atom) and the rest centred (one
translation), in float64 before the cast, with ``edge_shift`` referring to these positions. Edge
vectors, and so energies, forces and stresses, are unchanged, and they stay exact in float32 for
structures far from the origin. Code that pairs a graph's ``edge_shift`` with ``atoms.positions``
must convert it with the ``offsets`` that :func:`~ase_gnn.graph.neighbors.wrapped_positions`
returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    import ase

#: Cells with a smaller volume (Å³) count as flat: they have no stress.
MIN_STRESS_VOLUME = 1e-10


@dataclass(frozen=True)
class AtomicGraph:
    """A batch of B ≥ 1 atomic structures with their neighbor graphs (see module docstring).

    Build one with :func:`~ase_gnn.graph.neighbors.graph_from_atoms` and combine several with
    :func:`batch_graphs`.
    ``edge_shift`` is stored in the float dtype of ``positions`` (its values are integers) so
    that edge vectors need no cast.
    """

    species: Tensor
    positions: Tensor
    cell: Tensor
    pbc: Tensor
    edge_index: Tensor
    edge_shift: Tensor
    batch: Tensor
    ptr: Tensor
    charge: Tensor | None = None

    @property
    def num_atoms(self) -> int:
        """Number of atoms N in the whole batch."""
        return int(self.species.shape[0])

    @property
    def num_edges(self) -> int:
        """Number of directed edges E in the whole batch."""
        return int(self.edge_index.shape[1])

    @property
    def num_graphs(self) -> int:
        """Number of structures B."""
        return int(self.cell.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        """Float dtype of positions and cell."""
        return self.positions.dtype

    @property
    def device(self) -> torch.device:
        """Device that holds the tensors."""
        return self.positions.device

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> AtomicGraph:
        """Copy on ``device`` with float fields cast to ``dtype`` (integer fields keep theirs)."""
        values: dict[str, Tensor | None] = {}
        for field in fields(self):
            tensor: Tensor | None = getattr(self, field.name)
            if tensor is None:
                values[field.name] = None
            elif tensor.is_floating_point():
                values[field.name] = tensor.to(device=device, dtype=dtype)
            else:
                values[field.name] = tensor.to(device=device)
        return AtomicGraph(**values)  # type: ignore[arg-type]  # None only where allowed

    def with_positions(self, positions: Tensor, cell: Tensor | None = None) -> AtomicGraph:
        """The same graph with new ``positions [N, 3]`` (and optionally ``cell [B, 3, 3]``)."""
        return replace(self, positions=positions, cell=self.cell if cell is None else cell)


def edge_vectors(graph: AtomicGraph) -> Tensor:
    """Edge vectors r_ij = r_j + S_ij·cell − r_i.

    Parameters
    ----------
    graph
        The atomic graph.

    Returns
    -------
    Tensor
        ``[E, 3]`` vectors from centre i to neighbor j, in Å. Differentiable with respect to
        ``graph.positions`` and ``graph.cell`` (the path autograd forces and stress take).
    """
    center, neighbor = graph.edge_index
    # index_select rather than positions[index]: its backward (index_add) is faster on CPU.
    positions = graph.positions
    vectors = positions.index_select(0, neighbor) - positions.index_select(0, center)
    if graph.num_edges == 0:
        return vectors
    if graph.num_graphs == 1 or int(center.max()) < int(graph.ptr[1]):
        # All edges lie in the first structure (always for B = 1, and in EnergyModel.forward,
        # where only edgeless isolated atoms follow): one cell for all, 3x cheaper than per edge.
        return vectors + graph.edge_shift @ graph.cell[0]
    edge_cell = graph.cell[graph.batch[center]]  # [E, 3, 3]
    return vectors + torch.bmm(graph.edge_shift.unsqueeze(1), edge_cell).squeeze(1)


def reverse_edges(edge_index: Tensor, edge_shift: Tensor) -> Tensor:
    """Index of the reverse of every edge: i → j with shift S ↔ j → i with shift −S.

    The one implementation of reverse-edge matching (:func:`edge_pairs`, and the bonds of
    ``explain`` attributions, use it).

    Parameters
    ----------
    edge_index
        ``[2, E]`` long, centre and neighbour of every edge.
    edge_shift
        ``[E, 3]`` integer cell offsets (any dtype holding integers).

    Returns
    -------
    Tensor
        ``[E]`` long: the reverse edge of every edge, or −1 where the graph lacks it (a graph
        from :func:`~ase_gnn.graph.neighbors.graph_from_atoms` has every reverse).
    """
    num_edges = edge_index.shape[1]
    if num_edges == 0:
        return torch.empty(0, dtype=torch.long, device=edge_index.device)
    center, neighbor = edge_index
    shift = edge_shift.round().long()
    # Encode (i, j, S) as one integer; digits of S lie in [0, base), so −S has code base³−1−code.
    span = int(shift.abs().max())
    base = 2 * span + 1
    num_atoms = int(edge_index.max()) + 1
    if num_atoms**2 * base**3 < 2**62:
        code = ((shift[:, 0] + span) * base + shift[:, 1] + span) * base + shift[:, 2] + span
        key = (center * num_atoms + neighbor) * base**3 + code
        reverse_key = (neighbor * num_atoms + center) * base**3 + (base**3 - 1 - code)
    else:  # the code would overflow int64: number the distinct (i, j, S) rows instead
        rows = torch.cat([torch.stack([center, neighbor], 1), shift], 1)
        flipped = torch.cat([torch.stack([neighbor, center], 1), -shift], 1)
        ids = torch.unique(torch.cat([rows, flipped]), dim=0, return_inverse=True)[1]
        key, reverse_key = ids[:num_edges], ids[num_edges:]
    sorted_key, order = key.sort()
    position = torch.searchsorted(sorted_key, reverse_key).clamp(max=num_edges - 1)
    found = sorted_key.index_select(0, position) == reverse_key
    return torch.where(found, order.index_select(0, position), -1)


def edge_pairs(graph: AtomicGraph) -> tuple[Tensor, Tensor]:
    """Pair every edge i → j (shift S) with its reverse j → i (shift −S), which has the same length.

    Radial functions are then evaluated once per pair instead of once per edge (half the work
    on a graph from :func:`~ase_gnn.graph.neighbors.graph_from_atoms`, where every edge has its
    reverse). An edge whose reverse is not in the graph forms a pair alone, so any graph works.

    Parameters
    ----------
    graph
        The atomic graph (one structure or a batch).

    Returns
    -------
    first : Tensor
        ``[P]`` long, one edge of every pair (the lower index), in increasing order.
    pair : Tensor
        ``[E]`` long, the pair of every edge: ``first[pair[e]]`` is e or its reverse.
    """
    reverse = reverse_edges(graph.edge_index, graph.edge_shift)
    index = torch.arange(graph.num_edges, device=reverse.device)
    is_first = (reverse < 0) | (index <= reverse)
    slot = torch.cumsum(is_first, 0) - 1
    pair = torch.where(is_first, slot, slot.index_select(0, reverse.clamp(min=0)))
    return is_first.nonzero().squeeze(1), pair


def batch_graphs(graphs: Sequence[AtomicGraph]) -> AtomicGraph:
    """Concatenate graphs into one batch (edge indices offset, batch and ptr rebuilt).

    Parameters
    ----------
    graphs
        One or more graphs (each may itself be a batch) on the same device and dtype.

    Returns
    -------
    AtomicGraph
        A batch with ``sum(g.num_graphs)`` structures, in the given order.
    """
    if len(graphs) == 0:
        raise ValueError("batch_graphs needs at least one graph")
    if len(graphs) == 1:
        return graphs[0]
    atom_offsets = torch.tensor([0] + [g.num_atoms for g in graphs]).cumsum(0).tolist()
    graph_offsets = torch.tensor([0] + [g.num_graphs for g in graphs]).cumsum(0).tolist()
    device = graphs[0].device
    ptr = torch.cat(
        [graphs[0].ptr[:1]] + [g.ptr[1:] + atom_offsets[k] for k, g in enumerate(graphs)]
    )
    return AtomicGraph(
        species=torch.cat([g.species for g in graphs]),
        positions=torch.cat([g.positions for g in graphs]),
        cell=torch.cat([g.cell for g in graphs]),
        pbc=torch.cat([g.pbc for g in graphs]),
        edge_index=torch.cat([g.edge_index + atom_offsets[k] for k, g in enumerate(graphs)], dim=1),
        edge_shift=torch.cat([g.edge_shift for g in graphs]),
        batch=torch.cat([g.batch + graph_offsets[k] for k, g in enumerate(graphs)]),
        ptr=ptr.to(device),
        charge=None
        if all(g.charge is None for g in graphs)
        else torch.cat([total_charge(g) for g in graphs]),
    )


def total_charge(graph: AtomicGraph) -> Tensor:
    """``[B]`` total charge of every structure, e (zeros where ``graph.charge`` is None)."""
    if graph.charge is not None:
        return graph.charge
    return torch.zeros(graph.num_graphs, dtype=graph.dtype, device=graph.device)


def unbatch(values: Tensor, ptr: Tensor) -> list[Tensor]:
    """Split a per-atom tensor ``[N, ...]`` into one tensor per graph using ``ptr [B + 1]``."""
    sizes = (ptr[1:] - ptr[:-1]).tolist()
    return list(torch.split(values, sizes))


def sum_per_graph(values: Tensor, graph: AtomicGraph) -> Tensor:
    """Sum a per-atom tensor ``[N, ...]`` over the atoms of every graph, giving ``[B, ...]``."""
    out = values.new_zeros((graph.num_graphs, *values.shape[1:]))
    return out.index_add(0, graph.batch, values)


def atoms_per_graph(graph: AtomicGraph) -> Tensor:
    """Number of atoms of every graph, ``[B]`` long."""
    return graph.ptr[1:] - graph.ptr[:-1]


def has_stress(atoms: ase.Atoms) -> bool:
    """Whether ``atoms`` has a stress: some axis periodic and a cell of non-zero volume.

    The one definition used by calculators, batched evaluation, training and explanations
    (:func:`stress_mask` is the same test on a graph). Like ASE's EMT, a structure with no
    periodic axis has no stress; unlike a test of the cell's rank, a nearly flat cell (volume
    below :data:`MIN_STRESS_VOLUME` Å³) has none either, so no caller ever divides by ~0.
    """
    volume = abs(float(np.linalg.det(atoms.cell.array)))
    return bool(atoms.pbc.any()) and volume > MIN_STRESS_VOLUME


def stress_mask(graph: AtomicGraph) -> Tensor:
    """``[B]`` bool: which structures of ``graph`` have a stress (see :func:`has_stress`)."""
    volume = torch.linalg.det(graph.cell).abs()
    return graph.pbc.any(dim=1) & (volume > MIN_STRESS_VOLUME)
