"""Plots are written headless and are not empty."""

from __future__ import annotations

import numpy as np
from ase.build import molecule
from matplotlib.image import imread

from ase_gnn.testing import tiny_model
from explain import Explainer
from explain.metrics import deletion_insertion
from explain.visualize import (
    plot_curves,
    plot_method_comparison,
    plot_structure,
    plot_timeseries,
    plot_vs_distance,
)


def assert_drawn(path) -> None:
    image = imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.05  # more than a blank canvas


def test_structure_views_in_3d_and_2d(cu_model, cu_atoms, tmp_path):
    attribution = Explainer(cu_model).explain(cu_atoms)
    attribution.plot3d(tmp_path / "bonds3d.png")
    attribution.plot2d(tmp_path / "bonds2d.png", plane=(0, 2))
    for name in ("bonds3d.png", "bonds2d.png"):
        assert_drawn(tmp_path / name)


def test_periodic_bonds_are_drawn_to_the_neighbors_image(cu_model, cu_atoms):
    attribution = Explainer(cu_model).explain(cu_atoms)
    figure = plot_structure(attribution, projection="2d", max_bonds=10**6)
    lines = figure.axes[0].collections[0]
    segments = np.array(lines.get_segments())  # [P, 2, 2] in the x-y plane
    edges, _, lengths = attribution.bonds()
    assert len(segments) == len(edges)
    drawn = np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1)
    # Projections of the true bond vectors: never longer than the longest bond (< cutoff), as a
    # bond drawn across the cell to the neighbor's in-cell copy would be (up to 7 Å here).
    assert drawn.max() <= lengths.max() + 1e-9 < cu_model.cutoff


def test_molecule_without_cell_and_atom_level(tmp_path):
    model = tiny_model("SchNet", ["C", "H"], cutoff=3.0).double()
    attribution = Explainer(model, level="atom").explain(molecule("CH4"))
    attribution.plot3d(tmp_path / "ch4.png")
    assert_drawn(tmp_path / "ch4.png")


def test_distance_curves_comparison_and_time_series(cu_model, cu_atoms, tmp_path):
    explainers = {m: Explainer(cu_model, m) for m in ("integrated_gradients", "saliency")}
    attributions = {m: e.explain(cu_atoms) for m, e in explainers.items()}
    plot_vs_distance(attributions, tmp_path / "distance.png")
    curves = {m: deletion_insertion(explainers[m], a, steps=5) for m, a in attributions.items()}
    plot_curves(curves, tmp_path / "curves.png")
    plot_method_comparison(
        {
            m: {"deletion AUC": c.deletion_auc, "insertion AUC": c.insertion_auc}
            for m, c in curves.items()
        },
        tmp_path / "methods.png",
    )
    frames = [cu_atoms.copy() for _ in range(3)]
    for k, frame in enumerate(frames):
        frame.rattle(0.05, seed=k)
    series = Explainer(cu_model, level="atom").explain(frames)
    plot_timeseries(series, tmp_path / "series.png", top=3)
    for name in ("distance.png", "curves.png", "methods.png", "series.png"):
        assert_drawn(tmp_path / name)
