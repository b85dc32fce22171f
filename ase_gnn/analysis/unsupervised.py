"""Learned representations without labels: embeddings, clustering and anomaly scores.

:func:`embed` returns the backbone's invariant per-atom features (and their mean per structure)
for any model; :func:`cluster` groups atomic environments with scikit-learn; an
:class:`AnomalyDetector` scores atoms and structures by how far their embeddings lie from those
of the training data (the mean distance to the k nearest training environments, after
standardising), an out-of-distribution signal that needs no committee.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from ase import Atoms
from tqdm.auto import tqdm

from ase_gnn.graph.atomic_graph import batch_graphs
from ase_gnn.graph.neighbors import graph_from_atoms
from ase_gnn.models.base import EnergyModel
from ase_gnn.models.nn.embedding import check_species


@dataclass(frozen=True)
class Embeddings:
    """Per-atom and per-structure embeddings of a list of structures.

    Attributes
    ----------
    atoms
        ``[N_total, F]`` features of every atom of every structure, in order.
    structures
        ``[B, F]`` mean of each structure's atom features.
    structure_index
        ``[N_total]`` structure of every atom.
    """

    atoms: np.ndarray
    structures: np.ndarray
    structure_index: np.ndarray


def embed(
    model: EnergyModel,
    structures: Atoms | Sequence[Atoms],
    batch_size: int = 16,
    progress: bool = False,
) -> Embeddings:
    """Invariant embeddings of atoms and structures from a model's backbone.

    Parameters
    ----------
    model
        Any :class:`ase_gnn.EnergyModel` (trained, pretrained or even untrained).
    structures
        One structure or a list.
    batch_size
        Structures per model call.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Embeddings
        float64 arrays; features are :meth:`EnergyModel.representation`.
    """
    structures = [structures] if isinstance(structures, Atoms) else list(structures)
    per_atom: list[np.ndarray] = []
    for start in tqdm(
        range(0, len(structures), batch_size), disable=not progress, unit="batch", desc="embed"
    ):
        chunk = structures[start : start + batch_size]
        for atoms in chunk:
            check_species(atoms.numbers, model.species)
        graph = batch_graphs(
            [
                graph_from_atoms(a, model.cutoff, dtype=model.dtype, device=model.device)
                for a in chunk
            ]
        )
        with torch.no_grad():
            per_atom.append(model.representation(graph).cpu().double().numpy())
    features = np.concatenate(per_atom) if per_atom else np.zeros((0, model.num_features))
    counts = np.array([len(a) for a in structures], dtype=int)
    index = np.repeat(np.arange(len(structures)), counts)
    sums = np.zeros((len(structures), features.shape[1]))
    np.add.at(sums, index, features)
    return Embeddings(features, sums / np.maximum(counts, 1)[:, None], index)


def cluster(
    features: np.ndarray,
    num_clusters: int,
    method: Literal["kmeans", "gaussian_mixture"] = "kmeans",
    seed: int = 0,
) -> np.ndarray:
    """Cluster labels ``[M]`` of features ``[M, F]`` (standardised first), with scikit-learn.

    Parameters
    ----------
    features
        E.g. :attr:`Embeddings.atoms` (atomic environments) or :attr:`Embeddings.structures`.
    num_clusters
        Number of clusters.
    method
        ``"kmeans"`` (``sklearn.cluster.KMeans``) or ``"gaussian_mixture"``
        (``sklearn.mixture.GaussianMixture``).
    seed
        Random state of the clustering.
    """
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(features)
    if method == "kmeans":
        labels = KMeans(num_clusters, n_init=10, random_state=seed).fit_predict(scaled)
    elif method == "gaussian_mixture":
        labels = GaussianMixture(num_clusters, random_state=seed).fit(scaled).predict(scaled)
    else:
        raise ValueError(f"method must be 'kmeans' or 'gaussian_mixture', got {method!r}")
    return np.asarray(labels)


class AnomalyDetector:
    """Out-of-distribution scores from distances in embedding space.

    An atom's score is the mean Euclidean distance of its standardised embedding to its
    ``k`` nearest neighbors among the training atoms' embeddings (``sklearn.neighbors``); a
    structure's score is the largest score of its atoms (one unusual environment suffices).
    Scores of the training atoms themselves are typically below 1; compare with
    :attr:`threshold`, the 99th percentile of held-in scores.

    Parameters
    ----------
    model
        The model whose embeddings are used.
    k
        Number of nearest training environments.
    batch_size
        Structures per model call.
    """

    def __init__(self, model: EnergyModel, k: int = 5, batch_size: int = 16) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.model, self.k, self.batch_size = model, k, batch_size
        self._scaler: Any = None
        self._index: Any = None
        self.threshold = float("nan")

    def fit(self, structures: Sequence[Atoms]) -> AnomalyDetector:
        """Remember the embeddings of the training structures; returns ``self``."""
        from sklearn.neighbors import NearestNeighbors
        from sklearn.preprocessing import StandardScaler

        features = embed(self.model, structures, self.batch_size).atoms
        if len(features) <= self.k:
            raise ValueError(f"need more than k = {self.k} training atoms, got {len(features)}")
        self._scaler = StandardScaler().fit(features)
        scaled = self._scaler.transform(features)
        self._index = NearestNeighbors(n_neighbors=self.k + 1).fit(scaled)
        distances, _ = self._index.kneighbors(scaled)  # first neighbor: the atom itself
        self.threshold = float(np.percentile(distances[:, 1:].mean(axis=1), 99))
        return self

    def score_atoms(self, structures: Atoms | Sequence[Atoms]) -> np.ndarray:
        """``[N_total]`` scores of every atom (see the class docstring)."""
        if self._index is None:
            raise ValueError("call fit(training_structures) first")
        features = embed(self.model, structures, self.batch_size).atoms
        distances, _ = self._index.kneighbors(self._scaler.transform(features), self.k)
        return np.asarray(distances.mean(axis=1))

    def score(self, structures: Atoms | Sequence[Atoms]) -> np.ndarray:
        """``[B]`` score of every structure: the largest score of its atoms."""
        structures = [structures] if isinstance(structures, Atoms) else list(structures)
        atom_scores = self.score_atoms(structures)
        bounds = np.cumsum([0] + [len(a) for a in structures])
        return np.array([atom_scores[a:b].max(initial=0.0) for a, b in zip(bounds, bounds[1:])])
