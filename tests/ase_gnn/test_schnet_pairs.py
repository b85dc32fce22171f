"""SchNet evaluates its filters once per pair of reverse edges: the same model as per edge."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from ase.build import bulk

import ase_gnn.models.schnet
from ase_gnn import graph_from_atoms, predict
from ase_gnn.graph import AtomicGraph
from ase_gnn.testing import tiny_model


def _every_edge_alone(graph: AtomicGraph) -> tuple[torch.Tensor, torch.Tensor]:
    every = torch.arange(graph.num_edges)
    return every, every


@pytest.mark.parametrize("subset", [False, True])
def test_pair_filters_give_the_energy_forces_and_stress_of_filters_per_edge(subset, monkeypatch):
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
    pairs = predict(model, graph, forces=True, stress=True)
    monkeypatch.setattr(ase_gnn.models.schnet, "edge_pairs", _every_edge_alone)
    per_edge = predict(model, graph, forces=True, stress=True)
    for name in ("local_energies", "forces", "stress"):
        torch.testing.assert_close(
            getattr(pairs, name), getattr(per_edge, name), rtol=0, atol=1e-12
        )
