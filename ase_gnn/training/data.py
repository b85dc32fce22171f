"""Labelled structures as graphs: labels travel beside the graph, never inside it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import ase.io
import numpy as np
import torch
from ase import Atoms
from ase.io.bundletrajectory import BundleTrajectory
from ase.io.formats import UnknownFileTypeError
from ase.stress import voigt_6_to_full_3x3_stress
from torch import Tensor

from ase_gnn.graph.atomic_graph import AtomicGraph, batch_graphs
from ase_gnn.graph.neighbors import graph_from_atoms
from ase_gnn.models.nn.embedding import check_species
from ase_gnn.training.config import DataConfig, HeadConfig


@dataclass(frozen=True)
class Labels:
    """Reference values for a batch of B structures with N atoms.

    Attributes
    ----------
    energy
        ``[B]`` total energies, eV.
    forces
        ``[N, 3]`` forces, eV/Å.
    stress
        ``[B, 3, 3]`` stress, eV/Å³ (NaN where a structure has none).
    weight
        ``[B]`` per-structure loss weights.
    charges
        ``[N]`` reference atomic charges, e (NaN where a structure has none), or None.
    heads
        Labels of output heads by name: ``[N, ...]`` (node), ``[E, ...]`` (edge) or
        ``[B, ...]`` (graph); regression labels are floats (NaN = missing), class labels long
        indices (−1 = missing).
    """

    energy: Tensor
    forces: Tensor
    stress: Tensor
    weight: Tensor
    heads: dict[str, Tensor] = field(default_factory=dict)
    charges: Tensor | None = None

    def to(self, device: str | torch.device, dtype: torch.dtype) -> Labels:
        """Copy to ``device`` and (floats only) ``dtype``."""
        return Labels(
            energy=self.energy.to(device=device, dtype=dtype),
            forces=self.forces.to(device=device, dtype=dtype),
            stress=self.stress.to(device=device, dtype=dtype),
            weight=self.weight.to(device=device, dtype=dtype),
            heads={
                name: value.to(device, dtype if value.is_floating_point() else value.dtype)
                for name, value in self.heads.items()
            },
            charges=None if self.charges is None else self.charges.to(device, dtype),
        )


@dataclass(frozen=True)
class LabelKeys:
    """Where labels are found: calculator results first, then ``atoms.info`` / ``atoms.arrays``."""

    energy: str = "energy"
    forces: str = "forces"
    stress: str = "stress"
    weight: str = "weight"
    charges: str = "charges"


def label_keys(data: DataConfig) -> LabelKeys:
    """The label keys of a ``[data]`` section."""
    return LabelKeys(data.energy_key, data.forces_key, data.stress_key, data.weight_key,
                     data.charges_key)  # fmt: skip


def _lookup(atoms: Atoms, key: str, per_atom: bool) -> np.ndarray | float | None:
    if atoms.calc is not None and key in getattr(atoms.calc, "results", {}):
        return atoms.calc.results[key]
    if per_atom and key in atoms.arrays:
        return atoms.arrays[key]
    if key in atoms.info:
        return atoms.info[key]
    return None


def labels_from_atoms(atoms: Atoms, keys: LabelKeys | None = None, where: str = "") -> Labels:
    """Read energy, forces, optional stress and weight of one structure.

    Parameters
    ----------
    atoms
        A labelled structure (e.g. read from extxyz, where standard keys become calculator results
        and others such as ``REF_energy`` stay in ``info`` / ``arrays``).
    keys
        Label names; the ASE standard names by default.
    where
        Description of the structure for error messages (e.g. ``"cu.extxyz frame 12"``).

    Raises
    ------
    ValueError
        For a missing energy or forces key, labels of the wrong shape, or non-finite labels
        (NaN or inf energy or forces, inf or partly NaN stress, a non-finite or negative
        weight). A stress that is NaN in all components means "no stress label", as a missing
        key does.
    """
    keys = keys or LabelKeys()
    name = where or atoms.get_chemical_formula()
    energy = _lookup(atoms, keys.energy, per_atom=False)
    forces = _lookup(atoms, keys.forces, per_atom=True)
    if energy is None:
        raise ValueError(f"{name} has no labels: energy key {keys.energy!r} not found")
    if forces is None:
        raise ValueError(f"{name} has no labels: forces key {keys.forces!r} not found")
    energy = float(np.asarray(energy))
    if not np.isfinite(energy):
        raise ValueError(f"{name}: energy label {keys.energy!r} is {energy}; it must be finite")
    forces = np.asarray(forces, dtype=np.float64)
    if forces.shape != (len(atoms), 3):
        raise ValueError(f"{name}: forces have shape {forces.shape}, expected ({len(atoms)}, 3)")
    if not np.isfinite(forces).all():
        atom = int(np.flatnonzero(~np.isfinite(forces).all(axis=1))[0])
        raise ValueError(
            f"{name}: forces label {keys.forces!r} is {forces[atom].tolist()} on atom {atom}; "
            "forces must be finite"
        )
    stress = _lookup(atoms, keys.stress, per_atom=False)
    if stress is None:
        stress_3x3 = np.full((3, 3), np.nan)
    else:
        stress = np.asarray(stress, dtype=np.float64)
        if stress.shape == (6,):
            stress_3x3 = voigt_6_to_full_3x3_stress(stress)
        elif stress.size == 9:
            stress_3x3 = stress.reshape(3, 3)
        else:
            raise ValueError(f"{name}: stress has shape {stress.shape}, expected (6,) or (3, 3)")
        if not (np.isfinite(stress_3x3).all() or np.isnan(stress_3x3).all()):
            raise ValueError(
                f"{name}: stress label {keys.stress!r} is {stress.tolist()}; it must be finite "
                "(or NaN in every component for a structure without a stress label)"
            )
    weight = _lookup(atoms, keys.weight, per_atom=False)
    weight = 1.0 if weight is None else float(np.asarray(weight))
    if not (np.isfinite(weight) and weight >= 0.0):
        raise ValueError(
            f"{name}: loss weight {keys.weight!r} is {weight}; it must be finite and >= 0"
        )
    charges = _lookup(atoms, keys.charges, per_atom=True)
    if charges is not None:
        charges = np.asarray(charges, dtype=np.float64).reshape(-1)
        if charges.shape != (len(atoms),) or not np.isfinite(charges).all():
            raise ValueError(
                f"{name}: charges label {keys.charges!r} must be {len(atoms)} finite numbers"
            )
    return Labels(
        energy=torch.tensor([energy], dtype=torch.float64),
        forces=torch.as_tensor(forces),
        stress=torch.as_tensor(stress_3x3).unsqueeze(0),
        weight=torch.tensor([weight], dtype=torch.float64),
        charges=None if charges is None else torch.as_tensor(charges),
    )


def read_structures(path: str | os.PathLike[str], index: str = ":") -> list[Atoms]:
    """Read the structures of an ASE-readable file (extxyz, traj, ASE ``.db``, ...).

    Parameters
    ----------
    path
        The file.
    index
        Which frames, as ASE's ``index`` (``":"`` all, ``"-1"`` the last, ``"2:10"``).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is a folder, cannot be parsed, holds no structure or has no frame ``index``.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no data file at {path}")
    if os.path.isdir(path) and not BundleTrajectory.is_bundle(os.fspath(path)):
        raise ValueError(f"{path} is a folder, not a structure file")
    try:
        structures = ase.io.read(os.fspath(path), index=index)
    except (StopIteration, IndexError) as error:
        raise ValueError(f"{path} has no frame {index!r}") from error
    except (OSError, UnknownFileTypeError, TypeError, ValueError) as error:
        raise ValueError(f"cannot read structures from {path}: {error}") from error
    if isinstance(structures, Atoms):
        structures = [structures]
    if not structures:
        raise ValueError(f"{path} holds no structures (index {index!r})")
    return list(structures)


class GraphDataset(torch.utils.data.Dataset[tuple[AtomicGraph, Labels]]):
    """Structures converted once to graphs (cached in memory) with their labels.

    Parameters
    ----------
    structures
        Labelled ``ase.Atoms``.
    cutoff
        Neighbor cutoff in Å (the model's).
    dtype
        Float dtype of graphs and labels.
    keys
        Where the labels are stored.
    species
        If given, the atomic numbers the model knows; other elements are a ``ValueError``.
    name
        Name of the split for error messages.
    """

    def __init__(
        self,
        structures: Sequence[Atoms],
        cutoff: float,
        dtype: torch.dtype = torch.float64,
        keys: LabelKeys | None = None,
        species: Sequence[int] | None = None,
        name: str = "data set",
        heads: Sequence[HeadConfig] = (),
    ) -> None:
        if len(structures) == 0:
            raise ValueError(f"the {name} is empty")
        if species is not None:
            for atoms in structures:
                check_species(atoms.numbers, species)
        self.structures = list(structures)
        self.graphs = [graph_from_atoms(a, cutoff, dtype=dtype) for a in structures]
        self.labels = [
            replace(
                labels_from_atoms(a, keys, where=f"{name} structure {k}"),
                heads=head_labels(a, graph, heads, where=f"{name} structure {k}"),
            ).to("cpu", dtype)
            for k, (a, graph) in enumerate(zip(structures, self.graphs))
        ]

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> tuple[AtomicGraph, Labels]:
        return self.graphs[index], self.labels[index]

    def batch(
        self, indices: Sequence[int], device: str | torch.device = "cpu"
    ) -> tuple[AtomicGraph, Labels]:
        """Collate the structures at ``indices`` onto ``device``."""
        graph, labels = collate([self[i] for i in indices])
        return graph.to(device), labels.to(device, graph.dtype)


def collate(items: Sequence[tuple[AtomicGraph, Labels]]) -> tuple[AtomicGraph, Labels]:
    """Batch ``(graph, labels)`` pairs into one graph and one :class:`Labels`."""
    labels = [lab for _, lab in items]
    return batch_graphs([g for g, _ in items]), Labels(
        energy=torch.cat([lab.energy for lab in labels]),
        forces=torch.cat([lab.forces for lab in labels]),
        stress=torch.cat([lab.stress for lab in labels]),
        weight=torch.cat([lab.weight for lab in labels]),
        heads={name: torch.cat([lab.heads[name] for lab in labels]) for name in labels[0].heads},
        charges=None
        if all(lab.charges is None for lab in labels)
        else torch.cat(
            [
                lab.forces.new_full((len(lab.forces),), torch.nan)
                if lab.charges is None
                else lab.charges
                for lab in labels
            ]
        ),  # fmt: skip
    )


def head_labels(
    atoms: Atoms, graph: AtomicGraph, heads: Sequence[HeadConfig], where: str = ""
) -> dict[str, Tensor]:
    """Labels of every head for one structure (see :class:`HeadConfig` for where they are read).

    Missing labels become NaN (regression) or −1 (classification), which the loss skips.

    Raises
    ------
    ValueError
        For labels of the wrong shape, an unknown class name or an infinite regression label.
    """
    out = {}
    name = where or atoms.get_chemical_formula()
    for head in heads:
        key = head.label_key
        if head.level == "graph":
            raw = atoms.info.get(key)
            shape: tuple[int, ...] = (1,)
        else:
            raw = atoms.arrays.get(key)
            if raw is None and atoms.calc is not None:
                raw = getattr(atoms.calc, "results", {}).get(key)
            shape = (len(atoms),) if head.level == "node" else (len(atoms), len(atoms))
        if raw is None:
            count = graph.num_edges if head.level == "edge" else shape[0]
            width = (
                ()
                if head.task == "classification" or head.num_outputs == 1
                else (head.num_outputs,)
            )
            fill = -1 if head.task == "classification" else float("nan")
            kind = torch.long if head.task == "classification" else torch.float64
            out[head.name] = torch.full((count, *width), fill, dtype=kind)
            continue
        values = np.asarray(raw)
        if head.task == "classification":
            values = _class_indices(values, head.classes, f"{name} {head.name}")
        elif np.isinf(values.astype(np.float64)).any():
            raise ValueError(f"{name}: head label {key!r} holds inf (NaN marks a missing label)")
        values = values.reshape(
            shape
            + ((head.num_outputs,) if head.num_outputs > 1 and head.task == "regression" else ())
        )
        if head.level == "edge":
            center, neighbor = graph.edge_index.numpy()
            values = values[center, neighbor]
        kind = torch.long if head.task == "classification" else torch.float64
        out[head.name] = torch.as_tensor(np.ascontiguousarray(values)).to(kind)
    return out


def _class_indices(values: np.ndarray, classes: Sequence[str], where: str) -> np.ndarray:
    """Class names (or integer indices) → indices into ``classes``."""
    if values.dtype.kind in "iu":
        if values.size and (values.min() < -1 or values.max() >= len(classes)):
            raise ValueError(f"{where}: class index outside 0…{len(classes) - 1}")
        return values.astype(np.int64)
    lookup = {c: k for k, c in enumerate(classes)}
    unknown = sorted({str(v) for v in values.ravel()} - set(lookup))
    if unknown:
        raise ValueError(f"{where}: unknown class {unknown}; classes are {list(classes)}")
    return np.vectorize(lambda v: lookup[str(v)], otypes=[np.int64])(values)


def fit_atomic_energies(
    structures: Sequence[Atoms], species: Sequence[int], keys: LabelKeys | None = None
) -> list[float]:
    """Least-squares per-element reference energies E0 from total energies.

    Solves min_E0 Σ_s (E_s − Σ_Z n_sZ E0_Z)² over the structures (minimum-norm solution when
    compositions do not determine every E0, e.g. a single element in fixed ratio).

    Parameters
    ----------
    structures
        Labelled structures.
    species
        Atomic numbers, in the order of the returned values.
    keys
        Where the energy label is stored.

    Returns
    -------
    list of float
        E0 per species, eV.

    Raises
    ------
    ValueError
        For a structure without an energy or with a non-finite one (named by its index).
    """
    keys = keys or LabelKeys()
    index = {z: k for k, z in enumerate(species)}
    counts = np.zeros((len(structures), len(species)))
    energies = np.zeros(len(structures))
    for row, atoms in enumerate(structures):
        value = _lookup(atoms, keys.energy, per_atom=False)
        if value is None:
            raise ValueError(f"structure {row} has no energy under key {keys.energy!r}")
        energies[row] = float(np.asarray(value))
        if not np.isfinite(energies[row]):
            raise ValueError(
                f"structure {row}: energy label {keys.energy!r} is {energies[row]}; "
                "it must be finite"
            )
        for z in atoms.numbers:
            counts[row, index[int(z)]] += 1
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return [float(v) for v in solution]


def isolated_atom_energies(species: Sequence[int], calculator: str) -> list[float]:
    """Energy of an isolated atom of every species with ``emt``, ``lj``, ``morse`` (ASE) or
    ``sw`` (Stillinger-Weber silicon, :func:`ase_gnn.data.silicon.stillinger_weber`).

    Returns
    -------
    list of float
        E0 per species, eV.
    """
    from ase.calculators.emt import EMT
    from ase.calculators.lj import LennardJones
    from ase.calculators.morse import MorsePotential

    from ase_gnn.data.silicon import stillinger_weber

    factories = {"emt": EMT, "lj": LennardJones, "morse": MorsePotential, "sw": stillinger_weber}
    if calculator not in factories:
        raise ValueError(
            f"unknown calculator {calculator!r} for isolated-atom energies; "
            f"choose one of {sorted(factories)}"
        )
    energies = []
    for z in species:
        atom = Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]])
        atom.center(vacuum=5.0)  # a box for calculators that need one (matscipy)
        atom.calc = factories[calculator]()
        energies.append(float(atom.get_potential_energy()))
    return energies


def split(structures: Sequence[Atoms], fractions: Sequence[float], seed: int) -> list[list[Atoms]]:
    """Seeded random split into ``len(fractions) + 1`` parts; the remainder comes first.

    ``split(data, [0.1, 0.1], seed)`` gives ``[train (80 %), valid (10 %), test (10 %)]``.
    """
    order = np.random.default_rng(seed).permutation(len(structures))
    sizes = [int(round(f * len(structures))) for f in fractions]
    if sum(sizes) >= len(structures):
        raise ValueError(f"the split {list(fractions)} leaves no training structures")
    parts, start = [], len(structures) - sum(sizes)
    parts.append([structures[i] for i in order[:start]])
    for size in sizes:
        parts.append([structures[i] for i in order[start : start + size]])
        start += size
    return parts
