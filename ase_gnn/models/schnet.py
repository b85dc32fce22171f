"""SchNet: an invariant potential built from continuous-filter convolutions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ase_gnn.graph.atomic_graph import AtomicGraph, edge_pairs, edge_vectors
from ase_gnn.models.base import EnergyModel, Readout, check_sizes, register
from ase_gnn.models.nn.embedding import SpeciesEmbedding
from ase_gnn.models.nn.message_passing import Aggregation, MessagePassing
from ase_gnn.models.nn.mlp import MLP, xavier_init_
from ase_gnn.models.nn.radial import BesselBasis, PolynomialEnvelope


class CFConv(MessagePassing):
    """SchNet interaction: continuous-filter convolution plus a residual atom-wise update.

    * transform: x_j = W_in h_j (per atom)
    * message:   m_ij = x_j ⊙ W(r_ij), with the filter W an MLP of the radial basis
    * update:    h_i' = h_i + MLP(a_i)

    The filter is the layer's :meth:`edge_transform`, so it can run once per pair of reverse
    edges.
    """

    uses_center_features = False

    def __init__(
        self, num_features: int, num_filters: int, num_radial: int, aggregation: Aggregation
    ) -> None:
        super().__init__(aggregation)
        self.filter = MLP([num_radial, num_filters, num_filters])
        self.linear_in = nn.Linear(num_features, num_filters, bias=False)
        self.update_mlp = MLP([num_filters, num_features, num_features])

    def transform(self, h: Tensor) -> Tensor:
        """x = W_in h, ``[N, num_filters]``."""
        return self.linear_in(h)

    def edge_transform(self, edge_features: Tensor) -> Tensor:
        """Filters W(r) ``[E, num_filters]`` of the radial basis ``[E, num_radial]``."""
        return self.filter(edge_features)

    def message(self, h_center: Tensor | None, h_neighbor: Tensor, edge_features: Tensor) -> Tensor:
        """m_ij = x_j ⊙ W(r_ij), ``[E, num_filters]``, from the filters W(r_ij)."""
        return h_neighbor * edge_features

    def update(self, h: Tensor, aggregated: Tensor) -> Tensor:
        """h_i' = h_i + MLP(a_i), ``[N, num_features]``."""
        return h + self.update_mlp(aggregated)


@register
class SchNet(EnergyModel):
    """SchNet potential (invariant: sees only interatomic distances).

    Species embedding → ``num_interactions`` continuous-filter convolutions → per-atom MLP giving
    local energies.

    Parameters
    ----------
    species
        Element symbols or atomic numbers the model knows.
    cutoff
        Neighbor cutoff in Å.
    hidden_channels
        Width F of atom features.
    num_filters
        Width of the continuous filters (defaults to ``hidden_channels``).
    num_interactions
        Number of message-passing layers T (receptive field T × cutoff).
    num_radial
        Number of Bessel radial basis functions.
    aggregation
        ``"sum"`` (default), ``"mean"`` or ``"max"``; see :mod:`ase_gnn.models.nn.message_passing`.
    readout
        ``"sum"`` (extensive energy) or ``"mean"`` (intensive); see :mod:`ase_gnn.models.base`.
    atomic_energies
        Reference energies E0 in eV.
    long_range
        Adds the Coulomb energy of learned charges (Ewald/PME, or the direct sum for molecules):
        True for the defaults, or ``{"width": σ (Å), "accuracy": ..., "summation": ...}``; see
        :meth:`~ase_gnn.models.base.EnergyModel.set_long_range`.

    References
    ----------
    Schütt et al., "SchNet – A deep learning architecture for molecules and materials",
    J. Chem. Phys. 148, 241722 (2018).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from ase_gnn import SchNet, graph_from_atoms
    >>> model = SchNet(species=["Cu"], cutoff=4.0, hidden_channels=16, num_interactions=1)
    >>> graph = graph_from_atoms(bulk("Cu"), cutoff=4.0, dtype=model.dtype)
    >>> model(graph).shape
    torch.Size([1])
    """

    architecture = "SchNet"

    def __init__(
        self,
        species: Sequence[str | int],
        cutoff: float = 5.0,
        hidden_channels: int = 64,
        num_filters: int | None = None,
        num_interactions: int = 3,
        num_radial: int = 8,
        aggregation: Aggregation = "sum",
        readout: Readout = "sum",
        atomic_energies: Mapping[str, float] | Sequence[float] | None = None,
        long_range: Mapping[str, Any] | bool | None = None,
    ) -> None:
        super().__init__(species, cutoff, readout, atomic_energies)
        num_filters = hidden_channels if num_filters is None else num_filters
        check_sizes(
            "SchNet",
            hidden_channels=hidden_channels,
            num_filters=num_filters,
            num_interactions=num_interactions,
            num_radial=num_radial,
        )
        self._hyperparameters: dict[str, Any] = {
            "hidden_channels": hidden_channels,
            "num_filters": num_filters,
            "num_interactions": num_interactions,
            "num_radial": num_radial,
            "aggregation": aggregation,
        }
        self.embedding = SpeciesEmbedding(len(self.species), hidden_channels)
        self.radial = BesselBasis(cutoff, num_radial)
        self.envelope = PolynomialEnvelope(cutoff)
        self.interactions = nn.ModuleList(
            CFConv(hidden_channels, num_filters, num_radial, aggregation)
            for _ in range(num_interactions)
        )
        self.output = MLP([hidden_channels, hidden_channels // 2, 1])
        self.set_long_range(long_range)
        xavier_init_(self)

    @property
    def num_features(self) -> int:
        """F = ``hidden_channels``."""
        return int(self._hyperparameters["hidden_channels"])

    def hyperparameters(self) -> dict[str, Any]:
        """Architecture arguments for :meth:`EnergyModel.config`."""
        return dict(self._hyperparameters)

    def features(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        """Per-atom invariant features ``[N, hidden_channels]`` after all interactions."""
        h = self.embedding(species_index)
        lengths = edge_vectors(graph).norm(dim=-1)
        weights = self.envelope(lengths)
        if edge_weight is not None:
            weights = weights * edge_weight
        pair = None
        if self._filters_per_pair(graph):
            # Filters depend on r only, and i → j has the length of j → i.
            first, pair = edge_pairs(graph)
            lengths = lengths.index_select(0, first)
        edge_features = self.radial(lengths)  # per edge, or per pair
        for interaction in self.interactions:
            h = interaction(h, graph.edge_index, edge_features, weights, pair)
        return h

    def _filters_per_pair(self, graph: AtomicGraph) -> bool:
        """Whether to evaluate filters once per pair of reverse edges (half the filter work).

        Not on CPU for graphs whose ``[E, num_filters]`` filters exceed 32 MiB: there the
        filters of all edges, which pairing needs at once, are as large as glibc's largest
        heap allocation, so every call gets them from the operating system and page-faults them
        in; filters made chunk by chunk inside the layers are then faster (602 against 505 ms
        for 6,912 Cu atoms, 2 threads). Not under ``torch.compile`` (pairing's data-dependent
        shapes).
        """
        if torch.compiler.is_compiling():
            return False
        size = graph.num_edges * int(self._hyperparameters["num_filters"])
        return graph.device.type != "cpu" or size * graph.dtype.itemsize <= 32 * 2**20

    def interaction_energies(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None
    ) -> Tensor:
        """Raw per-atom outputs ``[N]``."""
        return self.output(self.features(graph, species_index, edge_weight)).squeeze(-1)

    def interaction_energies_and_features(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Raw per-atom outputs ``[N]`` and the features ``[N, F]`` they are read out from."""
        features = self.features(graph, species_index, edge_weight)
        return self.output(features).squeeze(-1), features
