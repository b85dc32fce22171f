"""Sparse, wide and extreme structures: the neighbor search neither crashes nor crawls.

vesin's cell list sizes its grid from the bounding box; for a few atoms spread over thousands of
Å (or a periodic cell thousands of Å wide and a few Å thick) the grid it shrinks to its cell cap
gets an empty axis and the process dies with SIGFPE, and with mixed periodicity or a huge cutoff
it visits ~1e9 cells. Every case runs in a child process (a SIGFPE would kill the test run) and
its edges are compared with ASE's ``primitive_neighbor_list``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Seconds one graph may take; the structures are tiny (at most 100 atoms).
FAST = 2.0

CHILD = """
import json, time
import numpy as np
from ase import Atoms
from ase.neighborlist import primitive_neighbor_list
from ase_gnn.graph.atomic_graph import edge_vectors
from ase_gnn.graph.neighbors import graph_from_atoms

rng = np.random.default_rng(0)

def with_partners(positions, axes=3):
    # every atom gets a partner 1.5-3 Å away (along the first `axes` axes), so there are edges
    offset = rng.normal(size=positions.shape)
    offset[:, axes:] = 0.0
    offset *= rng.uniform(1.5, 3.0, (len(positions), 1)) / np.linalg.norm(offset, axis=1)[:, None]
    return np.concatenate([positions, positions + offset])

def rows(i, j, vectors):
    table = np.column_stack([i, j, np.round(np.asarray(vectors).reshape(-1, 3), 6)])
    return table[np.lexsort(table.T[::-1])]

def check(name, atoms, cutoff):
    print(json.dumps({"start": name}), flush=True)
    start = time.perf_counter()
    graph = graph_from_atoms(atoms, cutoff)
    seconds = time.perf_counter() - start
    ours = rows(*graph.edge_index.numpy(), edge_vectors(graph).numpy())
    reference = rows(*primitive_neighbor_list(
        "ijD", atoms.pbc, atoms.cell[:], atoms.positions, cutoff, self_interaction=False
    ))
    same = ours.shape == reference.shape and np.allclose(ours, reference, rtol=0, atol=2e-6)
    print(json.dumps({"name": name, "edges": len(ours), "reference": len(reference),
                      "same": bool(same), "seconds": seconds}), flush=True)
"""

SPARSE_STRUCTURES = {
    # the example: three atoms 1500 Å apart, no cell (SIGFPE at any cutoff below 5 Å)
    "three_atoms_1500_A_apart": """
        atoms = Atoms("Cu3", positions=[[0, 0, 0], [1500, 0, 0], [0, 1500, 0]])
        cutoff = 3.0
    """,
    "gas_3000x3000x10_A": """
        gas = rng.random((50, 3)) * [3000, 3000, 10]
        atoms = Atoms("Ar100", positions=with_partners(gas, axes=2))
        cutoff = 4.0
    """,
    "flat_sheet_2000x2000_A": """
        sheet = np.zeros((50, 3))
        sheet[:, :2] = rng.random((50, 2)) * 2000
        atoms = Atoms("Cu100", positions=with_partners(sheet))
        cutoff = 5.0
    """,
    "periodic_cell_2000x2000x3_A": """
        cell = np.diag([2000.0, 2000.0, 3.0])
        atoms = Atoms("Cu100", positions=with_partners(rng.random((50, 3)) @ cell), cell=cell,
                      pbc=True)
        cutoff = 5.0
    """,
    "thin_slab_two_periodic_axes": """
        cell = np.diag([2000.0, 2000.0, 3.0])
        atoms = Atoms("Cu100", positions=with_partners(rng.random((50, 3)) @ cell), cell=cell,
                      pbc=(True, True, False))
        cutoff = 5.0
    """,
    # the near-hang: 50 atoms over 500 x 500 Å, one periodic axis
    "one_periodic_axis_500x500_A": """
        cell = np.diag([500.0, 500.0, 3.0])
        atoms = Atoms("Ar50", positions=rng.random((50, 3)) @ cell, cell=cell,
                      pbc=(False, False, True))
        cutoff = 5.0
    """,
    "wire_cell_atoms_over_500x500_A": """
        positions = with_partners(rng.random((25, 3)) * [3.0, 500.0, 500.0])
        atoms = Atoms("Ar50", positions=positions, cell=[3.0, 0.0, 0.0],
                      pbc=(True, False, False))
        cutoff = 5.0
    """,
    # a cutoff of 1e4 Å on a small molecule: every pair is an edge
    "cutoff_1e4_A": """
        atoms = Atoms("C10", positions=rng.random((10, 3)) * 10)
        cutoff = 1.0e4
    """,
}


def _run(code: str) -> dict[str, dict]:
    """Run ``code`` after :data:`CHILD` in a fresh interpreter; the reports of its checks."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", CHILD + textwrap.dedent(code)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the neighbor searches did not finish within 120 s")
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    if result.returncode != 0:
        running = reports[-1].get("start") if reports else None
        pytest.fail(f"child died with {result.returncode} on {running}: {result.stderr[-2000:]}")
    return {report["name"]: report for report in reports if "name" in report}


def test_sparse_wide_structures_give_ases_edges_quickly_without_crashing():
    code = "".join(
        f"{textwrap.dedent(build)}check({name!r}, atoms, cutoff)\n"
        for name, build in SPARSE_STRUCTURES.items()
    )
    reports = _run(code)
    assert list(reports) == list(SPARSE_STRUCTURES)
    for name, report in reports.items():
        assert report["edges"] == report["reference"], name
        assert report["same"], f"{name}: edges differ from ASE's primitive_neighbor_list"
        assert report["seconds"] < FAST, f"{name}: graph took {report['seconds']:.1f} s"
    assert reports["cutoff_1e4_A"]["edges"] == 10 * 9  # every ordered pair
    assert reports["gas_3000x3000x10_A"]["edges"] > 0


def test_random_boxes_from_3_to_1e4_A_give_ases_edges_without_crashing():
    # flat, thin and wide boxes, any periodicity, cutoffs 0.5-8 Å: the guard must send every
    # shape vesin cannot take to the tree search, and both must agree with ASE
    reports = _run(
        """
        for k in range(36):
            lengths = 10 ** rng.uniform(0.5, 4, 3)
            positions = rng.random((int(rng.integers(2, 15)), 3)) * lengths
            if k % 3 == 0:
                positions[:, k % 2] = 0.0  # all atoms in one plane
            positions = with_partners(positions)
            cell = np.diag(lengths) + np.triu(rng.normal(0, 0.2, (3, 3)), 1) * lengths[:, None]
            atoms = Atoms(f"Cu{len(positions)}", positions=positions, cell=cell,
                          pbc=rng.random(3) < 0.5)
            check(f"box {k}", atoms, float(10 ** rng.uniform(-0.3, 0.9)))
        """
    )
    assert len(reports) == 36
    assert all(report["same"] for report in reports.values())
    assert sum(report["edges"] for report in reports.values()) > 200


def test_diagnose_of_a_sparse_structure_does_not_crash(tmp_path):
    # `ase-gnn diagnose` died with SIGFPE on the same structures
    path = tmp_path / "sparse.xyz"
    code = f"""
        from ase import Atoms
        from ase.io import write
        from ase_gnn.cli.main import main
        write({str(path)!r}, Atoms("Cu3", positions=[[0, 0, 0], [1500, 0, 0], [0, 1500, 0]]))
        main(["diagnose", {str(path)!r}, "--cutoff", "3.0"])
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, f"child died with {result.returncode}: {result.stderr[-2000:]}"
    assert "3 atoms have no neighbor within 3 Å" in result.stdout
