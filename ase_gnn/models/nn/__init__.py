"""Building blocks of message-passing potentials: radial basis, envelope, embedding, aggregation."""

from ase_gnn.models.nn.embedding import SpeciesEmbedding
from ase_gnn.models.nn.message_passing import Aggregation, MessagePassing, aggregate
from ase_gnn.models.nn.mlp import MLP, ShiftedSoftplus
from ase_gnn.models.nn.radial import BesselBasis, PolynomialEnvelope

__all__ = [
    "MLP",
    "Aggregation",
    "BesselBasis",
    "MessagePassing",
    "PolynomialEnvelope",
    "ShiftedSoftplus",
    "SpeciesEmbedding",
    "aggregate",
]
