"""Radius graphs from ``ase.Atoms`` against ASE's reference neighbor list.

ASE's ``primitive_neighbor_list`` is slow but simple and trusted; vesin (behind
``graph_from_atoms``) must produce exactly the same set of directed edges (i, j, S) on every cell
family that broke some other MLIP's neighbor list: zero cells of molecules, mixed periodicity,
triclinic and strongly skewed cells, cells smaller than the cutoff (several self-images) and atoms
far outside the cell.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.neighborlist import primitive_neighbor_list

from ase_gnn.graph import neighbors
from ase_gnn.graph.atomic_graph import AtomicGraph, batch_graphs, edge_pairs, edge_vectors
from ase_gnn.graph.neighbors import graph_from_atoms, wrapped_positions


def _slab_with_zero_c() -> Atoms:
    atoms = fcc111("Cu", size=(2, 2, 3), vacuum=None)
    atoms.cell[2] = 0.0
    atoms.pbc = (True, True, False)
    return atoms


def _unwrapped_bulk() -> Atoms:
    atoms = bulk("Cu", cubic=True)
    a = atoms.cell[0, 0]
    # Every atom moved by a different whole number of lattice vectors, some of them negative.
    atoms.positions += a * np.array([[2, -3, 0], [0, 0, 0], [-1, 1, 5], [7, 0, -2]])
    return atoms


def _rattled_alloy() -> Atoms:
    atoms = bulk("Cu", cubic=True).repeat((2, 2, 2))
    atoms.numbers[::3] = 79  # Au
    atoms.numbers[1::5] = 28  # Ni
    atoms.rattle(0.1, seed=1)
    return atoms


def _structures() -> dict[str, tuple[Atoms, float]]:
    """Name → (atoms, cutoff) for the battery; built fresh per test."""
    rng = np.random.default_rng(0)
    return {
        "molecule_zero_cell": (molecule("CH4"), 3.0),
        "fcc_cubic": (bulk("Cu", cubic=True), 5.0),
        "fcc_primitive": (bulk("Cu"), 5.0),
        "slab_vacuum": (fcc111("Cu", size=(2, 2, 3), vacuum=6.0), 5.0),
        "slab_zero_c": (_slab_with_zero_c(), 5.0),
        "wire": (
            Atoms(
                "Cu2",
                positions=[[0.0, 0.0, 0.0], [1.3, 1.0, 0.2]],
                cell=[2.5, 0.0, 0.0],
                pbc=(True, False, False),
            ),
            5.0,
        ),
        "triclinic": (
            Atoms(
                "Cu3",
                scaled_positions=rng.random((3, 3)),
                cell=[[3.1, 0.0, 0.0], [0.8, 2.9, 0.0], [0.5, 0.7, 3.3]],
                pbc=True,
            ),
            4.0,
        ),
        "strongly_skewed": (
            Atoms(
                "Cu2",
                scaled_positions=[[0.0, 0.0, 0.0], [0.3, 0.6, 0.5]],
                cell=[[3.0, 0.0, 0.0], [2.9, 0.5, 0.0], [0.0, 0.0, 3.0]],
                pbc=True,
            ),
            4.0,
        ),
        "cell_smaller_than_cutoff": (
            Atoms("Cu", positions=[[0.3, 0.4, 0.5]], cell=np.eye(3) * 2.0, pbc=True),
            5.0,
        ),
        "atoms_outside_cell": (_unwrapped_bulk(), 5.0),
        "rattled_alloy": (_rattled_alloy(), 4.5),
    }


STRUCTURES = list(_structures())


def _edge_set(graph: AtomicGraph) -> set[tuple[int, int, tuple[int, ...]]]:
    shifts = graph.edge_shift.round().long().tolist()
    return set(
        zip(
            graph.edge_index[0].tolist(),
            graph.edge_index[1].tolist(),
            map(tuple, shifts),
            strict=True,
        )
    )


def _ase_edges(atoms: Atoms, cutoff: float, quantities: str = "ijS"):
    """ASE's edges of ``atoms``; shifts S turned into the graph's (S + offset_j − offset_i).

    The graph holds the atoms wrapped into the cell by whole lattice vectors (``offsets``).
    """
    result = list(
        primitive_neighbor_list(
            quantities, atoms.pbc, atoms.cell[:], atoms.positions, cutoff, self_interaction=False
        )
    )
    if "S" in quantities:
        _, offsets = wrapped_positions(atoms)
        i, j = result[quantities.index("i")], result[quantities.index("j")]
        result[quantities.index("S")] += offsets[j] - offsets[i]
    return result


@pytest.mark.parametrize("name", STRUCTURES)
def test_edges_match_ase_primitive_neighbor_list(name):
    atoms, cutoff = _structures()[name]
    graph = graph_from_atoms(atoms, cutoff)
    i, j, shift = _ase_edges(atoms, cutoff)
    expected = set(zip(i.tolist(), j.tolist(), map(tuple, shift.tolist()), strict=True))

    assert graph.num_edges == len(i)
    assert _edge_set(graph) == expected
    assert len(_edge_set(graph)) == graph.num_edges  # no duplicated edges


@pytest.mark.parametrize("name", STRUCTURES)
def test_edge_shifts_are_integers_and_zero_on_non_periodic_axes(name):
    atoms, cutoff = _structures()[name]
    graph = graph_from_atoms(atoms, cutoff)
    shift = graph.edge_shift
    assert torch.equal(shift, shift.round())
    assert (shift[:, ~graph.pbc[0]] == 0).all()


def test_cell_smaller_than_cutoff_gives_80_self_image_pairs():
    # 1 Cu in a 2 Å cube, cutoff 5 Å: 80 lattice points with 0 < 2 Å·|S| < 5 Å (ASE, vesin agree).
    atoms = Atoms("Cu", positions=[[0.3, 0.4, 0.5]], cell=np.eye(3) * 2.0, pbc=True)
    graph = graph_from_atoms(atoms, 5.0)
    assert graph.num_edges == 80
    assert (graph.edge_index == 0).all()


def test_atoms_outside_cell_give_same_distances_as_wrapped_atoms():
    unwrapped = _unwrapped_bulk()
    wrapped = unwrapped.copy()
    wrapped.wrap()
    lengths = [
        torch.sort(edge_vectors(graph_from_atoms(a, 5.0)).norm(dim=1)).values
        for a in (unwrapped, wrapped)
    ]
    torch.testing.assert_close(lengths[0], lengths[1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", STRUCTURES)
def test_edge_vectors_equal_ase_distance_vectors(name):
    atoms, cutoff = _structures()[name]
    graph = graph_from_atoms(atoms, cutoff)
    i, j, shift, vectors = _ase_edges(atoms, cutoff, "ijSD")
    reference = {
        (a, b, tuple(s)): v
        for a, b, s, v in zip(i.tolist(), j.tolist(), shift.tolist(), vectors, strict=True)
    }
    ours = edge_vectors(graph).numpy()
    keys = zip(
        graph.edge_index[0].tolist(),
        graph.edge_index[1].tolist(),
        map(tuple, graph.edge_shift.round().long().tolist()),
        strict=True,
    )
    expected = np.array([reference[key] for key in keys]).reshape(-1, 3)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10)
    assert (np.linalg.norm(ours, axis=1) < cutoff).all()
    assert (np.linalg.norm(ours, axis=1) > 0).all()


def test_batch_graphs_offsets_indices_and_preserves_edge_vectors():
    first = graph_from_atoms(molecule("CH4"), 3.0)  # 5 atoms, zero cell
    second = graph_from_atoms(_rattled_alloy(), 4.5)  # 32 atoms, periodic
    batch = batch_graphs([first, second])

    assert batch.num_graphs == 2
    assert batch.num_atoms == first.num_atoms + second.num_atoms
    assert batch.num_edges == first.num_edges + second.num_edges
    assert batch.ptr.tolist() == [0, 5, 37]
    assert batch.batch.tolist() == [0] * 5 + [1] * 32
    torch.testing.assert_close(batch.cell, torch.cat([first.cell, second.cell]))
    assert batch.pbc.tolist() == [[False] * 3, [True] * 3]
    assert torch.equal(batch.edge_index[:, : first.num_edges], first.edge_index)
    assert torch.equal(batch.edge_index[:, first.num_edges :], second.edge_index + 5)
    # Edges never cross graphs.
    center, neighbor = batch.edge_index
    assert torch.equal(batch.batch[center], batch.batch[neighbor])
    torch.testing.assert_close(
        edge_vectors(batch),
        torch.cat([edge_vectors(first), edge_vectors(second)]),
        rtol=0,
        atol=1e-12,
    )


def test_batch_graphs_of_batches_continues_ptr_and_batch():
    graphs = [graph_from_atoms(bulk("Cu"), 3.0), graph_from_atoms(bulk("Cu", cubic=True), 3.0)]
    nested = batch_graphs([batch_graphs(graphs), graphs[0]])
    assert nested.ptr.tolist() == [0, 1, 5, 6]
    assert nested.batch.tolist() == [0, 1, 1, 1, 1, 2]
    torch.testing.assert_close(
        edge_vectors(nested),
        torch.cat([edge_vectors(graphs[0]), edge_vectors(graphs[1]), edge_vectors(graphs[0])]),
    )


def test_to_dtype_casts_float_fields_only():
    graph = graph_from_atoms(_rattled_alloy(), 4.5)
    cast = graph.to(dtype=torch.float32)
    assert cast.positions.dtype == cast.cell.dtype == cast.edge_shift.dtype == torch.float32
    assert cast.species.dtype == cast.edge_index.dtype == torch.long
    assert cast.batch.dtype == cast.ptr.dtype == torch.long
    assert cast.pbc.dtype == torch.bool
    assert torch.equal(cast.species, graph.species)
    assert torch.equal(cast.edge_index, graph.edge_index)
    assert torch.equal(cast.edge_shift, graph.edge_shift.float())
    assert graph.positions.dtype == torch.float64  # the original is untouched


def test_graph_dtype_sets_positions_cell_and_shift_dtype():
    graph = graph_from_atoms(bulk("Cu", cubic=True), 3.0, dtype=torch.float32)
    assert graph.dtype == torch.float32
    assert graph.cell.dtype == graph.edge_shift.dtype == torch.float32
    assert graph.species.dtype == graph.edge_index.dtype == torch.long


def test_empty_atoms_give_empty_graph():
    graph = graph_from_atoms(Atoms(), 5.0)
    assert graph.num_atoms == 0
    assert graph.num_edges == 0
    assert graph.num_graphs == 1
    assert graph.positions.shape == (0, 3)
    assert graph.edge_index.shape == (2, 0)
    assert graph.edge_shift.shape == (0, 3)
    assert graph.ptr.tolist() == [0, 0]
    assert edge_vectors(graph).shape == (0, 3)


def test_isolated_atoms_are_kept_without_edges():
    atoms = Atoms("Cu2", positions=[[0.0, 0.0, 0.0], [20.0, 0.0, 0.0]])
    graph = graph_from_atoms(atoms, 5.0)
    assert graph.num_atoms == 2
    assert graph.num_edges == 0
    assert graph.species.tolist() == [29, 29]
    assert graph.batch.tolist() == [0, 0]


def _reverse_of(graph, first, pair):
    """The edge whose filters every edge uses, checked to be itself or its exact reverse."""
    chosen = first[pair]
    center, neighbor = graph.edge_index
    same = chosen == torch.arange(graph.num_edges)
    reverse = (
        (center[chosen] == neighbor)
        & (neighbor[chosen] == center)
        & (graph.edge_shift[chosen] == -graph.edge_shift).all(dim=1)
    )
    assert bool((same | reverse).all())
    return same


@pytest.mark.parametrize("name", ["cu_primitive", "ethanol", "slab", "small_cell"])
def test_edge_pairs_join_every_edge_with_its_reverse(name):
    atoms = {
        "cu_primitive": bulk("Cu"),  # self images with shifts ±S
        "ethanol": molecule("CH3CH2OH"),
        "slab": fcc111("Cu", (2, 2, 3), vacuum=5.0),
        "small_cell": bulk("Cu", "sc", a=1.9),  # shifts up to ±3
    }[name]
    graph = graph_from_atoms(atoms, cutoff=5.0)
    first, pair = edge_pairs(graph)
    assert 2 * first.numel() == graph.num_edges  # one pair per unordered bond
    assert int(torch.bincount(pair).min()) == 2
    assert bool((first[1:] > first[:-1]).all())
    same = _reverse_of(graph, first, pair)
    assert int(same.sum()) == first.numel()  # the first edge of a pair uses its own length


def test_edge_pairs_leave_edges_without_reverse_alone():
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=2)
    graph = graph_from_atoms(atoms, cutoff=4.0)
    keep = torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(1)) < 0.6
    subset = dataclasses.replace(
        graph, edge_index=graph.edge_index[:, keep], edge_shift=graph.edge_shift[keep]
    )
    first, pair = edge_pairs(subset)
    same = _reverse_of(subset, first, pair)
    alone = int((torch.bincount(pair) == 1).sum())
    assert 0 < alone < subset.num_edges and 2 * first.numel() - alone == subset.num_edges
    assert bool(same[first].all())
    empty = graph_from_atoms(Atoms("Cu2", positions=[[0, 0, 0], [9, 0, 0]]), cutoff=3.0)
    assert [t.numel() for t in edge_pairs(empty)] == [0, 0]


@pytest.mark.parametrize("name", STRUCTURES)
def test_tree_search_gives_ases_edges(name):
    # the fallback for shapes vesin cannot take must be right on every cell family too
    atoms, cutoff = _structures()[name]
    positions, _ = wrapped_positions(atoms)
    center, neighbor, shift = neighbors._tree_pairs(positions, atoms.cell[:], atoms.pbc, cutoff)
    i, j, expected_shift = _ase_edges(atoms, cutoff)
    ours = set(zip(center.tolist(), neighbor.tolist(), map(tuple, shift.tolist()), strict=True))
    expected = set(zip(i.tolist(), j.tolist(), map(tuple, expected_shift.tolist()), strict=True))
    assert len(center) == len(i)
    assert ours == expected


@pytest.mark.parametrize("name", STRUCTURES)
def test_ordinary_structures_use_vesin(name, monkeypatch):
    def refuse(*args):
        raise AssertionError("the tree search is only for shapes vesin cannot take")

    monkeypatch.setattr(neighbors, "_tree_pairs", refuse)
    atoms, cutoff = _structures()[name]
    assert graph_from_atoms(atoms, cutoff).num_edges > 0


def test_cell_list_guard_flags_flat_grids_that_would_crash_vesin():
    # 1500 Å x 1500 Å x 1 Å of atoms at cutoff 3 Å: 505 x 505 x 1 cells, shrunk to the cap of
    # 1e5 keeping the ratios, leave the thin axis 0 cells (vesin: SIGFPE)
    positions = np.array([[0.0, 0.0, 0.0], [1500.0, 0.0, 0.0], [0.0, 1500.0, 0.0]])
    no_pbc = np.zeros(3, dtype=bool)
    assert neighbors._cell_list_visits(positions, np.zeros((3, 3)), no_pbc, 3.0) == np.inf
    # at 5 Å the 303 x 303 x 1 grid fits under the cap; the 1.01 Å thick axis searches
    # ceil(5 / 1.01) = 5 cells either side: 3 x 3 x 11 visits per cell
    visits = neighbors._cell_list_visits(positions, np.zeros((3, 3)), no_pbc, 5.0)
    assert visits == 303 * 303 * 99
