"""Training: configuration, labelled data sets, losses, checkpoints and the training loop.

Renamed in 0.2 (the old names still work, with a ``DeprecationWarning``): ``fit`` is now
:func:`train_model` (it was easy to confuse with :meth:`Trainer.fit`) and ``evaluate`` is
:func:`evaluate_metrics` (error metrics of a labelled set, not ``ase_gnn.evaluate``'s
per-structure results).
"""

import warnings
from typing import Any

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
from ase_gnn.training.setup import prepare_model, train_from_config, train_model
from ase_gnn.training.trainer import History, Trainer, evaluate_metrics

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
    "evaluate_metrics",
    "fit_atomic_energies",
    "labels_from_atoms",
    "load_config",
    "prepare_model",
    "read_structures",
    "train_from_config",
    "train_model",
]

_RENAMED = {"fit": "train_model", "evaluate": "evaluate_metrics"}


def __getattr__(name: str) -> Any:
    """The names of 0.1 (see the module docstring), with a ``DeprecationWarning``."""
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(
            f"ase_gnn.training.{name} is now ase_gnn.training.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
