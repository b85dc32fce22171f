"""Message passing in chunks of edges (the fast CPU path) equals one pass over all edges."""

from __future__ import annotations

import copy

import pytest
import torch
from ase.build import bulk

from ase_gnn import graph_from_atoms, predict
from ase_gnn.nn.message_passing import MessagePassing
from ase_gnn.testing import tiny_model


def _with_chunk_elements(model, chunk_elements: int):
    model = copy.deepcopy(model)
    layers = [m for m in model.modules() if isinstance(m, MessagePassing)]
    assert layers
    for layer in layers:
        layer.chunk_elements = chunk_elements
    return model


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_chunked_message_passing_matches_one_pass(architecture, aggregation):
    atoms = bulk("Cu", cubic=True).repeat((2, 2, 1))
    atoms.rattle(0.1, seed=4)
    atoms.symbols[[1, 6]] = "Ag"
    graph = graph_from_atoms(atoms, cutoff=4.0, dtype=torch.float64)
    model = tiny_model(architecture, ["Cu", "Ag"], aggregation=aggregation).double()
    one_pass = predict(_with_chunk_elements(model, 10**12), graph, forces=True, stress=True)
    # about 7 edges per chunk with 16 features: many chunks, the last one shorter
    chunked = predict(_with_chunk_elements(model, 112), graph, forces=True, stress=True)
    assert graph.num_edges > 20 * 7
    for name in ("local_energies", "forces", "stress"):
        torch.testing.assert_close(
            getattr(chunked, name), getattr(one_pass, name), rtol=0, atol=1e-12
        )


def test_chunked_message_passing_handles_graphs_without_edges(architecture):
    atoms = bulk("Cu", cubic=True)
    atoms.pbc = False
    atoms.positions *= 3.0  # every neighbor beyond the 4 Å cutoff
    graph = graph_from_atoms(atoms, cutoff=4.0, dtype=torch.float64)
    assert graph.num_edges == 0
    model = _with_chunk_elements(tiny_model(architecture, ["Cu"]).double(), 1)
    prediction = predict(model, graph, forces=True)
    expected = model.atomic_energies[model.species_index(graph.species)]
    torch.testing.assert_close(prediction.local_energies, expected, rtol=0, atol=1e-12)
