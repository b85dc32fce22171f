"""Embeddings, clustering of atomic environments and anomaly scores."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, fcc111
from sklearn.metrics import adjusted_rand_score, roc_auc_score

from ase_gnn.analysis.unsupervised import AnomalyDetector, cluster, embed
from ase_gnn.testing import tiny_model


@pytest.fixture
def model():
    return tiny_model("SchNet", ["Cu"], cutoff=4.0).double()


def _crystals(count, seed, scale=1.0, rattle=0.05):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        atoms = bulk("Cu", cubic=True, a=3.61 * scale).repeat((2, 2, 2))
        atoms.rattle(rattle, seed=int(rng.integers(1 << 30)))
        out.append(atoms)
    return out


def test_embeddings_shapes_order_and_batching(model):
    structures = _crystals(3, 0) + [fcc111("Cu", (2, 2, 3), vacuum=6.0)]
    one = embed(model, structures, batch_size=1)
    many = embed(model, structures, batch_size=16)
    assert one.atoms.shape == (3 * 32 + 12, model.num_features)
    assert one.structures.shape == (4, model.num_features)
    assert np.allclose(one.atoms, many.atoms, atol=1e-12)
    assert np.array_equal(one.structure_index[-12:], [3] * 12)
    assert np.allclose(one.structures[3], one.atoms[-12:].mean(axis=0))


def test_surface_and_bulk_environments_cluster_apart(model):
    slab = fcc111("Cu", (3, 3, 6), vacuum=6.0)
    slab.rattle(0.02, seed=1)
    layer = np.round(slab.positions[:, 2], 1)
    surface = (layer == layer.min()) | (layer == layer.max())
    labels = cluster(embed(model, slab).atoms, 2)
    assert adjusted_rand_score(surface, labels) > 0.9
    mixture = cluster(embed(model, slab).atoms, 2, method="gaussian_mixture")
    assert adjusted_rand_score(surface, mixture) > 0.9


def test_anomaly_scores_separate_unusual_structures(model):
    detector = AnomalyDetector(model).fit(_crystals(20, 0))
    normal = _crystals(10, 1)
    unusual = _crystals(5, 2, scale=0.92) + _crystals(5, 3, rattle=0.35)
    scores = detector.score(normal + unusual)
    labels = [0] * len(normal) + [1] * len(unusual)
    assert roc_auc_score(labels, scores) > 0.95
    assert np.median(scores[: len(normal)]) < detector.threshold * 1.5
    slab = fcc111("Cu", (2, 2, 4), vacuum=6.0)
    atom_scores = detector.score_atoms(slab)
    layer = np.round(slab.positions[:, 2], 1)
    inner = (layer != layer.min()) & (layer != layer.max())
    assert atom_scores[~inner].min() > atom_scores[inner].max()  # surface atoms are new


def test_detector_needs_fitting_and_enough_atoms(model):
    with pytest.raises(ValueError, match="call fit"):
        AnomalyDetector(model).score(_crystals(1, 0))
    with pytest.raises(ValueError, match="more than k"):
        AnomalyDetector(model, k=50).fit(_crystals(1, 0))


def test_calculator_reports_anomaly_only_when_asked(model, monkeypatch):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from ase_gnn import AnomalyCalculator, GNNCalculator

    detector = AnomalyDetector(model).fit(_crystals(10, 0))
    calls = []
    original = detector.score_atoms
    monkeypatch.setattr(detector, "score_atoms", lambda a: calls.append(1) or original(a))
    atoms = _crystals(1, 5)[0]
    atoms.calc = AnomalyCalculator(GNNCalculator(model), detector)
    VelocityVerlet(atoms, timestep=1.0 * units.fs).run(3)
    assert calls == []
    assert atoms.get_potential_energy() == pytest.approx(
        GNNCalculator(model).get_potential_energy(atoms)
    )
    scores = atoms.calc.get_property("atom_anomaly", atoms)
    assert scores.shape == (32,) and atoms.calc.get_property("anomaly", atoms) == scores.max()
    assert len(calls) == 1  # both results from one pass, then cached
    compressed = atoms.copy()
    compressed.set_cell(compressed.cell * 0.9, scale_atoms=True)
    assert atoms.calc.get_property("anomaly", compressed) > scores.max()


def test_maps_confusion_matrix_and_histograms_are_drawn(model, tmp_path):
    from matplotlib.image import imread

    from ase_gnn.analysis.plots import anomaly_histogram, confusion_matrix_plot, embedding_map

    slab = fcc111("Cu", (3, 3, 4), vacuum=6.0)
    layer = np.round(slab.positions[:, 2], 1)
    surface = np.where((layer == layer.min()) | (layer == layer.max()), "surface", "inner")
    features = embed(model, slab).atoms
    for method in ("pca", "tsne"):
        coordinates = embedding_map(features, tmp_path / f"{method}.png", surface, method=method)
        assert coordinates.shape == (36, 2)
    matrix = confusion_matrix_plot(
        np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), ["fcc", "bcc", "hcp"], tmp_path / "cm.png"
    )
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    named = confusion_matrix_plot(
        np.array(["fcc", "bcc", "bcc", "hcp"]), np.array(["fcc", "bcc", "hcp", "hcp"]),
        ["fcc", "bcc", "hcp"], tmp_path / "named.png",
    )  # fmt: skip
    assert named.tolist() == matrix.tolist()
    anomaly_histogram({"a": np.arange(10.0), "b": np.arange(5.0, 20.0)}, tmp_path / "h.png", 9.0)
    for name in ("pca.png", "tsne.png", "cm.png", "h.png"):
        image = imread(tmp_path / name)
        assert image.shape[0] > 100 and image[..., :3].std() > 0.05
    with pytest.raises(ValueError, match="method must be"):
        embedding_map(features, tmp_path / "x.png", method="mds")


def test_twin_boundary_environments_cluster_by_distance_from_the_plane():
    from ase_gnn.data._structures import fcc_twin_bicrystal

    atoms, distance = fcc_twin_bicrystal("Cu", 3.61)
    assert len(atoms) == 288 and set(distance) == {0, 1, 2, 3, 4}
    coordination = (atoms.get_all_distances(mic=True) < 3.0).sum(axis=1) - 1
    assert set(coordination) == {12}  # nearest neighbors cannot tell the boundary
    model = tiny_model("SchNet", ["Cu"], cutoff=5.0).double()
    labels = cluster(embed(model, atoms).atoms, 4)
    assert adjusted_rand_score(np.minimum(distance, 3), labels) > 0.95
