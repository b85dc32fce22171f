"""Message passing in chunks of edges (the fast CPU path) equals one pass over all edges."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from ase.build import bulk

from ase_gnn import graph_from_atoms, predict
from ase_gnn.models.nn.message_passing import MessagePassing, halo_exchange
from ase_gnn.testing import tiny_model


def _with_chunk_elements(model, chunk_elements: int):
    model = copy.deepcopy(model)
    layers = [m for m in model.modules() if isinstance(m, MessagePassing)]
    assert layers
    for layer in layers:
        layer.chunk_elements = chunk_elements
    return model


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_chunked_message_passing_matches_one_pass(architecture, aggregation, monkeypatch):
    atoms = bulk("Cu", cubic=True).repeat((2, 2, 1))
    atoms.rattle(0.1, seed=4)
    atoms.symbols[[1, 6]] = "Ag"
    graph = graph_from_atoms(atoms, cutoff=4.0, dtype=torch.float64)
    model = tiny_model(architecture, ["Cu", "Ag"], aggregation=aggregation).double()
    center = graph.edge_index[0]
    assert bool((center[1:] >= center[:-1]).all()), "graph_from_atoms groups edges by centre"
    one_pass = predict(_with_chunk_elements(model, 10**12), graph, forces=True, stress=True)
    # edges in random order take the one-pass path
    order = torch.randperm(graph.num_edges, generator=torch.Generator().manual_seed(0))
    shuffled = dataclasses.replace(
        graph, edge_index=graph.edge_index[:, order], edge_shift=graph.edge_shift[order]
    )
    chunk_sizes = []
    original = MessagePassing._chunked_sum

    def spy(self, x, edge_index, *args):
        chunk_sizes.append(edge_index.shape[1])
        return original(self, x, edge_index, *args)

    monkeypatch.setattr(MessagePassing, "_chunked_sum", spy)
    unsorted = predict(_with_chunk_elements(model, 112), shuffled, forces=True, stress=True)
    assert chunk_sizes == []
    # about 7 edges per chunk with 16 features: many chunks of whole atoms
    chunked = predict(_with_chunk_elements(model, 112), graph, forces=True, stress=True)
    assert chunk_sizes and graph.num_edges > 20 * 7
    for name in ("local_energies", "forces", "stress"):
        for result, tolerance in ((chunked, 1e-12), (unsorted, 1e-10)):
            torch.testing.assert_close(
                getattr(result, name), getattr(one_pass, name), rtol=0, atol=tolerance
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


def test_chunked_message_passing_trains_forces_like_one_pass(architecture):
    """Parameter gradients of a force loss (double backward through the chunks) are unchanged."""
    atoms = bulk("Cu", cubic=True).repeat((2, 2, 1))
    atoms.rattle(0.1, seed=5)
    graph = graph_from_atoms(atoms, cutoff=4.0, dtype=torch.float64)
    model = tiny_model(architecture, ["Cu"]).double()
    gradients = []
    for chunk_elements in (10**12, 112):
        chunked = _with_chunk_elements(model, chunk_elements)
        prediction = predict(chunked, graph, forces=True, training=True)
        (prediction.forces**2).sum().backward()
        gradients.append([p.grad for p in chunked.parameters() if p.grad is not None])
    assert len(gradients[0]) == len(gradients[1]) > 0
    for chunked_grad, one_pass_grad in zip(gradients[1], gradients[0]):
        torch.testing.assert_close(chunked_grad, one_pass_grad, rtol=0, atol=1e-10)


def test_gather_chunks_passes_gradcheck():
    from ase_gnn.models.nn.message_passing import _GatherChunks

    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([4, 0, 0, 2, 3, 1, 4])

    def gather(x):
        return _GatherChunks.apply(x, index, [3, 0, 4])

    assert torch.autograd.gradcheck(gather, (x,))
    assert torch.autograd.gradgradcheck(gather, (x,))
    torch.testing.assert_close(torch.cat(gather(x)), x[index])


def test_under_a_halo_exchange_layers_skip_the_ghost_rows(architecture):
    # ghost rows are overwritten by the next exchange: computing their update is wasted work
    atoms = bulk("Cu", cubic=True).repeat((2, 1, 1))
    graph = graph_from_atoms(atoms, cutoff=4.0, dtype=torch.float64)
    model = tiny_model(architecture, ["Cu"]).double()
    layers = [m for m in model.modules() if isinstance(m, MessagePassing)]
    seen: list[tuple[int, int]] = []
    for layer in layers:
        update = layer.update

        def spy(h, aggregated, update=update):
            out = update(h, aggregated)
            seen.append((h.shape[0], out.shape[0]))
            return out

        layer.update = spy
    exchanged = []

    def exchange(h):
        exchanged.append(h.shape[0])
        return h

    ghosts = slice(3, 6)
    with halo_exchange(exchange, ghosts):
        features = model.features(graph, model.species_index(graph.species))
    assert len(exchanged) == len(layers) and len(seen) == len(layers)
    assert all(rows == graph.num_atoms - 3 for rows, _ in seen)
    assert features.shape[0] == graph.num_atoms
    assert torch.all(features[ghosts] == 0) and torch.any(features[: ghosts.start] != 0)
