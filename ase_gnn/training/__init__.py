"""Training: labelled data sets, losses and a plain fitting loop."""

from ase_gnn.training.data import GraphDataset, Labels, fit_atomic_energies, labels_from_atoms
from ase_gnn.training.loss import LossWeights
from ase_gnn.training.trainer import History, evaluate, fit

__all__ = [
    "GraphDataset",
    "History",
    "Labels",
    "LossWeights",
    "evaluate",
    "fit",
    "fit_atomic_energies",
    "labels_from_atoms",
]
