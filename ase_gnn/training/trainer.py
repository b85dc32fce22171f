"""A plain training loop: Adam on weighted energy/force(/stress) MSE, best-on-validation weights."""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms
from tqdm.auto import tqdm

from ase_gnn.forces import predict
from ase_gnn.io import resolve_dtype
from ase_gnn.models.base import EnergyModel
from ase_gnn.nn.embedding import check_species
from ase_gnn.training.data import GraphDataset, fit_atomic_energies
from ase_gnn.training.loss import LossWeights, error_sums, metrics_from_sums, weighted_loss

logger = logging.getLogger(__name__)


@dataclass
class History:
    """Per-epoch record of a training run.

    Attributes
    ----------
    train_loss
        Mean training loss per epoch.
    valid
        Validation metrics per epoch (``energy_mae`` eV/atom, ``forces_mae`` eV/Å, RMSEs).
    best_epoch
        Epoch whose weights were kept (lowest validation loss).
    seconds
        Wall time of the whole run.
    """

    train_loss: list[float] = field(default_factory=list)
    valid: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0


def evaluate(
    model: EnergyModel,
    dataset: GraphDataset,
    batch_size: int = 16,
    stress: bool = False,
) -> dict[str, float]:
    """Energy-per-atom and force MAE/RMSE of ``model`` on ``dataset`` (eV/atom, eV/Å)."""
    sums: dict[str, float] = {}
    for start in range(0, len(dataset), batch_size):
        graph, labels = dataset.batch(range(start, min(start + batch_size, len(dataset))), model.device)
        prediction = predict(model, graph, forces=True, stress=stress)
        for key, value in error_sums(prediction, labels, graph).items():
            sums[key] = sums.get(key, 0.0) + value
    return metrics_from_sums(sums)


def _validation_loss(metrics: dict[str, float], weights: LossWeights) -> float:
    return weights.energy * metrics["energy_rmse"] ** 2 + weights.forces * metrics["forces_rmse"] ** 2


def fit(
    model: EnergyModel,
    train: Sequence[Atoms],
    valid: Sequence[Atoms],
    epochs: int = 100,
    batch_size: int = 8,
    learning_rate: float = 3e-3,
    weights: LossWeights | None = None,
    fit_reference_energies: bool = True,
    time_budget: float | None = None,
    dtype: torch.dtype | str = "float32",
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool | None = None,
) -> History:
    """Train ``model`` in place on energies and forces with Adam; keep the best-validation weights.

    Before training, the reference energies E0 are fitted by least squares on ``train`` and the
    output scale is set to the RMS force (so a unit change of the raw network output is a typical
    force-sized energy change). The learning rate is halved when the validation loss stalls.

    Parameters
    ----------
    model
        The potential to train (its species must cover the data).
    train, valid
        Labelled structures (energy, forces; stress optional) for training and model selection.
    epochs
        Maximum number of passes over ``train``.
    batch_size
        Structures per optimiser step.
    learning_rate
        Initial Adam learning rate.
    weights
        Loss weights of energy per atom, forces and stress (default 1 : 10 : 0).
    fit_reference_energies
        Fit E0 by least squares (otherwise keep the model's).
    time_budget
        Stop after this many seconds of wall time (checked after every epoch).
    dtype
        Training precision, ``"float32"`` or ``"float64"``.
    device
        Torch device.
    seed
        Seed of the shuffling and of torch's RNG.
    progress
        Show a tqdm bar; default: only when stderr is a terminal.

    Returns
    -------
    History
        Losses and validation metrics per epoch.
    """
    weights = weights or LossWeights()
    dtype = resolve_dtype(dtype)
    for atoms in [*train, *valid]:
        check_species(atoms.numbers, model.species)
    if fit_reference_energies:
        model.set_atomic_energies(fit_atomic_energies(train, model.species))
    with torch.no_grad():
        rms_force = float(np.sqrt(np.mean(np.concatenate([a.get_forces().ravel() for a in train]) ** 2)))
        model.scale.fill_(max(rms_force, 1e-3))
    model.to(device=device, dtype=dtype)
    train_set = GraphDataset(train, model.cutoff, dtype)
    valid_set = GraphDataset(valid, model.cutoff, dtype)
    use_stress = weights.stress > 0
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=5)
    generator = np.random.default_rng(seed)
    torch.manual_seed(seed)
    history, best_loss, best_state = History(), math.inf, copy.deepcopy(model.state_dict())
    start = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    # With a time budget the bar counts seconds (the epoch count is only an upper bound).
    if time_budget is None:
        bar = tqdm(total=epochs, desc="training", unit="epoch", disable=not show)
    else:
        bar = tqdm(total=round(time_budget), desc="training", unit="s", disable=not show)
    for epoch in range(epochs):
        model.train()
        order = generator.permutation(len(train_set))
        total = 0.0
        for first in range(0, len(order), batch_size):
            graph, labels = train_set.batch(order[first : first + batch_size].tolist(), device)
            prediction = predict(model, graph, forces=True, stress=use_stress, training=True)
            loss = weighted_loss(prediction, labels, graph, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * graph.num_graphs
        model.eval()
        metrics = evaluate(model, valid_set, stress=use_stress)
        valid_loss = _validation_loss(metrics, weights)
        scheduler.step(valid_loss)
        history.train_loss.append(total / len(train_set))
        history.valid.append(metrics)
        if valid_loss < best_loss:
            best_loss, history.best_epoch = valid_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(
            epoch=epoch, E_meV=f"{1e3 * metrics['energy_mae']:.1f}",
            F_meV=f"{1e3 * metrics['forces_mae']:.1f}",
        )
        elapsed = time.perf_counter() - start
        bar.update(1 if time_budget is None else min(round(elapsed), bar.total) - bar.n)
        logger.info("epoch %d loss %.4g valid %s", epoch, history.train_loss[-1], metrics)
        if time_budget is not None and elapsed > time_budget:
            break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    history.seconds = time.perf_counter() - start
    return history
