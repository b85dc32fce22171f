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
from dataclasses import dataclass, fields
from itertools import chain
from typing import cast

import torch
from torch import Tensor

from ase_gnn.graph.atomic_graph import AtomicGraph, stress_mask, sum_per_graph
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
    charges
        ``[N]`` atomic charges, e, of a long-range model (None for a short-range one).
    """

    energy: Tensor
    local_energies: Tensor
    forces: Tensor | None = None
    stress: Tensor | None = None
    charges: Tensor | None = None


def predict(
    model: EnergyModel | torch.nn.Module,
    graph: AtomicGraph,
    forces: bool = True,
    stress: bool = False,
    training: bool = False,
    edge_weight: Tensor | None = None,
) -> Prediction:
    """Evaluate ``model`` on ``graph`` and derive forces and stress by autograd.

    The results do not depend on the caller's autograd mode: autograd is switched on inside
    (also under ``torch.no_grad()`` and ``torch.inference_mode()``), and graphs or models made
    under inference mode are used through normal copies, never changed.

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

    Raises
    ------
    ValueError
        If the model's dtype or device differs from the graph's.
    RuntimeError
        If forces or stress are requested for a graph with edges but the model's local energies
        have no autograd path to the positions (a model that detaches its output).
    """
    _check_dtype_and_device(model, graph)
    # Forces and stress are derivatives: they need autograd whatever the caller's mode (under
    # no_grad or inference_mode they would otherwise come out as silent zeros). Energies alone
    # are the same in any mode and need no autograd graph.
    with torch.inference_mode(False), torch.set_grad_enabled(forces or stress or training):
        graph = _normal_graph(graph)
        edge_weight = None if edge_weight is None else _normal(edge_weight)
        return _predict(model, graph, forces, stress, training, edge_weight)


def _predict(
    model: torch.nn.Module,
    graph: AtomicGraph,
    forces: bool,
    stress: bool,
    training: bool,
    edge_weight: Tensor | None,
) -> Prediction:
    """:func:`predict` with autograd on and no inference tensors in ``graph``."""
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
    local_energies, charges = _call(model, graph.with_positions(positions, cell), edge_weight)
    energy = sum_per_graph(local_energies, graph)
    result_forces = result_stress = None
    if inputs:
        raw_grads: Sequence[Tensor | None] = [None] * len(inputs)
        if local_energies.requires_grad:
            raw_grads = torch.autograd.grad(
                energy.sum(), inputs, create_graph=training, allow_unused=True
            )
        elif graph.num_edges > 0:
            # Without edges (N = 0, or only isolated atoms of a frozen model) the energy may
            # rightly not depend on positions; with edges it must.
            raise RuntimeError(
                "the model's local energies have no autograd path to the positions (the model "
                "detaches them or computes them under torch.no_grad), so forces and stress "
                "cannot be derived"
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
        charges = None if charges is None else charges.detach()
    return Prediction(energy, local_energies, result_forces, result_stress, charges)


def _check_dtype_and_device(model: torch.nn.Module, graph: AtomicGraph) -> None:
    """``ValueError`` if the model's first parameter (or buffer) differs from the graph in dtype
    or device; a model with neither has nothing to compare."""
    reference = next(chain(model.parameters(), model.buffers()), None)
    if reference is None:
        return
    if reference.dtype != graph.dtype or reference.device != graph.device:
        raise ValueError(
            f"model ({reference.dtype}, {reference.device}) and graph ({graph.dtype}, "
            f"{graph.device}) "
            "differ in dtype or device; use graph.to(...) or model.to(...)"
        )


def _normal(tensor: Tensor) -> Tensor:
    """``tensor``, or a normal copy if it is an inference tensor (made under inference_mode),
    which autograd cannot save for backward."""
    return tensor.clone() if tensor.is_inference() else tensor


def _normal_graph(graph: AtomicGraph) -> AtomicGraph:
    """``graph`` with every inference tensor replaced by a normal copy."""
    values = {field.name: getattr(graph, field.name) for field in fields(graph)}
    if not any(value is not None and value.is_inference() for value in values.values()):
        return graph
    normal = {name: None if value is None else _normal(value) for name, value in values.items()}
    return AtomicGraph(**normal)  # type: ignore[arg-type]  # None only where the field allows


def _call(
    model: torch.nn.Module, graph: AtomicGraph, edge_weight: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """Local energies ``[N]`` and charges ``[N]`` (None without long range) from ``model``;
    parameters and buffers that are inference tensors (the model was built or converted under
    inference_mode) are replaced by normal copies for this call only, the model itself is left
    unchanged."""
    inference = {
        name: tensor.clone()
        for name, tensor in chain(model.named_parameters(), model.named_buffers())
        if tensor.is_inference()
    }
    long_range = has_long_range(model)
    arguments = (graph, edge_weight, True) if long_range else (graph, edge_weight)
    out = (
        torch.func.functional_call(model, inference, arguments) if inference else model(*arguments)
    )
    if long_range:
        return cast(tuple[Tensor, Tensor | None], out)
    return cast(Tensor, out), None


def has_long_range(model: torch.nn.Module) -> bool:
    """Whether ``model`` (or the model inside a ``torch.compile`` or DDP wrapper) has charges."""
    inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None) or model
    return getattr(inner, "electrostatics", None) is not None
