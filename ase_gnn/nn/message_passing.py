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
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Aggregation = Literal["sum", "mean", "max"]
AGGREGATIONS: tuple[str, ...] = ("sum", "mean", "max")


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
        total = out.index_add(0, center, messages)
        weight_sum = weights.new_zeros(num_atoms).index_add(0, center, weights)
        return total / (weight_sum + torch.exp(-weight_sum)).unsqueeze(-1)
    if how == "max":
        index = center.unsqueeze(-1).expand_as(messages)
        return out.scatter_reduce(0, index, messages, reduce="amax", include_self=True)
    raise ValueError(f"unknown aggregation {how!r}; choose one of {AGGREGATIONS}")


class MessagePassing(nn.Module):
    """One message-passing layer with its three steps as separate methods.

    Subclasses implement :meth:`message` and :meth:`update` (and may override :meth:`transform`);
    :meth:`forward` wires them:

    0. ``x = transform(h)``, an optional per-atom map done once per atom rather than per edge
    1. ``m_ij = message(x_i, x_j, edge_features_ij) · w_ij``
    2. ``a_i = aggregate({m_ij})`` (sum / mean / max)
    3. ``h_i' = update(h_i, a_i)``

    Parameters
    ----------
    aggregation
        ``"sum"``, ``"mean"`` or ``"max"``.
    """

    #: Whether :meth:`message` reads h_i; if not, the [E, F] gather of centre features is skipped.
    uses_center_features: bool = True

    def __init__(self, aggregation: Aggregation = "sum") -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {AGGREGATIONS}")
        self.aggregation: Aggregation = aggregation

    def message(
        self, h_center: Tensor | None, h_neighbor: Tensor, edge_features: Tensor
    ) -> Tensor:
        """Message ``[E, F]`` from neighbor j to centre i (before the edge weight).

        ``h_center`` is None when the layer declares ``uses_center_features = False``.
        """
        raise NotImplementedError

    def transform(self, h: Tensor) -> Tensor:
        """Per-atom features ``[N, F']`` that messages are built from (identity by default)."""
        return h

    def update(self, h: Tensor, aggregated: Tensor) -> Tensor:
        """New node features ``[N, F]`` from old ones and the aggregated messages."""
        raise NotImplementedError

    def forward(
        self, h: Tensor, edge_index: Tensor, edge_features: Tensor, edge_weights: Tensor
    ) -> Tensor:
        """Run message → aggregate → update.

        Parameters
        ----------
        h
            ``[N, F]`` node features.
        edge_index
            ``[2, E]`` (centre i, neighbor j).
        edge_features
            ``[E, K]`` edge features (e.g. the radial basis).
        edge_weights
            ``[E]`` weights w_ij (envelope × edge_weight).

        Returns
        -------
        Tensor
            ``[N, F]`` updated node features.
        """
        center, neighbor = edge_index
        x = self.transform(h)
        x_center = x[center] if self.uses_center_features else None
        messages = self.message(x_center, x[neighbor], edge_features)
        messages = messages * edge_weights.unsqueeze(-1)
        aggregated = aggregate(messages, center, edge_weights, h.shape[0], self.aggregation)
        return self.update(h, aggregated)
