"""NequIP: an E(3)-equivariant potential built from e3nn tensor-product convolutions.

Atom features are direct sums of irreducible representations of O(3) (scalars, vectors, rank-2
tensors, ...). Every layer convolves neighbor features with the spherical harmonics of the edge
directions through an :class:`e3nn.o3.TensorProduct` whose weights are a radial MLP of the edge
length, so features rotate exactly with the structure and the energy, read out from the scalars,
is invariant.

Irreps, with F = ``num_features`` and L = ``l_max``:

============ ============================= ============================= ===========================
``parity``   edge spherical harmonics      hidden features               symmetry of the energy
============ ============================= ============================= ===========================
``True``     0e + 1o + 2e + …  (L)         F×0e + F×1o + F×2e + …        O(3): rotations, inversion
``False``    0e + 1e + 2e + …  (L)         F×0e + F×1e + F×2e + …        SO(3): rotations only
============ ============================= ============================= ===========================

With ``parity=True`` every feature has the parity of its spherical harmonic, (−1)^l (NequIP's
"o3_restricted"; NequIP's ``parity: true`` also carries the opposite-parity copies 0o, 1e, 2o, …,
doubling the width for little gain in potentials). Products that would leave this set, such as the
cross product 1o ⊗ 1o → 1e, are dropped, which is what makes the energy inversion invariant
(forces obey F(−r) = −F(r)). With ``parity=False`` the edge directions are treated as
pseudo-vectors, all parities are "even" and those products are kept: the model is cheaper to
make expressive but can tell a structure from its mirror image, which is only physical for
chiral targets.

The first layer maps the embedding (F×0e) to the hidden irreps; the last one maps them back to
F×0e, since only scalars reach the energy (NequIP computes the last layer's l > 0 outputs and
then drops them; skipping them here gives the same function class, faster).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet, Gate
from torch import Tensor

from ase_gnn.graph.atomic_graph import AtomicGraph, edge_vectors
from ase_gnn.models.base import EnergyModel, Readout, check_sizes, register
from ase_gnn.models.nn.embedding import SpeciesEmbedding
from ase_gnn.models.nn.message_passing import Aggregation, MessagePassing
from ase_gnn.models.nn.mlp import MLP, xavier_init_
from ase_gnn.models.nn.radial import BesselBasis, PolynomialEnvelope

#: Aggregations NequIP accepts; a feature-wise maximum of vector components is not equivariant.
NEQUIP_AGGREGATIONS: tuple[str, ...] = ("sum", "mean")
L_MAX_CHOICES: tuple[int, ...] = (1, 2, 3)


class EquivariantConv(MessagePassing):
    """One NequIP interaction: tensor-product convolution, self-interaction, gate, residual.

    * transform: x_j = Linear(h_j)
    * message:   m_ij = TP(x_j, Y(r̂_ij); w = R(|r_ij|)), uvu paths into the gate's input irreps
    * aggregate: a_i = Σ_j w_ij m_ij / sqrt(avg_num_neighbors) (``"sum"``) or the weighted mean
    * update:    h_i' = Gate(Linear(a_i) + SelfInteraction(h_i)) [+ h_i where the irreps match]

    The gate passes scalars through SiLU and multiplies every l > 0 irrep by the sigmoid of its
    own extra scalar (e3nn normalises both activations to unit second moment).

    Parameters
    ----------
    irreps_in, irreps_out
        Node feature irreps before and after the layer; ``irreps_out`` must list its scalars
        (l = 0) first, as the gate produces them.
    irreps_sh
        Irreps of the edge spherical harmonics.
    num_radial
        Width of the radial basis at the start of ``edge_features``.
    radial_hidden
        Width of the two hidden layers of the radial MLP.
    avg_num_neighbors
        Divides summed messages by its square root (NequIP); None for no division.
    aggregation
        ``"sum"`` or ``"mean"``.
    """

    uses_center_features = False

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_out: o3.Irreps,
        irreps_sh: o3.Irreps,
        num_radial: int,
        radial_hidden: int,
        avg_num_neighbors: float | None,
        aggregation: Aggregation,
    ) -> None:
        super().__init__(aggregation)
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_sh = o3.Irreps(irreps_sh)
        # Plain ints for forward: torch.compile cannot guard on e3nn's Irrep objects.
        self.edge_feature_sizes = [num_radial, self.irreps_sh.dim]
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
        gates = o3.Irreps([(gated.num_irreps, "0e")]) if gated.num_irreps else o3.Irreps([])
        self.gate = Gate(
            scalars,
            [torch.nn.functional.silu] * len(scalars),
            gates,
            [torch.sigmoid] * len(gates),
            gated,
        )
        self.irreps_out: o3.Irreps = self.gate.irreps_out
        assert self.irreps_out == o3.Irreps(irreps_out), (self.irreps_out, irreps_out)

        # Every path from a neighbor feature and a spherical harmonic to an irrep the gate needs;
        # "uvu": one learned weight per channel u of the neighbor feature, path and edge.
        irreps_mid: list[tuple[int, o3.Irrep]] = []
        instructions: list[tuple[int, int, int, str, bool]] = []
        for i, (mul, ir_in) in enumerate(self.irreps_in):
            for j, (_, ir_edge) in enumerate(self.irreps_sh):
                for ir_out in ir_in * ir_edge:
                    if ir_out in self.gate.irreps_in:
                        instructions.append((i, j, len(irreps_mid), "uvu", True))
                        irreps_mid.append((mul, ir_out))
        self.linear_in = o3.Linear(self.irreps_in, self.irreps_in)
        self.tensor_product = o3.TensorProduct(
            self.irreps_in,
            self.irreps_sh,
            o3.Irreps(irreps_mid),
            instructions,
            shared_weights=False,
            internal_weights=False,
        )
        self.radial_mlp = FullyConnectedNet(
            [num_radial, radial_hidden, radial_hidden, self.tensor_product.weight_numel],
            torch.nn.functional.silu,
        )
        self.linear_out = o3.Linear(o3.Irreps(irreps_mid), self.gate.irreps_in)
        self.self_interaction = o3.Linear(self.irreps_in, self.gate.irreps_in)
        self.message_scale = 1.0 if avg_num_neighbors is None else avg_num_neighbors**-0.5
        # Residual where the output irreps are the leading irreps of the input (all layers but
        # the first; the last one keeps the scalar channels only).
        self.residual = self.irreps_in[: len(self.irreps_out)] == self.irreps_out

    def transform(self, h: Tensor) -> Tensor:
        """x = Linear(h), ``[N, irreps_in.dim]``."""
        return self.linear_in(h)

    def message(self, h_center: Tensor | None, h_neighbor: Tensor, edge_features: Tensor) -> Tensor:
        """m_ij = TP(x_j, Y_ij; R(r_ij)), ``[E, irreps_mid.dim]``.

        ``edge_features [E, num_radial + irreps_sh.dim]`` holds the radial basis, then the
        spherical harmonics.
        """
        radial, sh = edge_features.split(self.edge_feature_sizes, dim=-1)
        return self.tensor_product(h_neighbor, sh, self.radial_mlp(radial))

    def update(self, h: Tensor, aggregated: Tensor) -> Tensor:
        """h' = Gate(Linear(a) + SelfInteraction(h)) (+ h), ``[N, irreps_out.dim]``."""
        if self.aggregation == "sum" and self.message_scale != 1.0:
            aggregated = aggregated * self.message_scale
        out = self.gate(self.linear_out(aggregated) + self.self_interaction(h))
        if self.residual:
            out = out + h[:, : out.shape[-1]]
        return out


@register
class NequIP(EnergyModel):
    """NequIP potential: E(3)-equivariant message passing on e3nn irreps.

    Species embedding (F×0e) → ``num_layers`` :class:`EquivariantConv` layers → scalar
    features (F×0e) → per-atom MLP giving local energies. See the module docstring for the irreps
    and what ``parity`` changes.

    Parameters
    ----------
    species
        Element symbols or atomic numbers the model knows.
    cutoff
        Neighbor cutoff in Å.
    num_layers
        Number of interaction layers T ≥ 1 (receptive field T × cutoff). Angular information
        reaches the energy only with T ≥ 2: the first layer creates the l > 0 features.
    num_features
        Channels F per irrep.
    l_max
        Highest degree of spherical harmonics and features: 1, 2 or 3.
    parity
        True: O(3)-equivariant (energy also invariant under inversion). False: SO(3) only.
    num_radial
        Number of Bessel radial basis functions.
    radial_hidden
        Width of the two hidden layers of every layer's radial MLP.
    aggregation
        ``"sum"`` (default) or ``"mean"``; see :mod:`ase_gnn.models.nn.message_passing`. ``"max"``
        is refused: a component-wise maximum of vector or tensor features does not commute with
        rotations (max(x) of a rotated vector is not the rotated max), so it would break
        equivariance.
    readout
        ``"sum"`` (extensive energy) or ``"mean"`` (intensive); see :mod:`ase_gnn.models.base`.
    atomic_energies
        Reference energies E0 in eV.
    avg_num_neighbors
        Summed messages are divided by its square root, as in NequIP, to keep features of order
        one; None disables the division (it does not apply to ``"mean"``). The default is a fixed
        12.0 rather than a statistic of the training data, so a model is fully defined by its
        config and save/load is exact. Messages carry the cutoff envelope, so the relevant count
        is Σ_j f(r_ij): about 15 for fcc Cu at a 5 Å cutoff (42 neighbors).
    long_range
        Adds the Coulomb energy of learned charges (Ewald/PME, or the direct sum for molecules):
        True for the defaults, or ``{"width": σ (Å), "accuracy": ..., "summation": ...}``; see
        :meth:`~ase_gnn.models.base.EnergyModel.set_long_range`.

    References
    ----------
    Batzner et al., "E(3)-equivariant graph neural networks for data-efficient and accurate
    interatomic potentials", Nat. Commun. 13, 2453 (2022).
    Geiger and Smidt, "e3nn: Euclidean neural networks", arXiv:2207.09453 (2022).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from ase_gnn import NequIP, graph_from_atoms
    >>> model = NequIP(species=["Cu"], cutoff=4.0, num_layers=2, num_features=8)
    >>> graph = graph_from_atoms(bulk("Cu"), cutoff=4.0, dtype=model.dtype)
    >>> model(graph).shape
    torch.Size([1])
    """

    architecture = "NequIP"
    #: Accepted aggregations (read by :func:`ase_gnn.testing.supported_aggregations`).
    aggregations: ClassVar[tuple[str, ...]] = NEQUIP_AGGREGATIONS

    def __init__(
        self,
        species: Sequence[str | int],
        cutoff: float = 5.0,
        num_layers: int = 3,
        num_features: int = 32,
        l_max: int = 1,
        parity: bool = True,
        num_radial: int = 8,
        radial_hidden: int = 64,
        aggregation: Aggregation = "sum",
        readout: Readout = "sum",
        atomic_energies: Mapping[str, float] | Sequence[float] | None = None,
        avg_num_neighbors: float | None = 12.0,
        long_range: Mapping[str, Any] | bool | None = None,
    ) -> None:
        super().__init__(species, cutoff, readout, atomic_energies)
        _check_arguments(num_layers, num_features, l_max, aggregation, avg_num_neighbors)
        check_sizes("NequIP", num_radial=num_radial, radial_hidden=radial_hidden)
        self._hyperparameters: dict[str, Any] = {
            "num_layers": num_layers,
            "num_features": num_features,
            "l_max": l_max,
            "parity": bool(parity),
            "num_radial": num_radial,
            "radial_hidden": radial_hidden,
            "aggregation": aggregation,
            "avg_num_neighbors": None if avg_num_neighbors is None else float(avg_num_neighbors),
        }
        p = -1 if parity else 1
        irreps_sh = o3.Irreps.spherical_harmonics(l_max, p=p)
        scalars = o3.Irreps([(num_features, (0, 1))])
        hidden = o3.Irreps([(num_features, (degree, p**degree)) for degree in range(l_max + 1)])
        irreps = [scalars] + [hidden] * (num_layers - 1) + [scalars]

        self.embedding = SpeciesEmbedding(len(self.species), num_features)
        self.radial = BesselBasis(cutoff, num_radial)
        self.envelope = PolynomialEnvelope(cutoff)
        # normalize=True: only directions matter (lengths enter through the radial MLP);
        # "component": every component of Y^l has unit mean square, as the e3nn layers expect.
        self.spherical_harmonics = o3.SphericalHarmonics(
            irreps_sh, normalize=True, normalization="component"
        )
        self.interactions = torch.nn.ModuleList(
            EquivariantConv(
                irreps[k],
                irreps[k + 1],
                irreps_sh,
                num_radial,
                radial_hidden,
                avg_num_neighbors,
                aggregation,
            )
            for k in range(num_layers)
        )
        self.output = MLP([num_features, max(1, num_features // 2), 1])
        xavier_init_(self.output)  # e3nn modules keep their own (unit-variance) initialisation
        self.set_long_range(long_range)
        if self.electrostatics is not None:
            xavier_init_(self.electrostatics)

    @property
    def num_features(self) -> int:
        """F = ``num_features`` (the scalar channels of the last layer)."""
        return int(self._hyperparameters["num_features"])

    def hyperparameters(self) -> dict[str, Any]:
        """Architecture arguments for :meth:`EnergyModel.config`."""
        return dict(self._hyperparameters)

    def edge_inputs(
        self, graph: AtomicGraph, edge_weight: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Edge features and weights shared by all layers.

        Returns
        -------
        edge_features
            ``[E, num_radial + irreps_sh.dim]``: Bessel basis of |r_ij|, then the spherical
            harmonics of r̂_ij.
        weights
            ``[E]`` envelope f(|r_ij|) × ``edge_weight``.
        """
        vectors = edge_vectors(graph)
        # Edges have length > 0 (the neighbor list excludes self-pairs at zero shift), so the
        # norm and the normalisation inside the spherical harmonics stay differentiable twice.
        lengths = vectors.norm(dim=-1)
        edge_features = torch.cat([self.radial(lengths), self.spherical_harmonics(vectors)], -1)
        weights = self.envelope(lengths)
        if edge_weight is not None:
            weights = weights * edge_weight
        return edge_features, weights

    def node_features(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None = None
    ) -> list[Tensor]:
        """Node features after every layer, ``[N, layer.irreps_out.dim]`` each (equivariant)."""
        h = self.embedding(species_index)
        edge_features, weights = self.edge_inputs(graph, edge_weight)
        features = []
        for interaction in self.interactions:
            h = interaction(h, graph.edge_index, edge_features, weights)
            features.append(h)
        return features

    def features(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        """Per-atom invariant (0e) features ``[N, num_features]`` after all interactions."""
        return self.node_features(graph, species_index, edge_weight)[-1]

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


def _check_arguments(
    num_layers: int,
    num_features: int,
    l_max: int,
    aggregation: str,
    avg_num_neighbors: float | None,
) -> None:
    """Raise ``ValueError`` for NequIP hyperparameters that cannot work."""
    if aggregation == "max":
        raise ValueError(
            "NequIP does not support aggregation='max': a component-wise maximum over vector and "
            "tensor features is not rotation equivariant (the maximum of rotated vectors is not "
            f"the rotated maximum); choose one of {NEQUIP_AGGREGATIONS}"
        )
    if aggregation not in NEQUIP_AGGREGATIONS:
        raise ValueError(
            f"unknown aggregation {aggregation!r}; choose one of {NEQUIP_AGGREGATIONS}"
        )
    if l_max not in L_MAX_CHOICES:
        raise ValueError(f"l_max must be one of {L_MAX_CHOICES}, got {l_max!r}")
    if num_layers < 1 or num_features < 1:
        raise ValueError(
            f"num_layers and num_features must be at least 1, got {num_layers}, {num_features}"
        )
    if avg_num_neighbors is not None and not (
        math.isfinite(avg_num_neighbors) and avg_num_neighbors > 0
    ):
        raise ValueError(f"avg_num_neighbors must be positive or None, got {avg_num_neighbors}")
