"""Potentials: the ``EnergyModel`` base class, the registry and the architectures (``base``,
``schnet``, ``nequip``), their building blocks (``nn``), output heads (``heads``), energy, forces
and stress by autograd (``forces``) and model files (``io``)."""

from ase_gnn.models.base import ARCHITECTURES, EnergyModel, register
from ase_gnn.models.nequip import NequIP
from ase_gnn.models.schnet import SchNet

__all__ = ["ARCHITECTURES", "EnergyModel", "NequIP", "SchNet", "register"]
