"""ase-gnn: message-passing neural network potentials for ASE.

The public API, by layer (imports point only down; ``tests/test_architecture.py`` checks it)::

    graph/        AtomicGraph, batch_graphs, unbatch, edge_vectors, edge_pairs, reverse_edges,
                  has_stress, stress_mask; graph_from_atoms, wrapped_positions (neighbour search)
    models/       EnergyModel, SchNet, NequIP, ARCHITECTURES; Head, NodeHead, EdgeHead,
                  GraphHead; predict, Prediction (energy, forces, stress); save_model,
                  load_model, read_metadata (safetensors model files)
    analysis/     diagnose, GraphDiagnosis; embed, Embeddings, cluster, AnomalyDetector
    calculators/  GNNCalculator, to_ase_results, CommitteeCalculator, OnRequestCalculator,
                  AnomalyCalculator
    simulate/     evaluate, relax, Relaxation (many structures, batched); run_nve (simulate.md)
    data/         labelled data from ASE calculators and GFN2-xTB (data.generate, data.molecules)
    training/     configs, Trainer, train_model (``ase_gnn.training``)
    cli/          the ``ase-gnn`` command line
"""

from ase_gnn.analysis.diagnose import GraphDiagnosis, diagnose
from ase_gnn.analysis.unsupervised import AnomalyDetector, Embeddings, cluster, embed
from ase_gnn.calculators.calculator import GNNCalculator, to_ase_results
from ase_gnn.calculators.committee import CommitteeCalculator
from ase_gnn.calculators.extras import AnomalyCalculator, OnRequestCalculator
from ase_gnn.graph.atomic_graph import (
    AtomicGraph,
    batch_graphs,
    edge_pairs,
    edge_vectors,
    has_stress,
    reverse_edges,
    stress_mask,
    unbatch,
)
from ase_gnn.graph.neighbors import graph_from_atoms, wrapped_positions
from ase_gnn.models import ARCHITECTURES, EnergyModel, NequIP, SchNet
from ase_gnn.models.forces import Prediction, predict
from ase_gnn.models.heads import EdgeHead, GraphHead, Head, NodeHead
from ase_gnn.models.io import load_model, read_metadata, save_model
from ase_gnn.models.long_range import COULOMB_CONSTANT
from ase_gnn.simulate.batched import Relaxation, evaluate, relax

__version__ = "0.1.0"

__all__ = [
    "ARCHITECTURES",
    "COULOMB_CONSTANT",
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
