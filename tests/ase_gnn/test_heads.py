"""Output heads on the shared backbone: shapes, symmetries, and the model file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from scipy.spatial.transform import Rotation

from ase_gnn import graph_from_atoms, load_model, save_model
from ase_gnn.heads import EdgeHead, GraphHead, NodeHead, build_head
from ase_gnn.testing import tiny_model


def _with_heads(architecture):
    model = tiny_model(architecture, ["C", "H", "O"], cutoff=4.0).double()
    width = model.num_features
    model.add_head(NodeHead("charges", width))
    model.add_head(EdgeHead("bond_order", width, cutoff=4.0, task="classification",
                            classes=["none", "single", "double"]))  # fmt: skip
    model.add_head(GraphHead("gap", width, readout="mean"))
    return model


def _outputs(model, atoms):
    graph = graph_from_atoms(atoms, model.cutoff, dtype=torch.float64)
    return graph, model.head_outputs(graph)


def test_shapes_follow_the_level(architecture):
    model = _with_heads(architecture)
    atoms = molecule("CH3CH2OH")
    graph, out = _outputs(model, atoms)
    assert out["charges"].shape == (9, 1)
    assert out["bond_order"].shape == (graph.num_edges, 3)
    assert out["gap"].shape == (1, 1)
    assert model.representation(graph).shape == (9, model.num_features)


def test_outputs_are_invariant_and_equivariant(architecture):
    model = _with_heads(architecture)
    atoms = molecule("CH3CH2OH")
    _, out = _outputs(model, atoms)
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ Rotation.random(random_state=1).as_matrix().T
    _, out_rotated = _outputs(model, rotated)
    for name in ("charges", "gap"):
        torch.testing.assert_close(out_rotated[name], out[name], rtol=0, atol=1e-10)
    order = np.random.default_rng(0).permutation(len(atoms))
    _, out_permuted = _outputs(model, atoms[order])
    torch.testing.assert_close(out_permuted["charges"], out["charges"][order], rtol=0, atol=1e-10)


def test_edge_head_gives_both_directions_of_a_bond_the_same_output(architecture):
    model = _with_heads(architecture)
    graph, out = _outputs(model, molecule("CH3CH2OH"))
    center, neighbor = graph.edge_index.tolist()
    position = {(i, j): k for k, (i, j) in enumerate(zip(center, neighbor))}
    reverse = [position[(j, i)] for i, j in zip(center, neighbor)]
    torch.testing.assert_close(out["bond_order"], out["bond_order"][reverse], rtol=0, atol=1e-12)


def test_heads_and_class_names_survive_the_model_file(architecture, tmp_path):
    model = _with_heads(architecture)
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert list(loaded.heads) == ["charges", "bond_order", "gap"]
    assert loaded.heads["bond_order"].classes == ("none", "single", "double")
    atoms = molecule("CH3CH2OH")
    for name, value in _outputs(model, atoms)[1].items():
        assert torch.equal(_outputs(loaded, atoms)[1][name], value), name


def test_bad_heads_are_refused():
    model = tiny_model("SchNet", ["Cu"])
    with pytest.raises(ValueError, match="expects 7 features"):
        model.add_head(NodeHead("x", 7))
    model.add_head(NodeHead("x", model.num_features))
    with pytest.raises(ValueError, match="already has an output named 'x'"):
        model.add_head(NodeHead("x", model.num_features))
    with pytest.raises(ValueError, match="two or more distinct classes"):
        GraphHead("phase", 8, task="classification", classes=["fcc"])
    with pytest.raises(ValueError, match="unknown head level"):
        build_head({"level": "triangle", "name": "t", "num_features": 8})
    with pytest.raises(ValueError, match="no head named"):
        model.head_outputs(graph_from_atoms(bulk("Cu"), model.cutoff), ["y"])
