"""One reverse-edge matching for models and explanations (issue 15, part 2)."""

from __future__ import annotations

import numpy as np
import torch
from ase.build import bulk, molecule

from ase_gnn import edge_pairs, graph_from_atoms, reverse_edges
from explain.result import bond_ids


def _brute_force(edge_index: np.ndarray, edge_shift: np.ndarray) -> np.ndarray:
    rows = {
        (int(i), int(j), *map(int, s)): e
        for e, (i, j, s) in enumerate(zip(*edge_index, edge_shift))
    }
    return np.array(
        [
            rows.get((int(j), int(i), *(-int(x) for x in s)), -1)
            for i, j, s in zip(*edge_index, edge_shift)
        ]
    )


def test_reverse_of_every_edge_of_a_small_triclinic_cell_and_a_molecule() -> None:
    crystal = bulk("Cu", "fcc", a=3.6)  # primitive cell: many images of the same pair
    for atoms in (crystal, molecule("CH3CH2OH")):
        graph = graph_from_atoms(atoms, 5.0)
        reverse = reverse_edges(graph.edge_index, graph.edge_shift)
        expected = _brute_force(graph.edge_index.numpy(), graph.edge_shift.numpy())
        assert (expected >= 0).all()
        assert torch.equal(reverse, torch.as_tensor(expected))
        assert torch.equal(reverse[reverse], torch.arange(graph.num_edges))


def test_missing_reverses_are_minus_one_and_pairs_alone() -> None:
    graph = graph_from_atoms(molecule("H2O"), 2.0)
    keep = torch.tensor([0, 1, 2])  # of 4 edges (O-H both ways twice): one reverse dropped
    edge_index, edge_shift = graph.edge_index[:, keep], graph.edge_shift[keep]
    reverse = reverse_edges(edge_index, edge_shift)
    expected = _brute_force(edge_index.numpy(), edge_shift.numpy())
    assert torch.equal(reverse, torch.as_tensor(expected)) and (expected == -1).sum() == 1


def test_huge_shift_codes_fall_back_to_row_numbering() -> None:
    # Shifts of ±2e6 cells make the packed integer key overflow int64: the fallback must agree.
    edge_index = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]])
    edge_shift = torch.tensor([[2e6, 0, 0], [-2e6, 0, 0], [0, 1, 0], [0, -1, 0]])
    reverse = reverse_edges(edge_index, edge_shift)
    assert reverse.tolist() == [1, 0, 3, 2]


def test_bonds_of_explain_are_the_pairs_of_the_model() -> None:
    graph = graph_from_atoms(bulk("Cu", cubic=True), 4.0)
    first, pair = edge_pairs(graph)
    bonds = bond_ids(graph.edge_index.numpy(), graph.edge_shift.numpy())
    assert np.array_equal(bonds, pair.numpy())
    assert len(first) == graph.num_edges // 2
