"""Output heads on the shared backbone: shapes, symmetries, and the model file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from scipy.spatial.transform import Rotation

from ase_gnn import graph_from_atoms, load_model, save_model
from ase_gnn.models.heads import HEADS, EdgeHead, GraphHead, NodeHead, build_head
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
    graph, out = _outputs(model, atoms)
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ Rotation.random(random_state=1).as_matrix().T
    graph_rotated, out_rotated = _outputs(model, rotated)
    for name in ("charges", "gap"):
        torch.testing.assert_close(out_rotated[name], out[name], rtol=0, atol=1e-10)
    # edge outputs are invariant bond by bond, whatever order the neighbour search lists them in
    bonds = {pair: k for k, pair in enumerate(zip(*graph.edge_index.tolist()))}
    order = [bonds[pair] for pair in zip(*graph_rotated.edge_index.tolist())]
    assert sorted(order) == list(range(graph.num_edges))
    torch.testing.assert_close(
        out_rotated["bond_order"], out["bond_order"][order], rtol=0, atol=1e-10
    )
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


class ShiftedCharges(NodeHead):
    """A user's head: a node head plus a learned shift, with a constructor argument of its own."""

    def __init__(self, name, num_features, shift_init=0.5, **kwargs):
        super().__init__(name, num_features, **kwargs)
        self.shift_init = shift_init
        self.shift = torch.nn.Parameter(torch.full((self.num_outputs,), float(shift_init)))

    def config(self):
        return {**super().config(), "shift_init": self.shift_init}

    def forward(self, graph, features):
        return super().forward(graph, features) + self.shift


def test_a_user_subclass_leaves_the_built_in_heads_untouched(tmp_path):
    head = build_head({"level": "node", "name": "q", "num_features": 8})
    assert type(head) is NodeHead
    model = tiny_model("SchNet", ["Cu"])
    model.add_head(NodeHead("q", model.num_features))
    save_model(model, tmp_path / "m.safetensors")
    assert type(load_model(tmp_path / "m.safetensors").heads["q"]) is NodeHead
    assert HEADS["NodeHead"] is NodeHead and HEADS["ShiftedCharges"] is ShiftedCharges


def test_a_user_head_round_trips_through_the_model_file(tmp_path):
    model = tiny_model("SchNet", ["C", "H", "O"]).double()
    model.add_head(ShiftedCharges("q", model.num_features, shift_init=-0.25))
    with torch.no_grad():
        model.heads["q"].shift.fill_(1.75)  # trained away from its initial value
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert type(loaded.heads["q"]) is ShiftedCharges
    assert loaded.heads["q"].shift_init == -0.25 and loaded.heads["q"].shift.item() == 1.75
    atoms = molecule("CH3CH2OH")
    assert torch.equal(_outputs(loaded, atoms)[1]["q"], _outputs(model, atoms)[1]["q"])


def test_a_second_head_class_with_a_taken_name_is_refused():
    with pytest.raises(ValueError, match=r"'NodeHead'.*user_heads.*ase_gnn\.models\.heads"):
        type("NodeHead", (NodeHead,), {"__module__": "user_heads"})
    with pytest.raises(ValueError, match=r"'ShiftedCharges'.*other_package.*test_heads"):
        type("ShiftedCharges", (NodeHead,), {"__module__": "other_package"})
    assert HEADS["NodeHead"] is NodeHead and HEADS["ShiftedCharges"] is ShiftedCharges


def test_redefining_a_head_in_its_own_module_replaces_it():
    # A re-run notebook cell or importlib.reload defines the same class again: not a clash.
    namespace = {"__module__": __name__, "__qualname__": "ShiftedCharges"}
    again = type("ShiftedCharges", (NodeHead,), namespace)
    try:
        assert HEADS["ShiftedCharges"] is again
    finally:
        HEADS["ShiftedCharges"] = ShiftedCharges


def test_a_model_file_naming_an_unregistered_head_class_is_refused(tmp_path):
    model = tiny_model("SchNet", ["Cu"])
    model.add_head(NodeHead("q", model.num_features))
    save_model(model, tmp_path / "m.safetensors")
    config = model.heads["q"].config() | {"class": "NotImported"}
    with pytest.raises(ValueError, match="'NotImported' is not registered.*import the module"):
        build_head(config)
    with pytest.raises(ValueError, match="'ShiftedCharges' is a 'node' head.*says 'edge'"):
        build_head(config | {"class": "ShiftedCharges", "level": "edge"})
