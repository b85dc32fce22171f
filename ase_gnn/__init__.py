"""ase-gnn: message-passing neural network potentials for ASE.

Public API::

    AtomicGraph, batch_graphs, edge_vectors      atomic graphs (ase_gnn.graph)
    edge_pairs, reverse_edges                    edges matched with their reverses
    has_stress, stress_mask                      which structures have a stress
    graph_from_atoms, wrapped_positions          neighbor lists; the positions graphs hold
    EnergyModel, SchNet, NequIP, ARCHITECTURES   potentials (ase_gnn.models)
    predict, Prediction                          energy, forces, stress (ase_gnn.forces)
    GNNCalculator                                the ASE calculator
    evaluate, relax                              many structures, batched (ase_gnn.batched)
    CommitteeCalculator                          committee means and spreads (ase_gnn.committee)
    OnRequestCalculator, AnomalyCalculator       extra results only when asked (ase_gnn.extras)
    save_model, load_model                       safetensors model files
    Head, NodeHead, EdgeHead, GraphHead          output heads on the backbone (ase_gnn.heads)
    embed, cluster, AnomalyDetector              embeddings, clustering, OOD scores
    diagnose, GraphDiagnosis                     graph-construction diagnostics
"""

from ase_gnn.batched import Relaxation, evaluate, relax
from ase_gnn.calculator import GNNCalculator, to_ase_results
from ase_gnn.committee import CommitteeCalculator
from ase_gnn.diagnose import GraphDiagnosis, diagnose
from ase_gnn.extras import AnomalyCalculator, OnRequestCalculator
from ase_gnn.forces import Prediction, predict
from ase_gnn.graph import (
    AtomicGraph,
    batch_graphs,
    edge_pairs,
    edge_vectors,
    has_stress,
    reverse_edges,
    stress_mask,
    unbatch,
)
from ase_gnn.heads import EdgeHead, GraphHead, Head, NodeHead
from ase_gnn.io import load_model, read_metadata, save_model
from ase_gnn.models import ARCHITECTURES, EnergyModel, NequIP, SchNet
from ase_gnn.neighbors import graph_from_atoms, wrapped_positions
from ase_gnn.unsupervised import AnomalyDetector, Embeddings, cluster, embed

__version__ = "0.1.0"

__all__ = [
    "ARCHITECTURES",
    "AnomalyCalculator",
    "AnomalyDetector",
    "AtomicGraph",
    "CommitteeCalculator",
    "EdgeHead",
    "Embeddings",
    "EnergyModel",
    "GNNCalculator",
    "GraphDiagnosis",
    "GraphHead",
    "Head",
    "NequIP",
    "NodeHead",
    "OnRequestCalculator",
    "Prediction",
    "Relaxation",
    "SchNet",
    "batch_graphs",
    "cluster",
    "diagnose",
    "edge_pairs",
    "edge_vectors",
    "embed",
    "evaluate",
    "graph_from_atoms",
    "has_stress",
    "load_model",
    "predict",
    "read_metadata",
    "relax",
    "reverse_edges",
    "save_model",
    "stress_mask",
    "to_ase_results",
    "unbatch",
    "wrapped_positions",
]
