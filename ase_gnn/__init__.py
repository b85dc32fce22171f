"""ase-gnn: message-passing neural network potentials for ASE.

Public API::

    AtomicGraph, batch_graphs, edge_vectors      atomic graphs (ase_gnn.graph)
    graph_from_atoms                             neighbor lists (ase_gnn.neighbors)
    EnergyModel, SchNet, NequIP, ARCHITECTURES   potentials (ase_gnn.models)
    predict, Prediction                          energy, forces, stress (ase_gnn.forces)
    GNNCalculator                                the ASE calculator
    save_model, load_model                       safetensors model files
"""

from ase_gnn.calculator import GNNCalculator, to_ase_results
from ase_gnn.forces import Prediction, predict
from ase_gnn.graph import AtomicGraph, batch_graphs, edge_vectors, unbatch
from ase_gnn.io import load_model, read_metadata, save_model
from ase_gnn.models import ARCHITECTURES, EnergyModel, NequIP, SchNet
from ase_gnn.neighbors import graph_from_atoms

__version__ = "0.1.0"

__all__ = [
    "ARCHITECTURES",
    "AtomicGraph",
    "EnergyModel",
    "GNNCalculator",
    "NequIP",
    "Prediction",
    "SchNet",
    "batch_graphs",
    "edge_vectors",
    "graph_from_atoms",
    "load_model",
    "predict",
    "read_metadata",
    "save_model",
    "to_ase_results",
    "unbatch",
]
