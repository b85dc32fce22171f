"""Labelled structures as graphs: labels travel beside the graph, never inside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from torch import Tensor

from ase_gnn.graph import AtomicGraph, batch_graphs
from ase_gnn.neighbors import graph_from_atoms


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
    """

    energy: Tensor
    forces: Tensor
    stress: Tensor

    def to(self, device: str | torch.device, dtype: torch.dtype) -> Labels:
        """Copy to ``device`` and ``dtype``."""
        return Labels(*(t.to(device=device, dtype=dtype) for t in (self.energy, self.forces, self.stress)))


def labels_from_atoms(atoms: Atoms) -> Labels:
    """Read energy, forces and (if present) stress from ``atoms.calc`` (e.g. extxyz labels).

    Raises
    ------
    ValueError
        If the structure has no calculator results or lacks energy or forces.
    """
    if atoms.calc is None:
        raise ValueError(f"structure {atoms.get_chemical_formula()} has no labels (no calculator results)")
    try:
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
    except (PropertyNotImplementedError, RuntimeError) as error:
        raise ValueError(f"structure {atoms.get_chemical_formula()} lacks energy or forces: {error}") from error
    try:
        stress = atoms.get_stress(voigt=False)
    except (PropertyNotImplementedError, RuntimeError):
        stress = np.full((3, 3), np.nan)
    if forces.shape != (len(atoms), 3):
        raise ValueError(f"forces have shape {forces.shape}, expected ({len(atoms)}, 3)")
    return Labels(
        energy=torch.tensor([energy], dtype=torch.float64),
        forces=torch.as_tensor(forces, dtype=torch.float64),
        stress=torch.as_tensor(stress, dtype=torch.float64).unsqueeze(0),
    )


class GraphDataset:
    """Structures converted once to graphs (cached in memory) with their labels.

    Parameters
    ----------
    structures
        Labelled ``ase.Atoms``.
    cutoff
        Neighbor cutoff in Å (the model's).
    dtype
        Float dtype of graphs and labels.
    """

    def __init__(self, structures: Sequence[Atoms], cutoff: float, dtype: torch.dtype = torch.float64) -> None:
        if len(structures) == 0:
            raise ValueError("the data set is empty")
        self.graphs = [graph_from_atoms(a, cutoff, dtype=dtype) for a in structures]
        self.labels = [labels_from_atoms(a).to("cpu", dtype) for a in structures]

    def __len__(self) -> int:
        return len(self.graphs)

    def batch(self, indices: Sequence[int], device: str | torch.device = "cpu") -> tuple[AtomicGraph, Labels]:
        """Collate the structures at ``indices`` into one graph batch and its labels."""
        graph = batch_graphs([self.graphs[i] for i in indices]).to(device)
        labels = [self.labels[i] for i in indices]
        collated = Labels(
            energy=torch.cat([lab.energy for lab in labels]),
            forces=torch.cat([lab.forces for lab in labels]),
            stress=torch.cat([lab.stress for lab in labels]),
        )
        return graph, collated.to(device, graph.dtype)


def fit_atomic_energies(structures: Sequence[Atoms], species: Sequence[int]) -> list[float]:
    """Least-squares per-element reference energies E0 from total energies.

    Solves min_E0 Σ_s (E_s − Σ_Z n_sZ E0_Z)² over the training structures.

    Parameters
    ----------
    structures
        Labelled structures.
    species
        Atomic numbers, in the order of the returned values.

    Returns
    -------
    list of float
        E0 per species, eV.
    """
    index = {z: k for k, z in enumerate(species)}
    counts = np.zeros((len(structures), len(species)))
    energies = np.array([a.get_potential_energy() for a in structures])
    for row, atoms in enumerate(structures):
        for z in atoms.numbers:
            counts[row, index[int(z)]] += 1
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return [float(v) for v in solution]
