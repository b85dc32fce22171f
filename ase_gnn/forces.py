"""Energy, forces and stress from local energies: the only place autograd derives them.

Forces are F = −∂E/∂r. Stress follows from a symmetric strain ε applied to positions and cell,
r → r (1 + ε), cell → cell (1 + ε):

    σ = (1/V) ∂E/∂ε |_{ε=0}

with V = |det(cell)|. This is the sign convention of ASE (tensile stress positive, pressure
p = −tr(σ)/3) and the definition ``ase.calculators.fd.calculate_numerical_stress`` checks against.
Because the strain acts on the cell, periodic-image edges stretch with it, which is what makes
the virial correct for periodic systems (a positions-only derivative would miss it).

References
----------
Knuth et al., "All-electron formalism for total energy strain derivatives and stress tensor
components for numeric atom-centered orbitals", Comput. Phys. Commun. 190, 33 (2015).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ase_gnn.graph import AtomicGraph, stress_mask, sum_per_graph
from ase_gnn.models.base import EnergyModel


@dataclass(frozen=True)
class Prediction:
    """Model outputs for a batch.

    Attributes
    ----------
    energy
        ``[B]`` total energies, eV.
    local_energies
        ``[N]`` per-atom energies, eV; they sum to ``energy`` per structure.
    forces
        ``[N, 3]`` forces, eV/Å, or None if not requested.
    stress
        ``[B, 3, 3]`` stress tensors, eV/Å³ (NaN for structures without a stress), or None
        if not requested.
    """

    energy: Tensor
    local_energies: Tensor
    forces: Tensor | None = None
    stress: Tensor | None = None


def predict(
    model: EnergyModel | torch.nn.Module,
    graph: AtomicGraph,
    forces: bool = True,
    stress: bool = False,
    training: bool = False,
    edge_weight: Tensor | None = None,
) -> Prediction:
    """Evaluate ``model`` on ``graph`` and derive forces and stress by autograd.

    Parameters
    ----------
    model
        The potential (or a wrapper of one, such as ``DistributedDataParallel``, whose call
        returns local energies); its dtype and device must match the graph's.
    graph
        A batch of B structures.
    forces
        Compute forces −∂E/∂r.
    stress
        Compute the stress (1/V) ∂E/∂ε. Structures without a stress (no periodic axis, or
        a cell of zero volume: see :func:`ase_gnn.has_stress`) get rows of NaN.
    training
        Keep the autograd graph of forces and stress (``create_graph``) so a loss on them can be
        back-propagated to the parameters.
    edge_weight
        Optional ``[E]`` edge weights passed to the model (1 = unchanged, 0 = edge removed).

    Returns
    -------
    Prediction
        Energies ``[B]``, local energies ``[N]``, forces ``[N, 3]`` and stress ``[B, 3, 3]``.
    """
    reference = next(iter(model.parameters()))
    if reference.dtype != graph.dtype or reference.device != graph.device:
        raise ValueError(
            f"model ({reference.dtype}, {reference.device}) and graph ({graph.dtype}, "
            f"{graph.device}) "
            "differ in dtype or device; use graph.to(...) or model.to(...)"
        )
    positions, cell = graph.positions, graph.cell
    inputs: list[Tensor] = []
    if forces:
        positions = positions.detach().requires_grad_(True)
        inputs.append(positions)
    if stress:
        # Structures without a stress (no periodic axis or a flat cell) get NaN rows; dividing
        # by a volume of 1 there keeps the gradient of the other rows finite.
        defined = stress_mask(graph)
        volume = torch.where(defined, torch.linalg.det(cell).abs(), torch.ones_like(cell[:, 0, 0]))
        strain = torch.zeros_like(cell, requires_grad=True)  # [B, 3, 3]
        inputs.append(strain)
        symmetric = 0.5 * (strain + strain.transpose(1, 2))
        identity = torch.eye(3, dtype=cell.dtype, device=cell.device)
        positions = torch.einsum("ni,nij->nj", positions, identity + symmetric[graph.batch])
        cell = cell @ (identity + symmetric)
    local_energies = model(graph.with_positions(positions, cell), edge_weight)
    energy = sum_per_graph(local_energies, graph)
    result_forces = result_stress = None
    if inputs:
        raw_grads: Sequence[Tensor | None] = [None] * len(inputs)
        if local_energies.requires_grad:  # False only when no atom has an energy term (N = 0)
            raw_grads = torch.autograd.grad(
                energy.sum(), inputs, create_graph=training, allow_unused=True
            )
        grads = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, raw_grads)]
        if forces:
            result_forces = -grads[0]
        if stress:
            result_stress = torch.where(
                defined[:, None, None], grads[-1] / volume[:, None, None], torch.nan
            )
    if not training:
        energy, local_energies = energy.detach(), local_energies.detach()
        result_forces = None if result_forces is None else result_forces.detach()
        result_stress = None if result_stress is None else result_stress.detach()
    return Prediction(energy, local_energies, result_forces, result_stress)
