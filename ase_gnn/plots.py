"""Plots of training results (matplotlib, imported lazily, headless-safe)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np


def parity_plot(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray, str]],
    path: str | os.PathLike[str],
) -> None:
    """Predicted-vs-reference scatter plots side by side, with MAE in each title.

    Parameters
    ----------
    panels
        ``{title: (reference, predicted, unit)}``; arrays of any matching shape.
    path
        Output image file (PNG recommended).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2 * len(panels), 4.0), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, (reference, predicted, unit)) in zip(axes, panels.items()):
        reference, predicted = np.ravel(reference), np.ravel(predicted)
        low = min(reference.min(), predicted.min())
        high = max(reference.max(), predicted.max())
        ax.plot([low, high], [low, high], color="0.6", lw=1)
        ax.scatter(reference, predicted, s=6, alpha=0.6)
        mae = np.abs(reference - predicted).mean()
        ax.set(
            title=f"{title}  (MAE {mae:.3g} {unit})",
            xlabel=f"reference / {unit}",
            ylabel=f"predicted / {unit}",
        )
    figure.savefig(path, dpi=120)


def learning_curve_plot(
    train_loss: list[float], valid: list[dict[str, float]], path: str | os.PathLike[str]
) -> None:
    """Training loss and validation MAEs per epoch on log axes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.4, 3.6), layout="constrained")
    loss_ax, mae_ax = figure.subplots(1, 2)
    loss_ax.semilogy(train_loss)
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="loss")
    mae_ax.semilogy([1e3 * v["energy_mae"] for v in valid], label="energy (meV/atom)")
    mae_ax.semilogy([1e3 * v["forces_mae"] for v in valid], label="forces (meV/Å)")
    mae_ax.set(xlabel="epoch", ylabel="validation MAE", title="validation")
    mae_ax.legend()
    figure.savefig(path, dpi=120)
