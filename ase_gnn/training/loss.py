"""Losses and error metrics on energy per atom, forces and stress."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ase_gnn.forces import Prediction
from ase_gnn.graph import AtomicGraph, atoms_per_graph
from ase_gnn.training.data import Labels


@dataclass(frozen=True)
class LossWeights:
    """Weights of the mean-squared-error terms.

    Attributes
    ----------
    energy
        Weight of (ΔE / N)², eV²/atom².
    forces
        Weight of the mean squared force component error, (eV/Å)².
    stress
        Weight of the mean squared stress component error, (eV/Å³)²; structures without stress
        labels are skipped.
    """

    energy: float = 1.0
    forces: float = 10.0
    stress: float = 0.0


def weighted_loss(prediction: Prediction, labels: Labels, graph: AtomicGraph, weights: LossWeights) -> Tensor:
    """Weighted sum of the MSE terms (a scalar tensor with autograd history)."""
    num_atoms = atoms_per_graph(graph).to(prediction.energy.dtype)
    loss = weights.energy * (((prediction.energy - labels.energy) / num_atoms) ** 2).mean()
    if weights.forces and prediction.forces is not None:
        loss = loss + weights.forces * ((prediction.forces - labels.forces) ** 2).mean()
    if weights.stress and prediction.stress is not None:
        has_stress = ~torch.isnan(labels.stress).any(dim=(1, 2))
        if bool(has_stress.any()):
            diff = prediction.stress[has_stress] - labels.stress[has_stress]
            loss = loss + weights.stress * (diff**2).mean()
    return loss


def error_sums(prediction: Prediction, labels: Labels, graph: AtomicGraph) -> dict[str, float]:
    """Sums of absolute and squared errors with their counts, for accumulating metrics."""
    num_atoms = atoms_per_graph(graph).to(prediction.energy.dtype)
    energy_error = (prediction.energy - labels.energy) / num_atoms
    sums = {
        "energy_abs": float(energy_error.abs().sum()),
        "energy_sq": float((energy_error**2).sum()),
        "energy_n": float(energy_error.numel()),
    }
    if prediction.forces is not None:
        force_error = prediction.forces - labels.forces
        sums |= {
            "forces_abs": float(force_error.abs().sum()),
            "forces_sq": float((force_error**2).sum()),
            "forces_n": float(force_error.numel()),
        }
    return sums


def metrics_from_sums(sums: dict[str, float]) -> dict[str, float]:
    """MAE and RMSE (``energy_mae`` in eV/atom, ``forces_mae`` in eV/Å, ...) from :func:`error_sums`."""
    metrics = {}
    for key in ("energy", "forces"):
        n = sums.get(f"{key}_n", 0.0)
        if n:
            metrics[f"{key}_mae"] = sums[f"{key}_abs"] / n
            metrics[f"{key}_rmse"] = (sums[f"{key}_sq"] / n) ** 0.5
    return metrics
