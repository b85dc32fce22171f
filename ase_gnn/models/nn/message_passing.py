"""The generic message-passing layer: message → aggregate → update, each a visible step.

Every edge carries a weight w_ij = envelope(r_ij) · edge_weight_ij that multiplies its message, so
messages fade smoothly to zero at the cutoff and an explicit ``edge_weight`` of 0 removes the edge
exactly (the hook ``explain`` uses for bonds).

Aggregations, for the messages m_ij (already multiplied by w_ij) arriving at atom i:

* ``"sum"``:  a_i = Σ_j m_ij. Features grow with coordination; the default for potentials.
* ``"mean"``: a_i = Σ_j m_ij / (s_i + exp(−s_i)) with s_i = Σ_j w_ij, the envelope-weighted
  average. For ordinary coordination (s ≳ 5) the denominator is s to within 1 %; the exp(−s)
  term makes a_i vanish smoothly as the last neighbor leaves, where a plain Σ m / Σ w would jump.
  A zero-weight edge is exactly absent.
* ``"max"``:  a_i = max(0, max_j m_ij) per feature. The floor at 0 keeps the energy continuous
  when a neighbor leaves (its message has faded to 0) and makes a zero-weight edge exactly
  absent, but forces jump where the maximising neighbor changes: fine for classification heads,
  not for molecular dynamics.

All three are permutation invariant. None of them affects extensivity of the energy, which is
decided by the graph readout (``"sum"`` of local energies is extensive, ``"mean"`` is intensive).

Performance: on CPU the per-edge tensors ``[E, F]`` dominate the cost (about 20 of them per layer
in forward and backward). :class:`MessagePassing` therefore builds and sums messages in chunks of
edges on CPU (``"sum"`` and ``"mean"``), so that every per-edge temporary is about 1 MiB. A chunk
holds the edges of consecutive centre atoms (``graph_from_atoms`` sorts edges by centre), so the
cost stays linear in N up to at least 32,000 atoms. Chunks stay in the L2 cache between
consecutive operations and, more importantly, the allocator reuses their memory: whole-graph
temporaries (5 MiB at 500 Cu atoms in float32, 44 MiB at 2048 atoms in float64) go back to the
operating system after every call and are page-faulted in again on the next, which took 25-65 %
of a call (kernel time, measured with ``bench/md_step.py``). Chunking changes no formula and the
sums visit the edges in the same order; results differ from one pass only by the rounding of
matrix products, whose kernels depend on the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

import torch
from torch import Tensor, nn

Aggregation = Literal["sum", "mean", "max"]
AGGREGATIONS: tuple[str, ...] = ("sum", "mean", "max")

#: Feature exchange every layer applies to its input, and the ghost rows it fills (see
#: :func:`halo_exchange`).
_HALO: ContextVar[tuple[Callable[[Tensor], Tensor], slice] | None] = ContextVar(
    "halo", default=None
)


@contextmanager
def halo_exchange(exchange: Callable[[Tensor], Tensor], ghosts: slice) -> Iterator[None]:
    """Within the block, every :class:`MessagePassing` layer first passes its input through
    ``exchange``, and updates only the rows outside ``ghosts``.

    This is how a graph split over MPI ranks stays exact with a ghost shell of one cutoff: the
    rows ``ghosts`` of such a graph are copies of atoms that another rank owns, and
    ``exchange`` ``[N, ...] → [N, ...]`` overwrites them with their owners' current features,
    differentiably (its backward pass sends the ghosts' gradients back to the owners). Every
    architecture built on :class:`MessagePassing` honours it, so an L-layer model sees the
    exact L-cutoff neighbourhood. A ghost's own update would be overwritten by the next
    exchange (and its incoming edges are on its owner's rank), so layers skip it: their
    output is 0 in the ghost rows. See :mod:`ase_gnn.lammps.halo`.

    Parameters
    ----------
    exchange
        Maps node features ``[N, ...]`` to the same shape with the ghost rows replaced.
    ghosts
        The rows (a contiguous range) that ``exchange`` fills.
    """
    token = _HALO.set((exchange, ghosts))
    try:
        yield
    finally:
        _HALO.reset(token)


def aggregate(
    messages: Tensor, center: Tensor, weights: Tensor, num_atoms: int, how: Aggregation
) -> Tensor:
    """Aggregate weighted edge messages onto their centre atoms.

    Parameters
    ----------
    messages
        ``[E, F]`` messages, already multiplied by their edge weights.
    center
        ``[E]`` index of the receiving atom i of every edge.
    weights
        ``[E]`` edge weights w_ij (envelope × edge_weight), used by ``"mean"``.
    num_atoms
        N, the number of receiving atoms.
    how
        ``"sum"``, ``"mean"`` or ``"max"`` (see module docstring).

    Returns
    -------
    Tensor
        ``[N, F]`` aggregated messages; atoms without incoming edges get 0.
    """
    out = messages.new_zeros((num_atoms, messages.shape[1]))
    if how == "sum":
        return out.index_add(0, center, messages)
    if how == "mean":
        return _weighted_mean(out.index_add(0, center, messages), center, weights)
    if how == "max":
        index = center.unsqueeze(-1).expand_as(messages)
        return out.scatter_reduce(0, index, messages, reduce="amax", include_self=True)
    raise ValueError(f"unknown aggregation {how!r}; choose one of {AGGREGATIONS}")


def _weighted_mean(total: Tensor, center: Tensor, weights: Tensor) -> Tensor:
    """Turn summed messages ``[N, F]`` into the smooth weighted mean of the module docstring."""
    weight_sum = weights.new_zeros(total.shape[0]).index_add(0, center, weights)
    return total / (weight_sum + torch.exp(-weight_sum)).unsqueeze(-1)


class _GatherChunks(torch.autograd.Function):
    """``x[index]`` as views of ``sizes`` rows each (one gather for all chunks).

    The backward pass adds every chunk's gradient straight into one ``[N, F]`` tensor, in place
    (``torch.split`` would first concatenate them into a whole ``[E, F]`` gradient, and gathering
    per chunk would allocate an ``[N, F]`` gradient per chunk). It uses differentiable
    operations, so forces can be trained through it (double backward).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, index: Tensor, sizes: list[int]) -> tuple[Tensor, ...]:
        ctx.save_for_backward(index)
        ctx.sizes, ctx.num_rows = sizes, x.shape[0]
        return tuple(x.index_select(0, index).split(sizes))

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor, None, None]:
        (index,) = ctx.saved_tensors
        total = grads[0].new_zeros((ctx.num_rows, *grads[0].shape[1:]))
        for part, grad in zip(index.split(ctx.sizes), grads):
            total = total.index_add_(0, part, grad)
        return total, None, None


class MessagePassing(nn.Module):
    """One message-passing layer with its three steps as separate methods.

    Subclasses implement :meth:`message` and :meth:`update` (and may override :meth:`transform`
    and :meth:`edge_transform`);
    :meth:`forward` wires them:

    0. ``x = transform(h)``, an optional per-atom map done once per atom rather than per edge,
       and ``e_ij = edge_transform(edge_features_ij)``, once per pair of reverse edges if asked
    1. ``m_ij = message(x_i, x_j, e_ij) · w_ij``
    2. ``a_i = aggregate({m_ij})`` (sum / mean / max)
    3. ``h_i' = update(h_i, a_i)``

    Parameters
    ----------
    aggregation
        ``"sum"``, ``"mean"`` or ``"max"``.
    """

    #: Whether :meth:`message` reads h_i; if not, the [E, F] gather of centre features is skipped.
    uses_center_features: bool = True
    #: Edges per chunk are chosen so that a chunk's ``[edges, F]`` tensor has about this many
    #: elements (1 MiB in float32); see the module docstring for why.
    chunk_elements: int = 2**18

    def __init__(self, aggregation: Aggregation = "sum") -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {AGGREGATIONS}")
        self.aggregation: Aggregation = aggregation

    def message(self, h_center: Tensor | None, h_neighbor: Tensor, edge_features: Tensor) -> Tensor:
        """Message ``[E, F]`` from neighbor j to centre i (before the edge weight), given the
        edge features after :meth:`edge_transform`.

        ``h_center`` is None when the layer declares ``uses_center_features = False``.
        """
        raise NotImplementedError

    def transform(self, h: Tensor) -> Tensor:
        """Per-atom features ``[N, F']`` that messages are built from (identity by default)."""
        return h

    def edge_transform(self, edge_features: Tensor) -> Tensor:
        """Work on edge features alone, ``[E, K] → [E, K']``, before :meth:`message` (identity by
        default; SchNet's filters). It runs once per pair of reverse edges when :meth:`forward`
        gets ``pair`` (the features of both edges are then equal, e.g. functions of |r_ij|)."""
        return edge_features

    def update(self, h: Tensor, aggregated: Tensor) -> Tensor:
        """New node features ``[N, F]`` from old ones and the aggregated messages."""
        raise NotImplementedError

    def forward(
        self,
        h: Tensor,
        edge_index: Tensor,
        edge_features: Tensor,
        edge_weights: Tensor,
        pair: Tensor | None = None,
    ) -> Tensor:
        """Run message → aggregate → update.

        Parameters
        ----------
        h
            ``[N, F]`` node features.
        edge_index
            ``[2, E]`` (centre i, neighbor j).
        edge_features
            ``[E, K]`` edge features (e.g. the radial basis), or ``[P, K]`` per pair with ``pair``.
        edge_weights
            ``[E]`` weights w_ij (envelope × edge_weight).
        pair
            ``[E]`` pair of every edge (see :func:`ase_gnn.graph.atomic_graph.edge_pairs`):
            ``edge_features`` are then given per pair and :meth:`edge_transform` runs once per pair.

        Returns
        -------
        Tensor
            ``[N, F]`` updated node features.
        """
        halo = _HALO.get()
        ghosts = None
        if halo is not None:
            exchange, ghosts = halo
            h = exchange(h)
        center = edge_index[0]
        x = self.transform(h)
        transform_edges = pair is None
        if pair is not None:
            edge_features = self.edge_transform(edge_features).index_select(0, pair)
        # One pass over all edges for "max" (the gradient of a maximum is shared evenly among
        # tied edges, which per-chunk maxima would not reproduce), off the CPU (GPU allocators
        # cache memory, and every chunk costs kernel launches: 7x slower at 2048 Cu atoms on an
        # H200), under torch.compile (a Python loop over chunks would specialise the compiled
        # graph on the edge count and recompile at every MD step; the compiler plans memory) and
        # for edges not grouped by centre atom (hand-made graphs; graph_from_atoms sorts them).
        if (
            self.aggregation == "max"
            or x.device.type != "cpu"
            or torch.compiler.is_compiling()
            or center.numel() == 0
            or not bool((center[1:] >= center[:-1]).all())
        ):
            if transform_edges:
                edge_features = self.edge_transform(edge_features)
            messages = self._weighted_messages(x, edge_index, edge_features, edge_weights)
            aggregated = aggregate(messages, center, edge_weights, h.shape[0], self.aggregation)
        else:
            aggregated = self._chunked_sum(
                x, edge_index, edge_features, edge_weights, transform_edges
            )
            if self.aggregation == "mean":
                aggregated = _weighted_mean(aggregated, center, edge_weights)
        return self._update_except(h, aggregated, ghosts)

    def _update_except(self, h: Tensor, aggregated: Tensor, ghosts: slice | None) -> Tensor:
        """:meth:`update` of every row but ``ghosts``, whose output rows are 0."""
        start, stop, _ = ghosts.indices(h.shape[0]) if ghosts is not None else (0, 0, 1)
        if start >= stop:
            return self.update(h, aggregated)
        kept = self.update(
            torch.cat([h[:start], h[stop:]]), torch.cat([aggregated[:start], aggregated[stop:]])
        )
        zeros = kept.new_zeros((stop - start, *kept.shape[1:]))
        return torch.cat([kept[:start], zeros, kept[start:]])

    def _chunked_sum(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_features: Tensor,
        edge_weights: Tensor,
        transform_edges: bool = True,
    ) -> Tensor:
        """Σ_j m_ij ``[N, F]`` built in chunks of consecutive centre atoms (edges sorted by centre).

        Every chunk sums its edges' messages into its own rows, and the rows are concatenated.
        Slicing or gathering per chunk from whole tensors would allocate and add a whole-size
        gradient per chunk in the backward pass, which grows as N² (9x slower per atom at 32,000
        Cu atoms than at 2,048), so tensors are cut with ``torch.split`` and neighbor features
        come from :class:`_GatherChunks`, whose backward passes handle all chunks at once.
        Each atom's messages are added in the same order as in one ``index_add`` over all
        edges, so the sums are bitwise the same.
        """
        center, neighbor = edge_index
        num_atoms, num_edges = x.shape[0], center.shape[0]
        num_chunks = max(1, -(-num_edges * x.shape[1] // self.chunk_elements))
        # chunk boundaries at the first edge of an atom, about every E / num_chunks edges
        cuts = center[torch.arange(1, num_chunks) * num_edges // num_chunks].tolist()
        atom_bounds = sorted({0, num_atoms, *cuts})
        bounds = torch.tensor(atom_bounds, dtype=center.dtype)
        edge_bounds = torch.searchsorted(center, bounds)
        atom_sizes = bounds.diff().tolist()
        edge_sizes = edge_bounds.diff().tolist()
        local_center = center - torch.repeat_interleave(bounds[:-1], edge_bounds.diff())
        x_centers = x.split(atom_sizes)
        x_neighbors = _GatherChunks.apply(x, neighbor, edge_sizes)
        pieces = []
        for x_center, x_neighbor, local, features, weights in zip(
            x_centers,
            x_neighbors,
            local_center.split(edge_sizes),
            edge_features.split(edge_sizes),
            edge_weights.split(edge_sizes),
        ):
            h_center = x_center.index_select(0, local) if self.uses_center_features else None
            if transform_edges:
                features = self.edge_transform(features)
            messages = self.message(h_center, x_neighbor, features) * weights.unsqueeze(-1)
            rows = messages.new_zeros((x_center.shape[0], messages.shape[1]))
            pieces.append(rows.index_add(0, local, messages))
        return torch.cat(pieces)

    def _weighted_messages(
        self, x: Tensor, edge_index: Tensor, edge_features: Tensor, edge_weights: Tensor
    ) -> Tensor:
        """Messages m_ij · w_ij ``[E, F]`` of the given edges."""
        center, neighbor = edge_index
        # index_select rather than x[index]: the same gather, but its backward is an index_add,
        # several times faster on CPU than the accumulating index_put behind advanced indexing.
        x_center = x.index_select(0, center) if self.uses_center_features else None
        messages = self.message(x_center, x.index_select(0, neighbor), edge_features)
        return messages * edge_weights.unsqueeze(-1)
