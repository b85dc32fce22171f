"""The edge_weight hook: weight 1 is the plain model, weight 0 is the edge deleted, every layer."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from ase.build import bulk

from ase_gnn import graph_from_atoms, predict
from ase_gnn.models.nn.message_passing import aggregate
from ase_gnn.testing import supported_aggregations, tiny_model


@pytest.fixture
def graph():
    atoms = bulk("Cu", cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=2)
    atoms.symbols[1] = "Ag"
    return graph_from_atoms(atoms, cutoff=4.0, dtype=torch.float64)


@pytest.mark.parametrize("aggregation", ["sum", "mean", "max"])
def test_unit_edge_weight_gives_the_unweighted_energy_exactly(architecture, graph, aggregation):
    if aggregation not in supported_aggregations(architecture):
        pytest.skip(f"{architecture} refuses aggregation={aggregation!r}")
    model = tiny_model(architecture, ["Cu", "Ag"], aggregation=aggregation).double()
    ones = torch.ones(graph.num_edges, dtype=torch.float64)
    assert torch.equal(model(graph, ones), model(graph))


@pytest.mark.parametrize("aggregation", ["sum", "mean", "max"])
def test_zero_edge_weight_equals_deleting_the_edge(architecture, graph, aggregation):
    if aggregation not in supported_aggregations(architecture):
        pytest.skip(f"{architecture} refuses aggregation={aggregation!r}")
    model = tiny_model(architecture, ["Cu", "Ag"], aggregation=aggregation).double()
    removed = torch.tensor([0, 5, 17, 40])
    weight = torch.ones(graph.num_edges, dtype=torch.float64)
    weight[removed] = 0.0
    keep = torch.ones(graph.num_edges, dtype=torch.bool)
    keep[removed] = False
    pruned = dataclasses.replace(
        graph, edge_index=graph.edge_index[:, keep], edge_shift=graph.edge_shift[keep]
    )
    torch.testing.assert_close(model(graph, weight), model(pruned), rtol=0, atol=1e-12)


def test_all_zero_edge_weights_give_the_sum_of_reference_energies(architecture, graph):
    model = tiny_model(architecture, ["Cu", "Ag"]).double()
    energies = model(graph, torch.zeros(graph.num_edges, dtype=torch.float64))
    expected = model.atomic_energies[model.species_index(graph.species)]
    torch.testing.assert_close(energies, expected, rtol=0, atol=1e-12)


def test_edge_weight_gradient_is_available_for_attribution(architecture, graph):
    model = tiny_model(architecture, ["Cu", "Ag"]).double()
    weight = torch.full((graph.num_edges,), 0.5, dtype=torch.float64, requires_grad=True)
    predict(model, graph, forces=False, edge_weight=weight, training=True).energy.sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_edge_weight_of_wrong_shape_is_rejected(graph):
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    with pytest.raises(ValueError, match="edge_weight must have shape"):
        model(graph, torch.ones(3, dtype=torch.float64))


def test_aggregations_on_a_hand_computed_example():
    messages = torch.tensor([[1.0, -2.0], [3.0, -1.0], [5.0, 4.0]])
    center = torch.tensor([0, 0, 2])
    weights = torch.tensor([1.0, 1.0, 0.5])
    total = aggregate(messages, center, weights, 3, "sum")
    assert torch.equal(total, torch.tensor([[4.0, -3.0], [0.0, 0.0], [5.0, 4.0]]))
    maximum = aggregate(messages, center, weights, 3, "max")
    assert torch.equal(maximum, torch.tensor([[3.0, 0.0], [0.0, 0.0], [5.0, 4.0]]))
    mean = aggregate(messages, center, weights, 3, "mean")
    s = torch.tensor([2.0, 0.0, 0.5])
    torch.testing.assert_close(mean, total / (s + torch.exp(-s)).unsqueeze(-1))
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(messages, center, weights, 3, "median")  # type: ignore[arg-type]  # bad input on purpose
