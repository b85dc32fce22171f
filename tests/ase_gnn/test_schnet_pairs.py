"""SchNet evaluates its filters once per pair of reverse edges: the same model as per edge."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from ase.build import bulk

from ase_gnn import SchNet, graph_from_atoms, predict
from ase_gnn.models.nn.message_passing import MessagePassing
from ase_gnn.testing import tiny_model


@pytest.mark.parametrize("chunk_elements", [2**18, 112])
@pytest.mark.parametrize("subset", [False, True])
def test_pair_filters_give_the_energy_forces_and_stress_of_filters_per_edge(
    subset, chunk_elements, monkeypatch
):
    atoms = bulk("Cu", cubic=True).repeat((2, 2, 1))
    atoms.rattle(0.1, seed=3)
    atoms.symbols[[0, 5]] = "Ag"
    graph = graph_from_atoms(atoms, cutoff=4.0, dtype=torch.float64)
    if subset:  # edges without their reverse, as in hand-made graphs
        keep = torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(0)) < 0.7
        graph = dataclasses.replace(
            graph, edge_index=graph.edge_index[:, keep], edge_shift=graph.edge_shift[keep]
        )
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    monkeypatch.setattr(MessagePassing, "chunk_elements", chunk_elements)
    assert model._filters_per_pair(graph)
    pairs = predict(model, graph, forces=True, stress=True)
    monkeypatch.setattr(SchNet, "_filters_per_pair", lambda self, graph: False)
    per_edge = predict(model, graph, forces=True, stress=True)
    for name in ("local_energies", "forces", "stress"):
        torch.testing.assert_close(
            getattr(pairs, name), getattr(per_edge, name), rtol=0, atol=1e-12
        )
