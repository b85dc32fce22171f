"""Potentials: the ``EnergyModel`` base class, the registry and the architectures."""

from ase_gnn.models.base import ARCHITECTURES, EnergyModel, register
from ase_gnn.models.nequip import NequIP
from ase_gnn.models.schnet import SchNet

__all__ = ["ARCHITECTURES", "EnergyModel", "NequIP", "SchNet", "register"]
