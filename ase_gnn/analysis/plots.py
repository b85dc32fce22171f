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


def embedding_map(
    features: np.ndarray,
    path: str | os.PathLike[str],
    labels: np.ndarray | None = None,
    method: str = "pca",
    title: str = "",
    seed: int = 0,
) -> np.ndarray:
    """2-D map of embeddings ``[M, F]`` (standardised), coloured by ``labels`` ``[M]``.

    Parameters
    ----------
    features
        E.g. :attr:`ase_gnn.Embeddings.atoms`.
    path
        Output image file.
    labels
        Class or cluster of every point (strings or integers), or None.
    method
        ``"pca"`` (scikit-learn), ``"tsne"`` (scikit-learn) or ``"umap"`` (needs ``umap-learn``).
    title
        Plot title.
    seed
        Random state of t-SNE / UMAP.

    Returns
    -------
    ndarray
        ``[M, 2]`` map coordinates.
    """
    from matplotlib.figure import Figure
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(features)
    if method == "pca":
        from sklearn.decomposition import PCA

        coordinates = PCA(2, random_state=seed).fit_transform(scaled)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(scaled) - 1) / 3))
        coordinates = TSNE(2, perplexity=perplexity, random_state=seed).fit_transform(scaled)
    elif method == "umap":
        try:
            import umap  # type: ignore[import-not-found]
        except ImportError as error:
            raise ValueError("method='umap' needs the umap-learn package") from error
        coordinates = umap.UMAP(random_state=seed).fit_transform(scaled)
    else:
        raise ValueError(f"method must be 'pca', 'tsne' or 'umap', got {method!r}")
    figure = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = figure.subplots()
    if labels is None:
        ax.scatter(coordinates[:, 0], coordinates[:, 1], s=8, alpha=0.7)
    else:
        labels = np.asarray(labels)
        for value in np.unique(labels):
            x, y = coordinates[labels == value].T
            ax.scatter(x, y, s=8, alpha=0.7, label=str(value))
        ax.legend(fontsize=8, markerscale=2)
    ax.set(title=title or f"embeddings ({method})", xlabel=f"{method} 1", ylabel=f"{method} 2")
    figure.savefig(path, dpi=120)
    return np.asarray(coordinates)


def confusion_matrix_plot(
    true: np.ndarray, predicted: np.ndarray, classes: list[str], path: str | os.PathLike[str]
) -> np.ndarray:
    """Confusion matrix (rows true, columns predicted) with counts, and accuracy in the title.

    Parameters
    ----------
    true, predicted
        ``[M]`` labels: class indices into ``classes``, or the class names themselves.
    classes
        The C class names, in order.
    path
        Output image file.

    Returns
    -------
    ndarray
        ``[C, C]`` counts (``sklearn.metrics.confusion_matrix``).
    """
    from matplotlib.figure import Figure
    from sklearn.metrics import confusion_matrix

    true, predicted = np.asarray(true), np.asarray(predicted)
    names = classes if true.dtype.kind in "OUS" else list(range(len(classes)))
    matrix = confusion_matrix(true, predicted, labels=names)
    figure = Figure(
        figsize=(1.2 * len(classes) + 2.5, 1.0 * len(classes) + 2.0), layout="constrained"
    )
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(column, row, str(count), ha="center", va="center", color=color)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    ax.set(xlabel="predicted", ylabel="true", title=f"accuracy {accuracy:.3f}")
    figure.colorbar(image, ax=ax)
    figure.savefig(path, dpi=120)
    return np.asarray(matrix)


def anomaly_histogram(
    scores: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    threshold: float | None = None,
) -> None:
    """Histograms of anomaly scores per group (e.g. ``{"held-out": s1, "melted": s2}``)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = figure.subplots()
    values = np.concatenate([np.ravel(v) for v in scores.values()])
    bins = np.linspace(values.min(), values.max(), 30).tolist()
    for name, group in scores.items():
        ax.hist(np.ravel(group), bins=bins, alpha=0.5, label=name)
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1, label="threshold")
    ax.set(xlabel="anomaly score", ylabel="count")
    ax.legend(fontsize=8)
    figure.savefig(path, dpi=120)
