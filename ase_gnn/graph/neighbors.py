"""Radius graphs from ``ase.Atoms``: the single place neighbor lists are built.

Neighbor pairs come from `vesin <https://github.com/Luthaf/vesin>`_ (no neighbor cap, full list,
full or mixed periodic boundaries, triclinic cells, cells smaller than the cutoff with multiple and
self images, atoms outside the cell). Input is validated in Python before any C code runs, because
neighbor-list libraries answer bad input with silent garbage or a crash (ASE returns pairs at
distance 0 for a zero periodic cell; vesin dies with SIGFPE on coordinates near 1e6 Å).

vesin's cell list also breaks on valid but sparse structures. It divides the bounding box (the
atoms' extent on non-periodic axes) into cells of about the cutoff, at most
:data:`VESIN_MAX_CELLS` of them; shrinking a very flat grid to that cap gives an axis zero cells
and the process dies with SIGFPE (three atoms 1500 Å apart, a 2000 × 2000 × 3 Å periodic cell).
With mixed periodicity it visits every cell of the non-periodic axes from every cell (seconds for
50 atoms over 500 × 500 Å), and a cutoff far beyond the structure makes it visit ~1e10 empty
cells. :func:`neighbor_pairs` predicts vesin's grid before calling it and, where the grid would
be degenerate or costly, searches with ``scipy.spatial.cKDTree`` over the periodic images instead
(same pairs; it cannot crash and needs no grid).

Conventions
-----------
* The graph's positions are :func:`wrapped_positions`: ``atoms.positions`` wrapped into the cell
  along periodic axes and centred along the others, computed in float64 before the cast to the
  model's dtype, and the cell shifts refer to them. Edge vectors are then exact in float32 far
  from the origin too (a cast of |r| = 1e4 Å keeps only ~5e-4 Å); they differ from
  ``atoms.positions`` by a lattice vector per atom and one common translation, which change no
  energy, force or stress.
* Empty ``Atoms`` give a graph with N = 0 and E = 0 (energy 0, forces of shape (0, 3)).
* An atom with no neighbor inside the cutoff is kept, with no edges; models give it its reference
  energy E0 and zero force.
"""

from __future__ import annotations

import math

import ase
import numpy as np
import torch
import vesin
from scipy.spatial import cKDTree

from ase_gnn.graph.atomic_graph import AtomicGraph

#: Largest |coordinate| accepted, in Å. vesin 0.6 crashes (SIGFPE) near 1e6 Å; real systems
#: stay far below.
MAX_COORDINATE = 1.0e5
#: Largest number of periodic images searched per atom before a cell is called too narrow.
MAX_IMAGES = 200_000
#: Smallest cutoff accepted, in Å: far below any bond, well above vesin's own limit (1e-6 Å,
#: which it reports as a RuntimeError from C).
MIN_CUTOFF = 1.0e-3
#: Most cells vesin's CPU cell list uses (``MAX_NUMBER_OF_CELLS`` in vesin's cpu_cell_list.cpp,
#: vesin 0.5 to 0.6, checked on 0.6.2); above it the grid is shrunk and an axis may get no cell.
VESIN_MAX_CELLS = 1.0e5
#: Fractional coordinates within this of a cell face count as on it (not wrapped), so that a
#: rounding error does not move an atom sitting on the face to the opposite one.
WRAP_TOLERANCE = 1.0e-8
#: Most cell-to-cell visits vesin may make (each costs a few ns even for empty cells) before
#: the tree search is used instead.
MAX_CELL_VISITS = 1.0e7


def validate_structure(atoms: ase.Atoms, cutoff: float) -> None:
    """Raise ``ValueError`` naming the problem if ``atoms`` cannot be turned into a graph.

    Checks: the cutoff is finite and at least :data:`MIN_CUTOFF`; positions and cell are finite;
    coordinates are not absurdly large; every periodic axis has a non-zero lattice vector and the
    periodic vectors are linearly independent; a periodic cell is not so narrow that the image
    search would explode.

    Parameters
    ----------
    atoms
        The structure.
    cutoff
        Neighbor cutoff radius in Å.
    """
    if not (math.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be a positive finite number of Å, got {cutoff!r}")
    if cutoff < MIN_CUTOFF:
        raise ValueError(
            f"cutoff {cutoff!r} Å is below the smallest supported cutoff {MIN_CUTOFF} Å "
            "(no two atoms are that close; is the cutoff in the wrong unit?)"
        )
    positions = np.asarray(atoms.positions, dtype=np.float64)
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    bad = np.flatnonzero(~np.isfinite(positions).all(axis=1))
    if bad.size:
        raise ValueError(
            f"atoms {bad[:10].tolist()} have non-finite (NaN or inf) positions; "
            "a simulation has probably blown up"
        )
    if not np.isfinite(cell).all():
        raise ValueError(f"the cell contains NaN or inf values: {cell.tolist()}")
    if positions.size and np.abs(positions).max() > MAX_COORDINATE:
        raise ValueError(
            f"coordinates up to {np.abs(positions).max():.3g} Å exceed the supported "
            f"{MAX_COORDINATE:.0e} Å (the neighbor list would overflow); wrap the atoms into the "
            "cell or check for an exploded simulation"
        )
    if pbc.any() and np.abs(cell[pbc]).max() > MAX_COORDINATE:
        raise ValueError(
            f"periodic cell vectors up to {np.abs(cell[pbc]).max():.3g} Å exceed the supported "
            f"{MAX_COORDINATE:.0e} Å (the neighbor list would overflow)"
        )
    _validate_periodic_cell(cell, pbc, cutoff)


def _validate_periodic_cell(cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> None:
    axes = "abc"
    lengths = np.linalg.norm(cell, axis=1)
    for axis in np.flatnonzero(pbc):
        if lengths[axis] < 1e-6:
            raise ValueError(
                f"cell vector {axes[axis]} is zero but axis {axes[axis]} is periodic "
                f"(pbc={pbc.tolist()}); set a real cell or make that axis non-periodic"
            )
    periodic = cell[pbc]
    if len(periodic) > 1:
        unit = periodic / lengths[pbc][:, None]
        singular = np.linalg.svd(unit, compute_uv=False)
        if singular[-1] < 1e-6:
            raise ValueError(
                f"the periodic cell vectors {periodic.tolist()} are linearly dependent "
                "(degenerate cell)"
            )
    if pbc.any():
        widths = perpendicular_widths(cell, pbc)[pbc]
        images = np.prod(2 * np.ceil(cutoff / widths) + 1)
        if images > MAX_IMAGES:
            raise ValueError(
                f"the cell is too narrow for cutoff {cutoff} Å (perpendicular widths "
                f"{np.round(widths, 4).tolist()} Å of the periodic axes would need {images:.3g} "
                "periodic images per atom)"
            )


def perpendicular_widths(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """Perpendicular widths of a cell: the distance between opposite faces, per axis.

    An atom sees its own periodic image along a periodic axis whose width is below the cutoff.

    Parameters
    ----------
    cell
        ``[3, 3]`` lattice vectors (rows) in Å; their periodic rows must be independent.
    pbc
        ``[3]`` periodic flags.

    Returns
    -------
    numpy.ndarray
        ``[3]`` widths in Å (volume / area of the opposite face); ``inf`` for non-periodic axes.
    """
    pbc = np.asarray(pbc, dtype=bool)
    widths = np.full(3, np.inf)
    if pbc.any():
        full = _completed_cell(cell, pbc)
        volume = abs(np.linalg.det(full))
        areas = np.linalg.norm(np.cross(full[[1, 2, 0]], full[[2, 0, 1]]), axis=1)
        widths[pbc] = (volume / areas)[pbc]
    return widths


def _completed_cell(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """``[3, 3]`` cell whose non-periodic rows are unit vectors spanning the rest of space.

    Fractional coordinates along the periodic axes are then well defined whatever the
    non-periodic rows hold (zeros, vacuum, anything); for ``pbc`` all false it is the identity.
    """
    full = np.array(cell, dtype=np.float64)
    if not pbc.all():
        q, _ = np.linalg.qr(full[pbc].T, mode="complete")
        full[~pbc] = q[:, pbc.sum() :].T
    return full


def wrapped_positions(atoms: ase.Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Positions as :func:`graph_from_atoms` stores them: wrapped into the cell and centred.

    Along periodic axes every atom is moved by whole lattice vectors into the cell (fractional
    coordinates in [0, 1)); along non-periodic directions all atoms are moved together so that
    their bounding box is centred on 0. All in float64, so that the model's dtype then holds
    coordinates no larger than the cell or the structure, whatever ``atoms.positions`` are.

    Parameters
    ----------
    atoms
        The structure; positions in Å. Its periodic cell vectors must be independent (as
        :func:`validate_structure` checks).

    Returns
    -------
    positions : numpy.ndarray
        ``[N, 3]`` float64 Å: ``atoms.positions − offsets·cell − origin`` for one ``origin``
        (which lies in the non-periodic directions).
    offsets : numpy.ndarray
        ``[N, 3]`` int64 lattice offsets of every atom (zero on non-periodic axes). An edge
        (i, j, S) of the graph is (i, j, S − offsets[j] + offsets[i]) in ``atoms.positions``.
    """
    positions = np.array(atoms.positions, dtype=np.float64)
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    offsets = np.zeros(positions.shape, dtype=np.int64)
    if len(positions) == 0:
        return positions, offsets
    full = _completed_cell(cell, pbc)
    if pbc.any():
        fractional = positions @ np.linalg.inv(full)
        offsets[:, pbc] = np.floor(fractional[:, pbc] + WRAP_TOLERANCE)
        positions -= offsets @ cell
    if not pbc.all():
        centre = 0.5 * (positions.min(axis=0) + positions.max(axis=0))
        basis = full[~pbc]  # orthonormal rows spanning the non-periodic directions
        positions -= (basis @ centre) @ basis
    return positions, offsets


def neighbor_pairs(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs (i, j, S) with 0 < |r_j + S·cell − r_i| < ``cutoff`` (vesin or a tree).

    vesin's cell list is used unless its grid would be degenerate or costly for this structure
    (see the module docstring and :func:`_cell_list_visits`); then a k-d tree search over the
    periodic images gives the same pairs.

    Parameters
    ----------
    positions
        ``[N, 3]`` float64 positions in Å, N ≥ 1.
    cell
        ``[3, 3]`` lattice vectors (rows) in Å.
    pbc
        ``[3]`` bool periodic flags.
    cutoff
        Cutoff radius in Å; the structure must have passed :func:`validate_structure`.

    Returns
    -------
    center, neighbor : numpy.ndarray
        ``[E]`` int64 atom indices i and j.
    shift : numpy.ndarray
        ``[E, 3]`` int64 cell offsets S (zero on non-periodic axes).
    """
    if _cell_list_visits(positions, cell, pbc, cutoff) <= MAX_CELL_VISITS:
        calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
        center, neighbor, shift = calculator.compute(
            positions, cell, pbc.tolist(), quantities="ijS", copy=True
        )
        return center.astype(np.int64), neighbor.astype(np.int64), shift.astype(np.int64)
    return _tree_pairs(positions, cell, pbc, cutoff)


def _cell_list_visits(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> float:
    """Cell-to-cell visits vesin's CPU cell list would make; ``inf`` where it would crash.

    Mirrors the grid of vesin's ``CellList`` (vesin 0.5 to 0.6): about one cell per cutoff along
    every axis of the bounding box (periodic axes: the cell widths; non-periodic ones: 1.01 × the
    atoms' Cartesian extent, at least 1 Å), shrunk to at most :data:`VESIN_MAX_CELLS` cells
    keeping the axis ratios, which truncates a thin axis of a flat grid to zero cells (vesin then
    divides by zero: SIGFPE). Each cell visits ``2 n + 1`` cells per axis, ``n`` covering the
    cutoff; with mixed periodicity ``n`` spans the whole grid on non-periodic axes.
    """
    extent = positions.max(axis=0) - positions.min(axis=0)
    extent = np.where(extent < 1e-6, 1.0, extent)
    widths = np.where(pbc, perpendicular_widths(cell, pbc), np.maximum(1.01 * extent, 1.0))
    cells = np.maximum(np.trunc(widths / cutoff), 1.0)
    if np.prod(cells) > VESIN_MAX_CELLS:
        ratio_xy, ratio_yz = cells[0] / cells[1], cells[1] / cells[2]
        z = np.trunc(np.cbrt(VESIN_MAX_CELLS / (ratio_xy * ratio_yz * ratio_yz)))
        y = np.trunc(ratio_yz * z)
        cells = np.array([np.trunc(ratio_xy * y), y, z])
        if (cells < 1).any():
            return math.inf
    search = np.maximum(np.ceil(cutoff * cells / widths), 1.0)
    if pbc.any() and not pbc.all():
        search = np.where(pbc, search, np.maximum(search, cells - 1))
    return float(np.prod(cells) * np.prod(2 * search + 1))


def _tree_pairs(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`neighbor_pairs` by a k-d tree query of the atoms against their periodic images.

    Atoms are first wrapped into the cell along periodic axes; two atoms of the cell are then
    less than the cutoff apart only through images ``|S_a| ≤ floor(cutoff / width_a) + 1``.
    """
    full = _completed_cell(cell, pbc)
    offsets = np.where(pbc, np.floor(positions @ np.linalg.inv(full)), 0.0)  # [N, 3]
    wrapped = positions - offsets @ cell
    reach = np.where(pbc, np.floor(cutoff / perpendicular_widths(cell, pbc)) + 1, 0).astype(int)
    shifts = np.stack(
        np.meshgrid(*[np.arange(-m, m + 1) for m in reach], indexing="ij"), axis=-1
    ).reshape(-1, 3)  # [M, 3]
    num_atoms = len(positions)
    tree = cKDTree(wrapped)
    chunk = max(1, 2**20 // num_atoms)  # images per query: about a million points
    found = []
    for start in range(0, len(shifts), chunk):
        block = shifts[start : start + chunk]
        images = (wrapped[None] + (block @ cell)[:, None]).reshape(-1, 3)
        pairs = tree.sparse_distance_matrix(cKDTree(images), cutoff, output_type="ndarray")
        image = pairs["j"]
        found.append(np.column_stack([pairs["i"], image % num_atoms, block[image // num_atoms]]))
    center, neighbor, shift_w = np.split(np.concatenate(found).astype(np.int64), [1, 2], axis=1)
    center, neighbor = center[:, 0], neighbor[:, 0]
    vectors = wrapped[neighbor] + shift_w @ cell - wrapped[center]
    keep = (np.linalg.norm(vectors, axis=1) < cutoff) & (
        (center != neighbor) | (shift_w != 0).any(axis=1)
    )
    # r_j + S·cell − r_i with r = wrapped + offsets·cell: S = S_wrapped − offset_j + offset_i
    offsets = offsets.astype(np.int64)
    shift = shift_w - offsets[neighbor] + offsets[center]
    return center[keep], neighbor[keep], shift[keep]


def graph_from_atoms(
    atoms: ase.Atoms,
    cutoff: float,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> AtomicGraph:
    """Build the radius graph of one structure.

    Every ordered pair (i, j, S) with 0 < |r_j + S·cell − r_i| < ``cutoff`` becomes an edge (both
    directions are present; an atom's own periodic images are neighbors when the cell is small).
    The graph holds r = :func:`wrapped_positions` (periodic atoms wrapped into the cell, the rest
    centred) and its shifts S refer to them.

    Parameters
    ----------
    atoms
        The structure; positions in Å, any cell shape, ``pbc`` per axis.
    cutoff
        Cutoff radius in Å.
    dtype
        Float dtype of positions, cell and shifts. The neighbor search, the wrapping and
        centring of the positions (see :func:`wrapped_positions`) run in float64.
    device
        Device of the returned tensors.

    Returns
    -------
    AtomicGraph
        A batch holding this one structure (B = 1).

    Raises
    ------
    ValueError
        For non-finite or huge coordinates, a zero or degenerate periodic cell vector, a cell
        too narrow for the cutoff (see :func:`validate_structure`), or a total charge
        (``atoms.info["charge"]``) that is not a finite number.
    """
    validate_structure(atoms, cutoff)
    positions, _ = wrapped_positions(atoms)
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if len(atoms) > 0:
        center, neighbor, shift = neighbor_pairs(positions, cell, pbc, cutoff)
        # edges grouped by centre atom: message passing then sums them in cache-sized chunks
        order = np.argsort(center, kind="stable")
        center, neighbor, shift = center[order], neighbor[order], shift[order]
    else:
        center = neighbor = np.zeros(0, dtype=np.int64)
        shift = np.zeros((0, 3), dtype=np.int64)
    num_atoms = len(atoms)
    return AtomicGraph(
        species=torch.as_tensor(atoms.numbers, dtype=torch.long, device=device),
        positions=torch.as_tensor(positions, dtype=dtype, device=device),
        cell=torch.as_tensor(cell, dtype=dtype, device=device).unsqueeze(0),
        pbc=torch.as_tensor(pbc, device=device).unsqueeze(0),
        edge_index=torch.as_tensor(np.stack([center, neighbor]).astype(np.int64), device=device),
        edge_shift=torch.as_tensor(shift, dtype=dtype, device=device),
        batch=torch.zeros(num_atoms, dtype=torch.long, device=device),
        ptr=torch.tensor([0, num_atoms], dtype=torch.long, device=device),
        charge=torch.tensor([structure_charge(atoms)], dtype=dtype, device=device),
    )


def structure_charge(atoms: ase.Atoms) -> float:
    """The total charge of a structure, e: ``atoms.info["charge"]`` (ASE's key), default 0.

    Raises
    ------
    ValueError
        If it is not a finite number.
    """
    value = atoms.info.get("charge", 0.0)
    try:
        charge = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'atoms.info["charge"] must be a number of e, got {value!r}') from None
    if not math.isfinite(charge):
        raise ValueError(f'atoms.info["charge"] must be finite, got {charge}')
    return charge
