"""SchNet: an invariant potential built from continuous-filter convolutions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from torch import Tensor, nn

from ase_gnn.graph import AtomicGraph, edge_pairs, edge_vectors
from ase_gnn.models.base import EnergyModel, Readout, register
from ase_gnn.nn.embedding import SpeciesEmbedding
from ase_gnn.nn.message_passing import Aggregation, MessagePassing
from ase_gnn.nn.mlp import MLP, xavier_init_
from ase_gnn.nn.radial import BesselBasis, PolynomialEnvelope


class CFConv(MessagePassing):
    """SchNet interaction: continuous-filter convolution plus a residual atom-wise update.

    * transform: x_j = W_in h_j (per atom)
    * message:   m_ij = x_j ⊙ W(r_ij), with the filter W an MLP of the radial basis
    * update:    h_i' = h_i + MLP(a_i)

    The edge features this layer receives are the filters W(r_ij) themselves (see
    :meth:`filters`), so that the model can evaluate them once per pair of reverse edges.
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

    def filters(self, radial: Tensor) -> Tensor:
        """Filters W(r) ``[..., num_filters]`` of radial basis values ``[..., num_radial]``."""
        return self.filter(radial)

    def message(self, h_center: Tensor | None, h_neighbor: Tensor, edge_features: Tensor) -> Tensor:
        """m_ij = x_j ⊙ W(r_ij), ``[E, num_filters]``, from the filters as edge features."""
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
        ``"sum"`` (default), ``"mean"`` or ``"max"``; see :mod:`ase_gnn.nn.message_passing`.
    readout
        ``"sum"`` (extensive energy) or ``"mean"`` (intensive); see :mod:`ase_gnn.models.base`.
    atomic_energies
        Reference energies E0 in eV.

    References
    ----------
    Schütt et al., "SchNet – A deep learning architecture for molecules and materials",
    J. Chem. Phys. 148, 241722 (2018).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from ase_gnn import SchNet, AtomicGraph
    >>> model = SchNet(species=["Cu"], cutoff=4.0, hidden_channels=16, num_interactions=1)
    >>> graph = AtomicGraph.from_atoms(bulk("Cu"), cutoff=4.0, dtype=model.dtype)
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
    ) -> None:
        super().__init__(species, cutoff, readout, atomic_energies)
        num_filters = hidden_channels if num_filters is None else num_filters
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
        # Filters depend on r only, and i → j has the length of j → i: evaluate them per pair.
        first, pair = edge_pairs(graph)
        radial = self.radial(lengths.index_select(0, first))  # [P, num_radial]
        weights = self.envelope(lengths)
        if edge_weight is not None:
            weights = weights * edge_weight
        for interaction in cast(list[CFConv], self.interactions):
            filters = interaction.filters(radial).index_select(0, pair)  # [E, num_filters]
            h = interaction(h, graph.edge_index, filters, weights)
        return h

    def interaction_energies(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None
    ) -> Tensor:
        """Raw per-atom outputs ``[N]``."""
        return self.output(self.features(graph, species_index, edge_weight)).squeeze(-1)
