"""Training: configuration, labelled data sets, losses, checkpoints and the training loop."""

from ase_gnn.training.config import (
    DataConfig,
    HeadConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    config_from_dict,
    load_config,
)
from ase_gnn.training.data import (
    GraphDataset,
    LabelKeys,
    Labels,
    fit_atomic_energies,
    labels_from_atoms,
    read_structures,
)
from ase_gnn.training.loss import LossWeights
from ase_gnn.training.setup import prepare_model, train_from_config
from ase_gnn.training.trainer import History, Trainer, evaluate, fit

__all__ = [
    "DataConfig",
    "GraphDataset",
    "HeadConfig",
    "History",
    "LabelKeys",
    "Labels",
    "LossConfig",
    "LossWeights",
    "ModelConfig",
    "OptimizerConfig",
    "RunConfig",
    "ScheduleConfig",
    "TrainConfig",
    "Trainer",
    "config_from_dict",
    "evaluate",
    "fit",
    "fit_atomic_energies",
    "labels_from_atoms",
    "load_config",
    "prepare_model",
    "read_structures",
    "train_from_config",
]
