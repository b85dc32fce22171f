"""The many-body expansion of a potential's energy: how much of it is two-body, three-body, more.

A potential gives the energy E(S) of any set S of atoms on their own (every other atom
infinitely far away). The expansion

    Δ1(i) = E({i}),  Δ2(i, j) = E({i, j}) − Δ1(i) − Δ1(j),
    Δ3(i, j, k) = E({i, j, k}) − Δ2(i, j) − Δ2(i, k) − Δ2(j, k) − Δ1(i) − Δ1(j) − Δ1(k)

is exact bookkeeping: E = Σ Δ1 + Σ Δ2 + Σ Δ3 + R, where R holds every term of four and more
bodies. For a pair potential Δ3 = R = 0; for Stillinger–Weber silicon Δ2 is its pair term, Δ3
its three-body term and R = 0 (the checks in ``tests/explain/test_many_body.py``).

Clusters in a periodic cell
    A cluster is a set of atoms *with their image shifts*, e.g. atom 3 and the image of atom 5
    one cell up. The energy per cell sums every cluster once modulo lattice translations, so a
    pair (i, j, S) is the same cluster as (j, i, −S), and a small cell has pairs of an atom with
    its own image. Cluster identities are made canonical (the lexicographically smallest of the
    cluster's translated and sorted member lists), which makes the decomposition independent of
    how atoms are numbered, wrapped, translated or rotated.

Which clusters are evaluated
    With a cutoff r_c, a cluster that the cutoff graph does not connect is two independent
    parts whose energies add, so its Δ is 0: only pairs closer than r_c and connected triplets
    (two legs shorter than r_c from a common centre) are evaluated. For an ase-gnn model this is
    exact (messages pass only along edges); for an ASE calculator ``cutoff`` must be at least
    its interaction range.

For an ase-gnn model, E(S) is the model's energy of the cluster's own graph, which is what the
atom gates of :mod:`explain` compute with the atoms of S on and the rest off; so Δ1(i) is the
isolated-atom energy E0 of its species and E − Σ Δ1 is the energy the attribution methods
explain. Clusters are evaluated as large batches of tiny graphs.

Triplet geometry: the centre of a triplet is the atom within r_c of both others (for a
triangle, the atom with the largest angle), and ``triplet_angle`` is the angle there.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import BaseCalculator
from scipy.sparse import csr_array
from tqdm.auto import tqdm

from ase_gnn import AtomicGraph, EnergyModel, graph_from_atoms, load_model, wrapped_positions
from explain.result import Attribution, bond_ids

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: energies ``[T]`` (eV) of T clusters of k atoms: numbers ``[T, k]``, positions ``[T, k, 3]`` Å
ClusterEnergies = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ManyBody:
    """The many-body expansion of one structure's energy (see the module docstring).

    Attributes
    ----------
    atoms
        The structure (a copy without calculator).
    cutoff
        The cutoff r_c, Å, that decides which clusters were evaluated.
    order
        Highest order evaluated (1, 2 or 3); higher orders are in :attr:`remainder`.
    energy
        E, the potential's energy of the whole structure, eV.
    one_body
        ``[N]`` Δ1(i) = E({i}), eV.
    pair_index
        ``[P, 2]`` atoms i, j of every pair.
    pair_shift
        ``[P, 3]`` integer cell offsets: atom j sits at ``r_j + shift · cell``.
    pair_distance
        ``[P]`` distance, Å.
    pair_energy
        ``[P]`` Δ2, eV.
    triplet_index
        ``[T, 3]`` centre i, then j and k.
    triplet_shift
        ``[T, 2, 3]`` integer cell offsets of j and k relative to the centre's cell.
    triplet_distance
        ``[T, 3]`` r_ij, r_ik and r_jk, Å.
    triplet_angle
        ``[T]`` angle θ_jik at the centre, degrees.
    triplet_energy
        ``[T]`` Δ3, eV.
    """

    atoms: Atoms
    cutoff: float
    order: int
    energy: float
    one_body: np.ndarray
    pair_index: np.ndarray
    pair_shift: np.ndarray
    pair_distance: np.ndarray
    pair_energy: np.ndarray
    triplet_index: np.ndarray
    triplet_shift: np.ndarray
    triplet_distance: np.ndarray
    triplet_angle: np.ndarray
    triplet_energy: np.ndarray

    @property
    def sums(self) -> dict[int, float]:
        """Σ Δn per order n ≤ :attr:`order`, eV."""
        parts = {1: self.one_body, 2: self.pair_energy, 3: self.triplet_energy}
        return {n: float(parts[n].sum()) for n in range(1, self.order + 1)}

    @property
    def remainder(self) -> float:
        """R = E − Σ_n Σ Δn, eV: the terms of order above :attr:`order`."""
        return self.energy - sum(self.sums.values())

    @property
    def interaction_energy(self) -> float:
        """E − Σ Δ1, eV (for a model: E − Σ E0, what the attribution methods explain)."""
        return self.energy - float(self.one_body.sum())

    def profile(self) -> dict[str, float]:
        """The body-order profile: fractions of :attr:`interaction_energy` per order.

        Returns
        -------
        dict
            ``{"2-body": ΣΔ2 / (E − ΣΔ1), "3-body": ..., "remainder": R / (E − ΣΔ1)}`` (orders
            up to :attr:`order`); the values add up to 1.
        """
        total = self.interaction_energy
        fractions = {f"{n}-body": value / total for n, value in self.sums.items() if n > 1}
        fractions["remainder"] = self.remainder / total
        return fractions

    def bands(self, order: int, by: str, edges: Sequence[float] | np.ndarray) -> np.ndarray:
        """Σ Δn per band of distance or angle.

        Parameters
        ----------
        order
            2 (pairs) or 3 (triplets).
        by
            ``"distance"`` (pairs: their distance; triplets: their longer leg from the centre)
            or ``"angle"`` (triplets: the angle at the centre, degrees).
        edges
            ``[B + 1]`` increasing band edges (Å or degrees).

        Returns
        -------
        ndarray
            ``[B]`` summed energies, eV; clusters outside the edges are left out.
        """
        if order == 2 and by == "distance":
            values, energies = self.pair_distance, self.pair_energy
        elif order == 3 and by == "distance":
            values, energies = self.triplet_distance[:, :2].max(axis=1), self.triplet_energy
        elif order == 3 and by == "angle":
            values, energies = self.triplet_angle, self.triplet_energy
        else:
            raise ValueError(
                f"bands by {by!r} of order {order}: choose order 2 by 'distance', or order 3 by "
                "'distance' or 'angle'"
            )
        if order > self.order:
            raise ValueError(f"order {order} was not evaluated (order={self.order})")
        sums, _ = np.histogram(values, bins=np.asarray(edges, float), weights=energies)
        return sums

    def as_dict(self) -> dict[str, Any]:
        """Totals and every pair and triplet term as plain lists (JSON-ready)."""
        return {
            "cutoff": self.cutoff,
            "order": self.order,
            "energy": self.energy,
            "sums": {str(n): v for n, v in self.sums.items()},
            "remainder": self.remainder,
            "profile": self.profile(),
            "one_body": self.one_body.tolist(),
            "pairs": {
                "index": self.pair_index.tolist(),
                "shift": self.pair_shift.tolist(),
                "distance": self.pair_distance.tolist(),
                "energy": self.pair_energy.tolist(),
            },
            "triplets": {
                "index": self.triplet_index.tolist(),
                "shift": self.triplet_shift.tolist(),
                "distance": self.triplet_distance.tolist(),
                "angle": self.triplet_angle.tolist(),
                "energy": self.triplet_energy.tolist(),
            },
        }

    def write(self, folder: str | Path) -> list[Path]:
        """Write ``many_body.json`` and ``pairs.csv``, ``triplets.csv`` into ``folder``.

        Returns
        -------
        list[Path]
            The files written.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "many_body.json", folder / "pairs.csv", folder / "triplets.csv"]
        paths[0].write_text(json.dumps(self.as_dict(), indent=1))
        pairs = np.column_stack(
            [self.pair_index, self.pair_shift, self.pair_distance, self.pair_energy]
        )
        np.savetxt(paths[1], pairs, delimiter=",", comments="",
                   header="i,j,shift_x,shift_y,shift_z,distance,energy",
                   fmt=["%d"] * 5 + ["%.10g"] * 2)  # fmt: skip
        self.write_triplets(paths[2])
        return paths

    def write_triplets(
        self, path: str | Path, extra: Mapping[str, np.ndarray] | None = None
    ) -> Path:
        """Write every triplet as a CSV row: atoms, shifts, distances, angle, ``extra``, Δ3.

        Parameters
        ----------
        path
            The CSV file.
        extra
            More ``[T]`` columns by name (e.g. ``{"interaction": triplet_interactions(...)}``),
            written before the last column, ``energy`` (Δ3, eV).
        """
        extra = dict(extra or {})
        table = np.column_stack(
            [self.triplet_index, self.triplet_shift.reshape(-1, 6), self.triplet_distance,
             self.triplet_angle, *extra.values(), self.triplet_energy]
        )  # fmt: skip
        header = ",".join(["i,j,k,shift_j_x,shift_j_y,shift_j_z,shift_k_x,shift_k_y,shift_k_z",
                           "r_ij,r_ik,r_jk,angle", *extra, "energy"])  # fmt: skip
        np.savetxt(path, table, delimiter=",", comments="", header=header,
                   fmt=["%d"] * 9 + ["%.10g"] * (5 + len(extra)))  # fmt: skip
        return Path(path)

    def plot3d(self, values: np.ndarray | None = None, top: int = 8,
               path: str | Path | None = None) -> Figure:  # fmt: skip
        """The strongest triplets in 3-D; see :func:`explain.visualize.plot_triplets`."""
        from explain.visualize import plot_triplets

        return plot_triplets(self, values, top, path)

    def plot(self, path: str | Path | None = None, title: str | None = None) -> Figure:
        """The body-order profile, Δ2 against distance and Δ3 against angle, side by side.

        Parameters
        ----------
        path
            Where to save the figure (any Matplotlib format), or None.
        title
            Figure title.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        panels = 1 + (self.order >= 2) + (self.order >= 3)
        figure = Figure(figsize=(4.2 * panels, 3.6), layout="constrained")
        axes = figure.subplots(1, panels, squeeze=False)
        plot_profiles([self], [title or "energy"], ax=axes[0, 0])
        if self.order >= 2:
            ax = axes[0, 1]
            ax.scatter(self.pair_distance, self.pair_energy, s=6)
            ax.axhline(0, color="0.6", lw=0.8)
            ax.set(xlabel="distance (Å)", ylabel="Δ2 (eV)", title="pairs")
        if self.order >= 3:
            ax = axes[0, 2]
            ax.scatter(self.triplet_angle, self.triplet_energy, s=4, alpha=0.5)
            ax.axhline(0, color="0.6", lw=0.8)
            ax.axvline(109.47, color="0.6", lw=0.8, ls="--")
            ax.set(xlabel="angle at the centre (°)", ylabel="Δ3 (eV)", title="triplets")
        if title:
            figure.suptitle(title)
        if path is not None:
            figure.savefig(path, dpi=120)
        return figure


def plot_profiles(
    results: Sequence[ManyBody], labels: Sequence[str], ax: Any = None, per_atom: bool = True
) -> Any:
    """Bars of Σ Δ2, Σ Δ3 and R of several expansions (e.g. a model and its reference).

    Parameters
    ----------
    results
        The expansions.
    labels
        One label per expansion.
    ax
        Matplotlib axes to draw in (a new figure if None).
    per_atom
        Divide by the number of atoms (eV/atom) rather than eV per structure.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.figure import Figure

    if ax is None:
        ax = Figure(figsize=(4.5, 3.6), layout="constrained").add_subplot()
    names = ["2-body", "3-body", "remainder"]
    width = 0.8 / max(1, len(results))
    for number, (result, label) in enumerate(zip(results, labels)):
        scale = len(result.atoms) if per_atom else 1
        values = [result.sums.get(2, 0.0), result.sums.get(3, 0.0), result.remainder]
        ax.bar(np.arange(3) + number * width, np.array(values) / scale, width, label=label)
    ax.set_xticks(np.arange(3) + 0.4 - width / 2, names)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_ylabel("energy (eV/atom)" if per_atom else "energy (eV)")
    ax.legend(fontsize="small")
    return ax


def triplet_interactions(attribution: Attribution, expansion: ManyBody) -> np.ndarray:
    """Edge-pair interactions (``integrated_hessians``) summed onto the triplets of an expansion.

    Bonds (i, j) and (i, k) that share atom i form the triplet {i, j, k}; their interaction is
    Σ Γ over both directed edges of each bond, in both orders (Γ summed over all pairs of
    inputs is f(x) − f(x'), so every unordered pair of distinct bonds counts once). A chain
    triplet has one such pair of bonds, a triangle three. A gate acts on a bond and all its
    periodic images at once, so in a small cell one pair of bonds can form several triplets
    (an atom with two images of another as neighbours): their interaction is then shared
    equally among them, and triplets whose two legs are images of one bond get none (the
    interaction of a bond with itself is not separable from its own score).

    Parameters
    ----------
    attribution
        Edge-level ``integrated_hessians`` attribution of the energy (eV) of a structure.
    expansion
        :func:`many_body` of the same structure (a cutoff up to the model's).

    Returns
    -------
    ndarray
        ``[T]`` interaction of every triplet of ``expansion``, eV; comparable with its Δ3.

    Raises
    ------
    ValueError
        Without edge interactions, or for a different structure.
    """
    if attribution.interaction is None or attribution.level != "edge":
        raise ValueError(
            "triplet interactions need an edge-level attribution with interactions "
            "(method='integrated_hessians', level='edge')"
        )
    if len(attribution.atoms) != len(expansion.atoms) or not np.allclose(
        attribution.atoms.positions, expansion.atoms.positions
    ):
        raise ValueError("the attribution and the expansion are of different structures")
    index, shift = attribution.edge_index, np.rint(attribution.edge_shift).astype(np.int64)
    bond = bond_ids(index, shift)
    membership = csr_array(
        (np.ones(len(bond)), (np.arange(len(bond)), bond)),
        shape=(len(bond), int(bond.max(initial=-1)) + 1),
    )  # [E, P]: the bond of every edge
    pair_bonds = np.asarray((membership.T @ (membership.T @ attribution.interaction).T).T)
    pair_bonds = pair_bonds + pair_bonds.T  # [P, P]: each unordered pair of bonds
    order = np.argsort(index[0], kind="stable")  # _paths needs edges by centre
    edges = np.column_stack([index.T, shift])[order]
    paths = _paths(edges, len(attribution.atoms))
    if paths is None:
        return np.zeros(len(expansion.triplet_energy))
    members, (a, b) = paths
    first, second = bond[order][a], bond[order][b]
    keep = first != second
    keys = _canonical(members[keep])
    low, high = np.minimum(first, second)[keep], np.maximum(first, second)[keep]
    combos = np.unique(np.column_stack([keys, low, high]), axis=0)  # each (triplet, bond pair)
    _, per_pair, clusters = np.unique(combos[:, -2:], axis=0, return_inverse=True,
                                      return_counts=True)  # fmt: skip
    share = pair_bonds[combos[:, -2], combos[:, -1]] / clusters[per_pair.reshape(-1)]
    wanted = _canonical(_triplet_members(expansion))
    table, inverse = np.unique(np.concatenate([wanted, combos[:, :3]]), axis=0,
                               return_inverse=True)  # fmt: skip
    inverse = inverse.reshape(-1)
    out = np.zeros(len(table))
    np.add.at(out, inverse[len(wanted) :], share)
    return out[inverse[: len(wanted)]]


def _triplet_members(expansion: ManyBody) -> np.ndarray:
    """``[T, 3, 4]`` (atom, shift) of the triplets of an expansion, the centre at shift 0."""
    count = len(expansion.triplet_index)
    shifts = np.concatenate([np.zeros((count, 1, 3), int), expansion.triplet_shift], axis=1)
    return np.concatenate([expansion.triplet_index[..., None], shifts], axis=2)


def many_body(
    potential: EnergyModel | BaseCalculator | str | Path,
    atoms: Atoms,
    order: int = 3,
    cutoff: float | None = None,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    batch_size: int = 8192,
    progress: bool = False,
) -> ManyBody:
    """The many-body expansion of ``atoms``'s energy up to ``order`` (module docstring).

    Parameters
    ----------
    potential
        An :class:`ase_gnn.EnergyModel` (or a model file), or any ASE calculator (a reference
        such as Stillinger–Weber, Lennard-Jones or EMT; then ``cutoff`` is required).
    atoms
        The structure: a molecule, a crystal, a slab.
    order
        1, 2 or 3: the highest order whose terms are evaluated.
    cutoff
        r_c in Å: clusters not connected within r_c are not evaluated (their Δ is 0 for a
        potential of that range). Default, and largest allowed for a model: the model's cutoff.
    dtype
        Float dtype the model is evaluated in (a copy of it; float64 by default, since Δ3 is a
        small difference of large energies).
    device
        Where the model is evaluated.
    batch_size
        Clusters per model call.
    progress
        Show a progress bar over the clusters.

    Returns
    -------
    ManyBody

    Raises
    ------
    ValueError
        For an order outside 1..3, a missing cutoff for a calculator, a cutoff beyond the
        model's, or a model whose energy is not a sum over atoms.
    """
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order}")
    structure = atoms.copy()
    structure.calc = None
    if isinstance(potential, (str, Path)):
        potential = load_model(potential)
    if isinstance(potential, EnergyModel):
        model = copy.deepcopy(potential).to(device=device, dtype=dtype).eval()
        if model.readout != "sum":
            raise ValueError("the many-body expansion needs an energy summed over atoms ('sum')")
        cutoff = model.cutoff if cutoff is None else float(cutoff)
        if cutoff > model.cutoff:
            raise ValueError(f"cutoff {cutoff} Å is beyond the model's ({model.cutoff} Å)")
        energies: ClusterEnergies = _ModelClusters(model, batch_size, progress)
        total = _model_energy(model, structure)
    elif isinstance(potential, BaseCalculator):
        if cutoff is None:
            raise ValueError("give the calculator's interaction range as cutoff= (Å)")
        cutoff = float(cutoff)
        energies = _CalculatorClusters(potential, cutoff, progress)
        if structure.pbc.any():
            reference = structure.copy()
            reference.calc = potential
            total = float(reference.get_potential_energy())
        else:  # a molecule: in a box, as its clusters are (some codes need a cell)
            positions = np.asarray(structure.positions, float)[None]
            total = float(energies(structure.numbers[None], positions)[0])
    else:
        raise TypeError(
            f"potential must be an EnergyModel, a model file or an ASE calculator, got "
            f"{type(potential).__name__}"
        )
    return _expand(energies, structure, total, order, cutoff)


def _model_energy(model: EnergyModel, atoms: Atoms) -> float:
    """The model's energy of the whole structure (periodic graph), eV."""
    graph = graph_from_atoms(atoms, model.cutoff, dtype=model.dtype, device=model.device)
    with torch.inference_mode():
        return float(model(graph).sum())


class _ModelClusters:
    """A model's energies of clusters, evaluated as batches of small non-periodic graphs."""

    def __init__(self, model: EnergyModel, batch_size: int, progress: bool) -> None:
        self.model, self.batch_size, self.progress = model, batch_size, progress

    def __call__(self, numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
        chunks = range(0, len(numbers), self.batch_size)
        bar = tqdm(chunks, desc=f"{numbers.shape[1]}-atom clusters", unit="batch",
                   disable=not self.progress or len(chunks) < 2)  # fmt: skip
        out = [self._energies(numbers[s : s + self.batch_size], positions[s : s + self.batch_size])
               for s in bar]  # fmt: skip
        return np.concatenate(out) if out else np.zeros(0)

    def _energies(self, numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
        model = self.model
        count, size = numbers.shape
        positions = positions - positions[:, :1]  # each cluster near the origin
        first, second = np.nonzero(~np.eye(size, dtype=bool))  # ordered pairs, by first
        lengths = np.linalg.norm(positions[:, second] - positions[:, first], axis=-1)
        cluster, pair = np.nonzero(lengths < model.cutoff)  # by cluster, then by centre
        edge_index = np.stack([cluster * size + first[pair], cluster * size + second[pair]])
        dtype, device = model.dtype, model.device
        graph = AtomicGraph(
            species=torch.as_tensor(numbers.reshape(-1), device=device),
            positions=torch.as_tensor(positions.reshape(-1, 3), dtype=dtype, device=device),
            cell=torch.zeros(count, 3, 3, dtype=dtype, device=device),
            pbc=torch.zeros(count, 3, dtype=torch.bool, device=device),
            edge_index=torch.as_tensor(edge_index, device=device),
            edge_shift=torch.zeros(edge_index.shape[1], 3, dtype=dtype, device=device),
            batch=torch.arange(count, device=device).repeat_interleave(size),
            ptr=torch.arange(0, count * size + 1, size, device=device),
        )
        with torch.inference_mode():
            local = model(graph)
        return local.reshape(count, size).sum(dim=1).double().cpu().numpy()


class _CalculatorClusters:
    """An ASE calculator's energies of clusters, one isolated cluster at a time."""

    def __init__(self, calculator: BaseCalculator, cutoff: float, progress: bool) -> None:
        self.calculator, self.cutoff, self.progress = calculator, cutoff, progress

    def __call__(self, numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
        out = np.empty(len(numbers))
        bar = tqdm(range(len(numbers)), desc=f"{numbers.shape[1]}-atom clusters",
                   disable=not self.progress)  # fmt: skip
        for index in bar:
            cluster = Atoms(numbers=numbers[index], positions=positions[index], pbc=False)
            cluster.center(vacuum=2 * self.cutoff)  # a box for codes that need one (LAMMPS)
            cluster.calc = self.calculator
            out[index] = cluster.get_potential_energy()
        return out


def _expand(
    energies: ClusterEnergies, atoms: Atoms, total: float, order: int, cutoff: float
) -> ManyBody:
    """Enumerate the clusters connected within ``cutoff`` and evaluate their Δ."""
    numbers = np.asarray(atoms.numbers)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    one_body = energies(numbers[:, None], positions[:, None])
    edges = _edges(atoms, cutoff) if order >= 2 and len(atoms) else np.zeros((0, 5), int)
    # pairs: the directed edges, each cluster once
    origin = np.column_stack([edges[:, 0], np.zeros((len(edges), 3), int)])
    pair_members = np.stack([origin, edges[:, 1:]], axis=1)
    pair_keys, first = np.unique(_canonical(pair_members), axis=0, return_index=True)
    pair_members = pair_members[first]
    pair_positions = _member_positions(pair_members, positions, cell)
    pair_energy = np.zeros(len(pair_members))
    if len(pair_members):
        pair_energy = energies(numbers[pair_members[..., 0]], pair_positions) - one_body[
            pair_members[..., 0]
        ].sum(axis=1)
    triplets = _triplets(edges, pair_keys, pair_energy, one_body, numbers, positions, cell,
                         cutoff, energies) if order >= 3 else None  # fmt: skip
    empty = np.zeros(0)
    return ManyBody(
        atoms=atoms,
        cutoff=cutoff,
        order=order,
        energy=total,
        one_body=one_body,
        pair_index=pair_members[..., 0],
        pair_shift=pair_members[:, 1, 1:] if order >= 2 else np.zeros((0, 3), int),
        pair_distance=np.linalg.norm(pair_positions[:, 1] - pair_positions[:, 0], axis=-1),
        pair_energy=pair_energy if order >= 2 else empty,
        triplet_index=triplets[0] if triplets else np.zeros((0, 3), int),
        triplet_shift=triplets[1] if triplets else np.zeros((0, 2, 3), int),
        triplet_distance=triplets[2] if triplets else np.zeros((0, 3)),
        triplet_angle=triplets[3] if triplets else empty,
        triplet_energy=triplets[4] if triplets else empty,
    )


def _edges(atoms: Atoms, cutoff: float) -> np.ndarray:
    """``[E, 5]`` directed edges (i, j, S) within ``cutoff``, S for ``atoms.positions``, by i."""
    graph = graph_from_atoms(atoms, cutoff)
    index = graph.edge_index.numpy()
    _, offsets = wrapped_positions(atoms)
    shift = np.rint(graph.edge_shift.numpy()).astype(np.int64)
    shift = shift - offsets[index[1]] + offsets[index[0]]
    order = np.argsort(index[0], kind="stable")
    return np.column_stack([index.T, shift])[order]


def _member_positions(members: np.ndarray, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """``[T, k, 3]`` positions of cluster members ``[T, k, 4]`` (atom, shift), Å."""
    return positions[members[..., 0]] + members[..., 1:] @ cell


def _canonical(members: np.ndarray) -> np.ndarray:
    """``[T, k]`` codes naming each cluster ``[T, k, 4]`` (atom, shift) modulo translations.

    For every choice of anchor member the shifts are taken relative to the anchor's and the
    members, encoded as integers, are sorted; the lexicographically smallest of the k lists
    names the cluster.
    """
    count, size, _ = members.shape
    if count == 0:
        return np.zeros((0, size), np.int64)
    span = 2 * int(np.abs(members[..., 1:]).max()) + 1
    base = 2 * span + 1
    candidates = []
    for anchor in range(size):
        relative = members[..., 1:] - members[:, anchor : anchor + 1, 1:] + span
        code = members[..., 0]
        for axis in range(3):
            code = code * base + relative[..., axis]
        candidates.append(np.sort(code, axis=1))
    stacked = np.stack(candidates, axis=1)  # [T, anchors, k]
    alive = np.ones((count, size), bool)
    for column in range(size):
        values = np.where(alive, stacked[..., column], np.iinfo(np.int64).max)
        alive &= values == values.min(axis=1, keepdims=True)
    return stacked[np.arange(count), alive.argmax(axis=1)]


def _triplets(
    edges: np.ndarray,
    pair_keys: np.ndarray,
    pair_energy: np.ndarray,
    one_body: np.ndarray,
    numbers: np.ndarray,
    positions: np.ndarray,
    cell: np.ndarray,
    cutoff: float,
    energies: ClusterEnergies,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Index, shifts, distances, angle and Δ3 of every connected triplet (None if none)."""
    paths = _paths(edges, len(one_body))
    if paths is None:
        return None
    members, _ = paths
    _, first = np.unique(_canonical(members), axis=0, return_index=True)
    members = members[np.sort(first)]
    members = _centre_first(members, _member_positions(members, positions, cell), cutoff)
    where = _member_positions(members, positions, cell)
    # Δ2 of the three sub-pairs: 0 for one beyond the cutoff (it is not a pair)
    sub = np.concatenate([members[:, [0, 1]], members[:, [0, 2]], members[:, [1, 2]]])
    table, inverse = np.unique(np.concatenate([pair_keys, _canonical(sub)]), axis=0,
                               return_inverse=True)  # fmt: skip
    inverse = inverse.ravel()
    lookup = np.full(len(table), -1)
    lookup[inverse[: len(pair_keys)]] = np.arange(len(pair_keys))
    found = lookup[inverse[len(pair_keys) :]]
    sub_energy = np.where(found >= 0, pair_energy[np.maximum(found, 0)], 0.0)
    atoms_of = members[..., 0]
    energy = (energies(numbers[atoms_of], where) - sub_energy.reshape(3, -1).sum(axis=0)
              - one_body[atoms_of].sum(axis=1))  # fmt: skip
    legs_ij, legs_ik = where[:, 1] - where[:, 0], where[:, 2] - where[:, 0]
    distance = np.stack([np.linalg.norm(legs_ij, axis=1), np.linalg.norm(legs_ik, axis=1),
                         np.linalg.norm(where[:, 2] - where[:, 1], axis=1)], axis=1)  # fmt: skip
    cosine = np.einsum("tx,tx->t", legs_ij, legs_ik) / (distance[:, 0] * distance[:, 1])
    angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    shifts = members[:, 1:, 1:] - members[:, :1, 1:]
    return atoms_of, shifts, distance, angle, energy


def _paths(edges: np.ndarray, num_atoms: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Every pair of edges leaving the same atom: members ``[M, 3, 4]`` (centre, j, k) and the
    ``[2, M]`` edge indices (rows of ``edges`` ``[E, 5]``, sorted by centre); None if none."""
    centre = edges[:, 0]
    starts = np.searchsorted(centre, np.arange(num_atoms))
    degree = np.bincount(centre, minlength=num_atoms)
    legs = []
    for d in np.unique(degree[degree >= 2]):
        first, second = np.triu_indices(d, 1)
        base = starts[degree == d][:, None]
        legs.append(np.stack([(base + first).ravel(), (base + second).ravel()]))
    if not legs:
        return None
    a, b = np.concatenate(legs, axis=1)
    origin = np.column_stack([centre[a], np.zeros((len(a), 3), int)])
    return np.stack([origin, edges[a, 1:], edges[b, 1:]], axis=1), np.stack([a, b])


def _centre_first(members: np.ndarray, where: np.ndarray, cutoff: float) -> np.ndarray:
    """Reorder each triplet so that its centre (module docstring) comes first."""
    angles = np.empty((len(members), 3))
    both = np.empty((len(members), 3), bool)
    for vertex in range(3):
        others = [m for m in range(3) if m != vertex]
        u, v = (where[:, m] - where[:, vertex] for m in others)
        nu, nv = np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1)
        both[:, vertex] = (nu < cutoff) & (nv < cutoff)
        angles[:, vertex] = np.arccos(np.clip(np.einsum("tx,tx->t", u, v) / (nu * nv), -1, 1))
    centre = np.where(both, angles, -np.inf).argmax(axis=1)
    order = np.stack([centre, (centre + 1) % 3, (centre + 2) % 3], axis=1)
    return np.take_along_axis(members, order[..., None], axis=1)
