"""Explainer: completeness, the physical meaning of gates, targets, methods, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from ase_gnn import GNNCalculator
from ase_gnn.testing import tiny_model
from explain import (
    METHODS,
    Energy,
    EnergyPerAtom,
    Explainer,
    ForceComponent,
    LocalEnergy,
    StressComponent,
)

TARGETS = [Energy(), EnergyPerAtom(), LocalEnergy(1), ForceComponent(2, 0), StressComponent(0, 1)]


@pytest.fixture
def model(architecture):
    """A tiny Cu/Ag model in float64 with non-zero reference energies."""
    model = tiny_model(architecture, ["Cu", "Ag"], cutoff=4.0).double()
    model.set_atomic_energies({"Cu": -3.0, "Ag": -2.5})
    return model


@pytest.fixture
def atoms():
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.1, seed=1)
    atoms.symbols[3] = "Ag"
    return atoms


@pytest.mark.parametrize("level", ["edge", "atom"])
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: type(t).__name__)
def test_integrated_gradients_are_complete_against_isolated_atoms(model, atoms, level, target):
    attribution = Explainer(model, target=target, level=level).explain(atoms)
    calc = GNNCalculator(model)
    if isinstance(target, Energy):
        assert attribution.target_value == pytest.approx(
            calc.get_potential_energy(atoms), abs=1e-10
        )
        assert attribution.baseline_value == pytest.approx(-3.0 * 3 - 2.5, abs=1e-12)  # Σ E0
    if isinstance(target, EnergyPerAtom):
        energy = calc.get_potential_energy(atoms)
        assert attribution.target_value == pytest.approx(energy / len(atoms), abs=1e-10)
        assert attribution.baseline_value == pytest.approx((-3.0 * 3 - 2.5) / 4, abs=1e-12)
    if isinstance(target, LocalEnergy):
        local = calc.get_potential_energies(atoms)[1]
        assert attribution.target_value == pytest.approx(local, abs=1e-10)
        assert attribution.baseline_value == pytest.approx(-3.0, abs=1e-12)  # E0 of Cu
    if isinstance(target, ForceComponent):
        assert attribution.target_value == pytest.approx(calc.get_forces(atoms)[2, 0], abs=1e-10)
        assert attribution.baseline_value == 0.0  # isolated atoms feel no force
    if isinstance(target, StressComponent):
        xy = calc.get_stress(atoms)[5]  # Voigt order xx, yy, zz, yz, xz, xy
        assert attribution.target_value == pytest.approx(xy, abs=1e-10)
        assert attribution.baseline_value == pytest.approx(0.0, abs=1e-12)
    assert abs(attribution.completeness_gap) < 1e-6
    assert attribution.convergence_delta is not None and attribution.convergence_delta < 1e-6


def test_edge_level_shapes_and_node_split(model, atoms):
    attribution = Explainer(model).explain(atoms)
    num_edges = attribution.edge_index.shape[1]
    assert attribution.edge.shape == (num_edges,) and attribution.edge_shift.shape == (num_edges, 3)
    assert attribution.node.shape == (4,) and attribution.position is None
    assert attribution.node.sum() == pytest.approx(attribution.edge.sum(), abs=1e-12)
    edges, bond_scores, lengths = attribution.bonds()
    assert len(edges) == num_edges // 2 and bond_scores.sum() == pytest.approx(
        attribution.edge.sum()
    )
    assert lengths.max() < model.cutoff
    bands = attribution.by_distance([0, 2.6, 3, 4])
    limits = [(0, 2.6), (2.6, 3), (3, 4)]
    assert len(bands) == 3
    for value, (low, high) in zip(bands.values(), limits):
        inside = (lengths >= low) & (lengths < high)
        assert value == pytest.approx(bond_scores[inside].sum(), abs=1e-12)


def test_edge_scores_are_split_half_to_each_atom_of_a_bond(model):
    """A chain A-B-C with A-C beyond the cutoff: A holds half of bond AB, B half of AB and BC."""
    chain = Atoms("CuCuAg", positions=[[0, 0, 0], [2.5, 0, 0], [5.2, 0, 0]])
    attribution = Explainer(model).explain(chain)
    edges, bond_scores, lengths = attribution.bonds()
    assert len(edges) == 2
    ab, bc = (bond_scores[np.argmin(np.abs(lengths - d))] for d in (2.5, 2.7))
    assert ab != pytest.approx(bc)
    assert attribution.node == pytest.approx([ab / 2, (ab + bc) / 2, bc / 2], abs=1e-12)


def test_atom_gate_zero_moves_the_atom_away(model, atoms):
    """Gate 0 on atom k gives E(structure without k) + E0_k: the atom taken to infinity."""
    explainer = Explainer(model, level="atom")
    forward = explainer.forward(explainer.graph(atoms))
    gates = torch.ones(1, 4, dtype=torch.float64)
    gates[0, 3] = 0.0
    without = atoms.copy()
    del without[3]
    expected = GNNCalculator(model).get_potential_energy(without) - 2.5
    assert float(forward.evaluate(gates)[0]) == pytest.approx(expected, abs=1e-10)


def test_zero_baseline_attributes_the_whole_energy(model, atoms):
    attribution = Explainer(model, level="atom", baseline="zero").explain(atoms)
    assert attribution.baseline_value == 0.0
    assert attribution.node.sum() == pytest.approx(attribution.target_value, abs=1e-6)


def test_feature_ablation_removes_whole_bonds(model, atoms):
    """Ablating a bond = deleting both its directed edges from the graph."""
    explainer = Explainer(model, "feature_ablation")
    attribution = explainer.explain(atoms)
    edges, scores, _ = attribution.bonds()
    bond = int(np.argmax(np.abs(scores)))
    forward = explainer.forward(explainer.graph(atoms))
    i, j = attribution.edge_index[:, edges[bond]]
    shift = attribution.edge_shift[edges[bond]]
    gates = torch.ones(1, forward.num_inputs, dtype=torch.float64)
    for edge in range(forward.num_inputs):
        a, b = attribution.edge_index[:, edge]
        same = (a, b) == (i, j) and np.allclose(attribution.edge_shift[edge], shift)
        flipped = (a, b) == (j, i) and np.allclose(attribution.edge_shift[edge], -shift)
        if same or flipped:
            gates[0, edge] = 0.0
    removed = float(forward.evaluate(gates)[0])
    assert scores[bond] == pytest.approx(attribution.target_value - removed, abs=1e-10)


def test_shapley_values_are_efficient(model, atoms):
    attribution = Explainer(model, "shapley_value_sampling", n_samples=3).explain(atoms)
    assert abs(attribution.completeness_gap) < 1e-8


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_at_edge_and_atom_level(method, atoms):
    model = tiny_model("SchNet", ["Cu", "Ag"], cutoff=4.0).double()
    options = {"n_samples": 2} if method in ("gradient_shap", "shapley_value_sampling") else {}
    options |= {"epochs": 5} if method == "gnn_explainer" else {}
    for level in ("edge", "atom"):
        attribution = Explainer(model, method, level=level, **options).explain(atoms)
        assert np.isfinite(attribution.scores).all()
        assert attribution.method == method and attribution.level == level
    if method == "gnn_explainer":
        assert ((attribution.scores > 0) & (attribution.scores < 1)).all()


def test_position_saliency_is_minus_the_forces(model, atoms):
    attribution = Explainer(model, "saliency", level="position").explain(atoms)
    forces = GNNCalculator(model).get_forces(atoms)
    assert np.allclose(attribution.position, -forces, atol=1e-10)
    assert np.allclose(attribution.node, np.linalg.norm(forces, axis=1))


def test_internal_batch_size_only_bounds_memory(model, atoms):
    small = Explainer(model, internal_batch_size=3).explain(atoms).edge
    large = Explainer(model, internal_batch_size=100).explain(atoms).edge
    assert np.allclose(small, large, atol=1e-12)


def test_several_structures_in_one_call_and_molecules(model, atoms):
    cluster = molecule("CH4")
    cluster.symbols[:] = "Cu"  # a non-periodic Cu5 cluster of the model's species
    cluster.positions *= 2.2
    attributions = Explainer(model).explain([atoms, cluster])
    assert [len(a.atoms) for a in attributions] == [4, 5]
    assert all(abs(a.completeness_gap) < 1e-6 for a in attributions)


def test_random_generator_and_model_are_left_alone(model, atoms):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002 - Captum's GradientShap draws from numpy's global generator
    expected = torch.rand(3), np.random.rand(3)  # noqa: NPY002
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002
    Explainer(model, "gradient_shap", baseline="random", n_samples=4).explain(atoms)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])  # noqa: NPY002
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())


def test_gradient_shap_is_reproducible_and_near_complete(model, atoms):
    first = Explainer(model, "gradient_shap", n_samples=64, internal_batch_size=16)
    second = Explainer(model, "gradient_shap", n_samples=64, internal_batch_size=16)
    a, b = first.explain(atoms), second.explain(atoms)
    assert np.array_equal(a.edge, b.edge)
    span = abs(a.target_value - a.baseline_value)
    assert abs(a.completeness_gap) < 0.2 * span  # complete in expectation


def test_to_atoms_carries_scores_for_ase_viewers(model, atoms):
    tagged = Explainer(model, level="atom").explain(atoms).to_atoms()
    assert tagged.arrays["attribution"].shape == (4,)
    assert tagged.info["attribution_method"] == "integrated_gradients"
    assert tagged.calc is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "deeplift"}, "deeplift is not supported"),
        ({"method": "lime"}, "unknown method"),
        ({"level": "bond"}, "level must be one of"),
        ({"method": "integrated_gradients", "level": "position"}, "supports levels"),
        (
            {"method": "saliency", "level": "position", "target": ForceComponent(0)},
            "cannot be attributed to positions",
        ),
        ({"baseline": "zero"}, "needs level='atom'"),
        ({"baseline": "mean"}, "baseline must be one of"),
        ({"internal_batch_size": 0}, "internal_batch_size"),
        ({"n_steps": 0}, "n_steps must be a positive integer"),
    ],
)
def test_unsupported_combinations_are_refused_when_built(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Explainer(model, **kwargs)


def test_unknown_options_and_non_models_are_type_errors(model):
    with pytest.raises(TypeError, match="accepts: integration, n_steps"):
        Explainer(model, n_step=10)
    with pytest.raises(TypeError, match="EnergyModel"):
        Explainer(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def test_targets_undefined_for_a_structure_are_refused(model, atoms):
    with pytest.raises(ValueError, match="structure has 4 atoms"):
        Explainer(model, target=LocalEnergy(7)).explain(atoms)
    with pytest.raises(ValueError, match="periodic structure"):
        Explainer(model, target=StressComponent(0, 0)).explain(
            Atoms("Cu2", [[0, 0, 0], [0, 0, 2.5]])
        )
    with pytest.raises(ValueError, match="non-zero 3-vector"):
        Explainer(model, target=ForceComponent(0, (0.0, 0.0, 0.0))).explain(atoms)


def test_heads_are_targets_at_every_level():
    from ase_gnn import EdgeHead, GraphHead, NodeHead
    from explain import HeadOutput

    model = tiny_model("SchNet", ["C", "H", "O"], cutoff=4.0).double()
    width = model.num_features
    model.add_head(NodeHead("charges", width))
    model.add_head(EdgeHead("order", width, cutoff=4.0, task="classification", classes=["a", "b"]))
    model.add_head(GraphHead("gap", width))
    atoms = molecule("CH3CH2OH")
    with torch.no_grad():
        graph_out = model.head_outputs(Explainer(model).graph(atoms))
    for target, expected in [
        (HeadOutput("gap"), float(graph_out["gap"][0, 0])),
        (HeadOutput("charges", item=2), float(graph_out["charges"][2, 0])),
        (HeadOutput("order", component=1, item=5), float(graph_out["order"][5, 1])),
    ]:
        for level in ("edge", "atom"):
            attribution = Explainer(model, target=target, level=level).explain(atoms)
            assert attribution.target_value == pytest.approx(expected, abs=1e-12)
            assert abs(attribution.completeness_gap) < 1e-6
    position = Explainer(model, "saliency", HeadOutput("gap"), level="position").explain(atoms)
    assert position.position.shape == (9, 3)
    with pytest.raises(ValueError, match="no head 'dipole'"):
        Explainer(model, target=HeadOutput("dipole"))
    with pytest.raises(ValueError, match="needs item"):
        Explainer(model, target=HeadOutput("charges"))
    with pytest.raises(ValueError, match="has 2 outputs"):
        Explainer(model, target=HeadOutput("order", component=2, item=0))
    with pytest.raises(ValueError, match="node 40 is not among the 9"):
        Explainer(model, target=HeadOutput("charges", item=40)).explain(atoms)


def test_edges_refer_to_the_given_atoms_even_far_outside_the_cell(cu_model, cu_atoms):
    # graphs hold the atoms wrapped into the cell; the attribution's shifts refer to its atoms
    moved = cu_atoms.copy()
    moved.positions += np.random.default_rng(2).integers(-50, 50, (len(moved), 3)) @ moved.cell
    reference = Explainer(cu_model).explain(cu_atoms)
    attribution = Explainer(cu_model).explain(moved)
    np.testing.assert_array_equal(attribution.atoms.positions, moved.positions)
    lengths = attribution.edge_lengths
    assert lengths.max() < cu_model.cutoff
    np.testing.assert_allclose(np.sort(lengths), np.sort(reference.edge_lengths), atol=1e-9)
    np.testing.assert_allclose(attribution.edge.sum(), reference.edge.sum(), atol=1e-9)
