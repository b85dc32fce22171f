"""Losses and error metrics on energy per atom, forces and stress.

The loss is a mean over structures of per-structure terms,

    L = (1/B) Σ_s w_s [ λ_E ρ(ΔE_s / N_s) + λ_F mean_i,k ρ(ΔF_s,ik) + λ_σ mean_kl ρ(Δσ_s,kl)
                        + λ_q mean_i ρ(Δq_s,i) ]

with ρ the squared error or the Huber function and w_s the structure weights (λ_q: charges of a
long-range model against reference charges, atoms with a label only). Averaging per
structure (not per atom over the whole batch) makes the loss of a batch the mean of the losses
of any equal-sized split of it, so data-parallel training over P processes, whose gradients are
averaged, follows exactly the same trajectory as one process with the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ase_gnn.graph.atomic_graph import AtomicGraph, atoms_per_graph, stress_mask
from ase_gnn.models.forces import Prediction
from ase_gnn.training.config import HeadConfig
from ase_gnn.training.data import Labels


@dataclass(frozen=True)
class LossWeights:
    """Weights λ of the loss terms and the error function.

    Attributes
    ----------
    energy
        Weight of the energy-per-atom term, 1/(eV/atom)².
    forces
        Weight of the force-component term, 1/(eV/Å)².
    stress
        Weight of the stress-component term, 1/(eV/Å³)²; structures without stress labels
        contribute nothing to it.
    charges
        Weight of the atomic-charge term, 1/e², of a long-range model; atoms without charge
        labels contribute nothing to it.
    kind
        ``"mse"`` or ``"huber"``.
    huber_delta
        Huber transition point, in each term's unit.
    """

    energy: float = 1.0
    forces: float = 10.0
    stress: float = 0.0
    charges: float = 0.0
    kind: Literal["mse", "huber"] = "mse"
    huber_delta: float = 0.01


def _error(difference: Tensor, weights: LossWeights) -> Tensor:
    if weights.kind == "huber":
        return torch.nn.functional.huber_loss(
            difference, torch.zeros_like(difference), reduction="none", delta=weights.huber_delta
        )
    return difference**2


def stress_label_mask(graph: AtomicGraph, labels: Labels) -> Tensor:
    """``[B]`` bool: structures whose stress enters losses and metrics.

    A structure counts when it has a stress (:func:`ase_gnn.graph.atomic_graph.stress_mask`: some
    periodic axis and a cell of non-zero volume) and a stress label (all nine components finite; a
    missing label is NaN, see :class:`~ase_gnn.training.data.Labels`). A molecule whose file
    carries a stress anyway is left out, since its predicted stress is NaN.
    """
    return stress_mask(graph) & torch.isfinite(labels.stress).all(dim=(1, 2))


def per_structure_loss(
    prediction: Prediction, labels: Labels, graph: AtomicGraph, weights: LossWeights
) -> Tensor:
    """Loss of every structure, ``[B]`` (before structure weights)."""
    num_atoms = atoms_per_graph(graph).to(prediction.energy.dtype)
    loss = weights.energy * _error((prediction.energy - labels.energy) / num_atoms, weights)
    if weights.forces and prediction.forces is not None:
        per_atom = _error(prediction.forces - labels.forces, weights).sum(dim=1)
        per_graph = per_atom.new_zeros(graph.num_graphs).index_add(0, graph.batch, per_atom)
        loss = loss + weights.forces * per_graph / (3 * num_atoms.clamp(min=1))
    if weights.stress and prediction.stress is not None:
        labelled = stress_label_mask(graph, labels)[:, None, None]
        # where() on both sides: NaN predictions (no stress) and NaN labels (none given) must
        # not reach the loss nor, as NaN times a zero gradient, the backward pass.
        difference = torch.where(
            labelled, prediction.stress.nan_to_num() - labels.stress.nan_to_num(), 0.0
        )
        loss = loss + weights.stress * _error(difference, weights).mean(dim=(1, 2))
    if weights.charges and prediction.charges is not None and labels.charges is not None:
        labelled = torch.isfinite(labels.charges)
        difference = torch.where(labelled, prediction.charges - labels.charges.nan_to_num(), 0.0)
        per_atom = _error(difference, weights)
        total = per_atom.new_zeros(graph.num_graphs).index_add(0, graph.batch, per_atom)
        count = per_atom.new_zeros(graph.num_graphs).index_add(
            0, graph.batch, labelled.to(per_atom.dtype)
        )
        loss = loss + weights.charges * total / count.clamp(min=1)
    return loss


def head_item_graph(level: str, graph: AtomicGraph) -> Tensor:
    """Structure of every item of a head: ``[N]`` atoms, ``[E]`` edges or ``[B]`` structures."""
    if level == "node":
        return graph.batch
    if level == "edge":
        return graph.batch[graph.edge_index[0]]
    return torch.arange(graph.num_graphs, device=graph.batch.device)


def head_errors(output: Tensor, label: Tensor, task: str) -> tuple[Tensor, Tensor]:
    """Per-item error ``[M]`` (squared error summed over outputs, or cross-entropy) and the
    mask ``[M]`` of items that have a label."""
    if task == "classification":
        present = label >= 0
        errors = torch.nn.functional.cross_entropy(output, label.clamp(min=0), reduction="none")
        return torch.where(present, errors, 0.0), present
    label = label.reshape(output.shape)
    present = ~torch.isnan(label).reshape(len(label), -1).any(dim=1)
    squared = (output - label.nan_to_num()).pow(2).reshape(len(label), -1).sum(dim=1)
    return torch.where(present, squared, 0.0), present


def per_structure_head_loss(
    outputs: dict[str, Tensor],
    labels: Labels,
    graph: AtomicGraph,
    heads: Sequence[HeadConfig],
) -> Tensor:
    """Σ_h weight_h × (mean error of the head's labelled items in each structure), ``[B]``."""
    loss = graph.positions.new_zeros(graph.num_graphs)
    for head in heads:
        errors, present = head_errors(outputs[head.name], labels.heads[head.name], head.task)
        owner = head_item_graph(head.level, graph)
        total = loss.new_zeros(graph.num_graphs).index_add(0, owner, errors.to(loss.dtype))
        count = loss.new_zeros(graph.num_graphs).index_add(0, owner, present.to(loss.dtype))
        loss = loss + head.weight * total / count.clamp(min=1)
    return loss


def weighted_loss(
    prediction: Prediction,
    labels: Labels,
    graph: AtomicGraph,
    weights: LossWeights,
    num_structures: float | None = None,
    head_outputs: dict[str, Tensor] | None = None,
    heads: Sequence[HeadConfig] = (),
) -> Tensor:
    """Weighted per-structure losses summed and divided by ``num_structures`` (default: the
    batch's B, i.e. the mean). A scalar with autograd history.

    Data-parallel training passes ``num_structures = global batch / processes``, so that the
    average over processes of their losses is the mean over the whole global batch, whatever
    the share of each process.
    """
    per_structure = per_structure_loss(prediction, labels, graph, weights)
    if heads and head_outputs is not None:
        per_structure = per_structure + per_structure_head_loss(head_outputs, labels, graph, heads)
    total = (labels.weight * per_structure).sum()
    return total / (graph.num_graphs if num_structures is None else num_structures)


def error_sums(
    prediction: Prediction,
    labels: Labels,
    graph: AtomicGraph,
    head_outputs: dict[str, Tensor] | None = None,
    heads: Sequence[HeadConfig] = (),
) -> dict[str, float]:
    """Sums of absolute and squared errors with their counts, to accumulate over batches/ranks.

    Keys ``{energy,forces,stress}_{abs,sq,n}``; energy errors are per atom (eV/atom). A
    long-range model with reference charges adds ``charges_{abs,sq,n}`` (e). Heads add
    ``<name>_{abs,sq,n}`` (regression) or ``<name>_{correct,n}`` (classification).
    """
    num_atoms = atoms_per_graph(graph).to(prediction.energy.dtype)
    errors = {"energy": (prediction.energy - labels.energy) / num_atoms}
    if prediction.forces is not None:
        errors["forces"] = prediction.forces - labels.forces
    if prediction.stress is not None:
        errors["stress"] = (prediction.stress - labels.stress)[stress_label_mask(graph, labels)]
    if prediction.charges is not None and labels.charges is not None:
        labelled = torch.isfinite(labels.charges)
        if bool(labelled.any()):
            errors["charges"] = (prediction.charges - labels.charges)[labelled]
    sums = {}
    for key, error in errors.items():
        sums[f"{key}_abs"] = float(error.detach().abs().sum())
        sums[f"{key}_sq"] = float((error.detach() ** 2).sum())
        sums[f"{key}_n"] = float(error.numel())
    for head in heads if head_outputs is not None else ():
        assert head_outputs is not None
        output, label = head_outputs[head.name].detach(), labels.heads[head.name]
        if head.task == "classification":
            present = label >= 0
            correct = (output.argmax(dim=-1) == label) & present
            sums[f"{head.name}_correct"] = float(correct.sum())
            sums[f"{head.name}_n"] = float(present.sum())
        else:
            error = (output - label.reshape(output.shape))[
                ~torch.isnan(label.reshape(output.shape))
            ]
            sums[f"{head.name}_abs"] = float(error.abs().sum())
            sums[f"{head.name}_sq"] = float((error**2).sum())
            sums[f"{head.name}_n"] = float(error.numel())
    return sums


def metrics_from_sums(sums: dict[str, float]) -> dict[str, float]:
    """MAE and RMSE per quantity (``energy_mae`` eV/atom, ``forces_mae`` eV/Å, ``stress_mae``
    eV/Å³, ``charges_mae`` e, and ``*_rmse``; ``<head>_mae`` / ``<head>_accuracy`` for heads)
    from accumulated :func:`error_sums`."""
    metrics = {}
    for key in [k.removesuffix("_n") for k in sums if k.endswith("_n")]:
        n = sums[f"{key}_n"]
        if not n:
            continue
        if f"{key}_correct" in sums:
            metrics[f"{key}_accuracy"] = sums[f"{key}_correct"] / n
        else:
            metrics[f"{key}_mae"] = sums[f"{key}_abs"] / n
            metrics[f"{key}_rmse"] = (sums[f"{key}_sq"] / n) ** 0.5
    return metrics
