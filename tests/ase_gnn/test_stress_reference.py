"""Stress sign and Voigt order against independent references, through the whole calculator chain.

A Lennard-Jones pair potential written as an :class:`~ase_gnn.EnergyModel` goes through
``predict`` (strain derivative), ``to_ase_results`` (Voigt conversion) and ``GNNCalculator``, and
is compared with ASE's own analytical ``LennardJones`` calculator on the same sheared, strained
cell: a transposed or mislabeled component, a sign flip or a wrong volume would all show. EMT
then fixes the physical sign: an expanded crystal pulls back (tensile stress is positive).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from torch import Tensor

from ase_gnn import EnergyModel, GNNCalculator
from ase_gnn.graph.atomic_graph import AtomicGraph, edge_vectors

SIGMA, EPSILON, CUTOFF = 2.3, 0.4, 5.0


class PairLJ(EnergyModel):
    """The shifted Lennard-Jones energy of ``ase.calculators.lj`` (``smooth=False``), per atom."""

    architecture = "PairLJ"

    def __init__(self) -> None:
        super().__init__(["Cu"], CUTOFF)
        self.epsilon = torch.nn.Parameter(
            torch.tensor(EPSILON, dtype=torch.float64)
        )  # eV; learnable like any model

    def pair(self, r: Tensor) -> Tensor:
        return 4 * self.epsilon * ((SIGMA / r) ** 12 - (SIGMA / r) ** 6)

    def interaction_energies(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None
    ) -> Tensor:
        lengths = edge_vectors(graph).norm(dim=-1)
        shifted = self.pair(lengths) - self.pair(torch.tensor(CUTOFF, dtype=lengths.dtype))
        energies = torch.zeros(graph.num_atoms, dtype=lengths.dtype, device=lengths.device)
        return energies.index_add(0, graph.edge_index[0], 0.5 * shifted)  # each pair twice

    def features(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        return torch.zeros(graph.num_atoms, 1, dtype=graph.dtype, device=graph.device)

    @property
    def num_features(self) -> int:
        return 1

    def hyperparameters(self) -> dict[str, Any]:
        return {}


def _strained_crystal(strain: np.ndarray) -> Any:
    """fcc Cu, rattled, with every Voigt component of the strain different (shear included)."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=3)
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
    return atoms


STRAIN = np.array([[0.02, 0.011, -0.004], [0.011, -0.013, 0.007], [-0.004, 0.007, 0.031]])


def test_stress_equals_ase_lennard_jones_in_sign_and_voigt_order() -> None:
    atoms = _strained_crystal(STRAIN)
    reference = atoms.copy()
    reference.calc = LennardJones(sigma=SIGMA, epsilon=EPSILON, rc=CUTOFF, smooth=False)
    atoms.calc = GNNCalculator(PairLJ().double())
    expected = reference.get_stress()
    assert np.abs(expected[3:]).min() > 1e-4, "every shear component must be non-zero"
    assert np.allclose(atoms.get_stress(), expected, rtol=1e-9, atol=1e-12)
    assert np.allclose(atoms.get_forces(), reference.get_forces(), rtol=1e-9, atol=1e-12)
    assert np.isclose(atoms.get_potential_energy(), reference.get_potential_energy(), rtol=1e-12)


@pytest.mark.parametrize("scale", [0.97, 1.03])
def test_diagonal_stress_sign_follows_emt(scale: float) -> None:
    """Compressed crystals push out (negative stress), expanded ones pull in, as with EMT."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.set_cell(atoms.cell * scale, scale_atoms=True)
    emt = atoms.copy()
    emt.calc = EMT()
    # σ = 2^(1/6)·2.3 Å puts the LJ minimum near Cu's nearest-neighbour distance (2.55 Å)
    atoms.calc = GNNCalculator(PairLJ().double())
    ours, theirs = atoms.get_stress()[:3], emt.get_stress()[:3]
    assert np.all(np.sign(ours) == np.sign(theirs)), (ours, theirs)
    assert np.all(np.sign(theirs) == np.sign(scale - 1.0))
