"""The electrostatic part of a long-range model, pair by pair and atom by atom.

A model built with ``long_range`` (:mod:`ase_gnn.models.long_range`) adds the Coulomb energy of
learned Gaussian charges. Unlike the message-passing energy, that energy has an exact pair
decomposition that reaches beyond the cutoff graph:

    E_el = Σ_{i<j, images} k_e q_i q_j erf(r_ij / 2σ) / r_ij      (a molecule: every pair),

so the bands of :meth:`CoulombPairs.by_distance` are a ground truth for where the electrostatic
energy sits: gate-based attributions (:class:`explain.Energy` with ``part="electrostatic"``)
say which bonds *made* the charges, the pairs say which ions *interact*, out to any distance.
For a periodic cell the real-space sum converges only conditionally (sphere by sphere it can
oscillate, as the Madelung sum of rock salt does): pairs are counted out to ``r_max`` and what
is left of the model's E_el is reported as :attr:`CoulombPairs.remainder`, not hidden.

:func:`plot_charges` draws the predicted charges as a per-atom 3-D map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import vesin
from ase import Atoms
from scipy.special import erf

from ase_gnn import COULOMB_CONSTANT, EnergyModel, graph_from_atoms
from explain.visualize import _cell_edges, _figure, _finish, _norm

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["CoulombPairs", "coulomb_pairs", "plot_charges", "predicted_charges"]


def predicted_charges(model: EnergyModel, atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Charges ``[N]`` (e) and electrostatic energies ``[N]`` (eV) of a long-range model.

    Raises
    ------
    ValueError
        For a model without a long-range term.
    """
    if model.electrostatics is None:
        raise ValueError(
            "charges need a model with a long-range term (e.g. SchNet(..., long_range=True))"
        )
    graph = graph_from_atoms(atoms, model.cutoff, dtype=model.dtype, device=model.device)
    _, electrostatic, charges = model.energy_parts(graph)
    assert electrostatic is not None and charges is not None
    return (
        charges.detach().cpu().double().numpy(),
        electrostatic.detach().cpu().double().numpy(),
    )


@dataclass(frozen=True)
class CoulombPairs:
    """Pair energies of the electrostatic part (see the module docstring).

    Attributes
    ----------
    atoms
        The structure.
    charges
        ``[N]`` predicted charges, e.
    pairs
        ``[P, 2]`` atom indices i ≤ j of each pair (i = j: an atom and its own image).
    distances
        ``[P]`` distances, Å.
    energies
        ``[P]`` pair energies k_e q_i q_j erf(r / 2σ) / r, eV (halved for an atom's own images,
        which appear once per image pair).
    total
        The model's electrostatic energy E_el, eV.
    r_max
        Largest distance counted, Å (infinite for a molecule).
    """

    atoms: Atoms
    charges: np.ndarray
    pairs: np.ndarray
    distances: np.ndarray
    energies: np.ndarray
    total: float
    r_max: float

    @property
    def remainder(self) -> float:
        """E_el − Σ pair energies, eV: 0 for a molecule (to rounding), the part beyond ``r_max``
        (and a slab's Yeh–Berkowitz term) for a periodic structure."""
        return self.total - float(self.energies.sum())

    def by_distance(self, bands: np.ndarray | list[float] | None = None) -> dict[str, float]:
        """Sum of pair energies in distance bands, ``{"0-2 Å": …}``, as
        :meth:`explain.Attribution.by_distance` (default bands 0, 2, 3, … up to ``r_max``)."""
        if bands is None:
            longest = float(np.ceil(self.distances.max())) if len(self.distances) else 3.0
            bands = [0.0, 2.0, *np.arange(3.0, max(3.0, longest) + 1)]
        edges = np.asarray(bands, dtype=float)
        index = np.digitize(self.distances, edges) - 1
        return {
            f"{edges[k]:g}-{edges[k + 1]:g} Å": float(self.energies[index == k].sum())
            for k in range(len(edges) - 1)
        }


def coulomb_pairs(model: EnergyModel, atoms: Atoms, r_max: float = 30.0) -> CoulombPairs:
    """Pair decomposition of a long-range model's electrostatic energy.

    Parameters
    ----------
    model
        A model with a long-range term.
    atoms
        A molecule (every pair, whatever ``r_max``) or a periodic structure (pairs and images up
        to ``r_max``).
    r_max
        Cutoff of the pair sum of periodic structures, Å.

    Returns
    -------
    CoulombPairs
    """
    if model.electrostatics is None:
        raise ValueError(
            "Coulomb pairs need a model with a long-range term (e.g. SchNet(..., long_range=True))"
        )
    if r_max <= 0:
        raise ValueError(f"r_max must be positive, got {r_max}")
    charges, electrostatic = predicted_charges(model, atoms)
    width = model.electrostatics.width
    positions = atoms.positions
    if atoms.pbc.any():
        first, second, shift = vesin.ase_neighbor_list("ijS", atoms, r_max)
        keep = first <= second  # each pair once; i == j keeps both images, hence the ½ below
        first, second, shift = first[keep], second[keep], shift[keep]
        vectors = positions[second] + shift @ atoms.cell[:] - positions[first]
        weight = np.where(first == second, 0.5, 1.0)
        limit = r_max
    else:
        first, second = np.triu_indices(len(atoms), 1)
        vectors = positions[second] - positions[first]
        weight = np.ones(len(first))
        limit = float("inf")
    distances = np.linalg.norm(vectors, axis=1)
    kernel = erf(distances / (2 * width)) / distances if width > 0 else 1 / distances
    energies = COULOMB_CONSTANT * weight * charges[first] * charges[second] * kernel
    return CoulombPairs(
        atoms=atoms.copy(),
        charges=charges,
        pairs=np.stack([first, second], axis=1),
        distances=distances,
        energies=energies,
        total=float(electrostatic.sum()),
        r_max=limit,
    )


def plot_charges(
    atoms: Atoms,
    charges: np.ndarray,
    path: str | Path | None = None,
    ax: Axes | None = None,
    cmap: str = "bwr",
    atom_size: float = 120.0,
    **kwargs: Any,
) -> Figure:
    """Atoms coloured by their charges (a 3-D map, symmetric colour scale around 0).

    Parameters
    ----------
    atoms
        The structure.
    charges
        ``[N]`` charges, e (:func:`predicted_charges`).
    path
        Image file to write, or None.
    ax
        3-D axes to draw into, or None for a new figure.
    cmap
        Diverging colour map (blue negative, red positive).
    atom_size
        Marker area, points².
    **kwargs
        Passed to ``Axes3D.scatter``.
    """
    charges = np.asarray(charges, dtype=float)
    if charges.shape != (len(atoms),):
        raise ValueError(f"charges must have shape [{len(atoms)}], got {charges.shape}")
    figure, ax = _figure(ax, "3d")
    if atoms.pbc.any() and atoms.cell.rank == 3:
        for edge in _cell_edges(atoms.cell.array):
            ax.plot(*edge.T, color="0.5", lw=0.8)
    points = ax.scatter(  # type: ignore[misc]  # mypy reads the star-args as c= and s=
        *atoms.positions.T,
        c=charges,
        cmap=cmap,
        norm=_norm(charges),
        s=atom_size,
        edgecolors="k",
        linewidths=0.5,
        depthshade=False,
        **kwargs,
    )
    figure.colorbar(points, ax=ax, shrink=0.7, label="charge (e)")
    ax.set_xlabel("x / Å")
    ax.set_ylabel("y / Å")
    ax.set_zlabel("z / Å")  # type: ignore[attr-defined]  # Axes3D
    ax.set_title(f"predicted charges, total {charges.sum():+.3f} e")
    return _finish(figure, None if path is None else Path(path))
