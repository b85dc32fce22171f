"""``Explainer``: attributions of one target of an ase-gnn model, by one method, at one level."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
import torch
from ase import Atoms
from torch import Tensor

from ase_gnn import AtomicGraph, EnergyModel, graph_from_atoms, wrapped_positions
from explain._forward import LEVELS, GateForward, Level
from explain.methods import METHODS, Call, check_options, deeplift_blockers
from explain.result import Attribution, bond_ids
from explain.targets import Energy, Target

Baseline = Literal["isolated", "zero", "random"]
BASELINES: tuple[str, ...] = ("isolated", "zero", "random")


class Explainer:
    """Attribute a target of a model to the bonds, atoms or positions of structures.

    Parameters
    ----------
    model
        Any :class:`ase_gnn.EnergyModel` (read only: nothing is attached to it).
    method
        One of :data:`explain.methods.METHODS` (see that module's table); ``"deeplift"`` is
        refused with the reason.
    target
        What to explain (:mod:`explain.targets`); default the total energy.
    level
        ``"edge"``: a gate on every directed edge (the model's ``edge_weight``); ``"atom"``: a
        gate per atom that switches all its edges and its own energy term; ``"position"``:
        gradients with respect to positions (``saliency`` only).
    baseline
        Gate values the inputs are compared against. ``"isolated"`` (default): every gate 0,
        the atoms without neighbors, so energy = Σ E0 and complete methods (Integrated Gradients)
        attribute E − Σ E0. ``"zero"`` (atom level): removed atoms also lose E0, so the baseline
        energy is 0 and the scores sum to E. ``"random"``: uniform random gates (seeded), several
        of them for ``gradient_shap``.
    internal_batch_size
        Most samples (structure copies) per model call: bounds memory.
    seed
        Seed of the random baseline.
    **options
        Method options overriding the defaults, e.g. ``n_steps=128`` for Integrated Gradients.

    Raises
    ------
    ValueError
        For unknown or unsupported combinations, with what is supported.

    Examples
    --------
    >>> explainer = Explainer(model, "integrated_gradients", Energy())  # doctest: +SKIP
    >>> attribution = explainer.explain(atoms)  # doctest: +SKIP
    >>> attribution.edge.sum(), attribution.completeness_gap  # doctest: +SKIP
    """

    def __init__(
        self,
        model: EnergyModel,
        method: str = "integrated_gradients",
        target: Target | None = None,
        level: Level = "edge",
        baseline: Baseline = "isolated",
        internal_batch_size: int = 32,
        seed: int = 0,
        **options: Any,
    ) -> None:
        if not isinstance(model, EnergyModel):
            raise TypeError(f"model must be an ase_gnn EnergyModel, got {type(model).__name__}")
        target = Energy() if target is None else target
        if not isinstance(target, Target):
            raise TypeError(f"target must be an explain Target, got {type(target).__name__}")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
        if method == "deeplift":
            blockers = ", ".join(deeplift_blockers(model))
            raise ValueError(
                f"deeplift is not supported for {type(model).__name__}: Captum's DeepLift rules "
                f"cover only torch.nn layers it knows, and this model computes with {blockers} "
                "(custom activations and multiplicative messages that DeepLift would silently "
                "treat as linear, so its scores would not add up). Use integrated_gradients "
                "(exact completeness for any differentiable model) or gradient_shap."
            )
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
        spec = METHODS[method]
        if level not in spec.levels:
            raise ValueError(f"{method} supports levels {spec.levels}, not {level!r}")
        if level == "position" and not target.position_level:
            raise ValueError(
                f"{target.name} cannot be attributed to positions (it is itself a position "
                "derivative); use level='edge' or 'atom', or an energy target"
            )
        if baseline == "zero" and level != "atom":
            raise ValueError(
                "baseline 'zero' removes atoms' reference energies and needs level='atom'; at "
                "edge level every gate 0 is the 'isolated' baseline"
            )
        target.check_model(model)
        if internal_batch_size < 1:
            raise ValueError(f"internal_batch_size must be >= 1, got {internal_batch_size}")
        self.model, self.method, self.target, self.level = model, method, target, level
        self.baseline: Baseline = baseline
        self.internal_batch_size, self.seed = internal_batch_size, seed
        self.options = check_options(spec, options)

    def __repr__(self) -> str:
        return (
            f"Explainer({type(self.model).__name__}, method={self.method!r}, "
            f"target={self.target!r}, level={self.level!r}, baseline={self.baseline!r})"
        )

    @overload
    def explain(self, structures: Atoms | AtomicGraph) -> Attribution: ...
    @overload
    def explain(self, structures: Sequence[Atoms]) -> list[Attribution]: ...
    def explain(
        self, structures: Atoms | AtomicGraph | Sequence[Atoms]
    ) -> Attribution | list[Attribution]:
        """Attributions of one structure, or of each structure of a list.

        Parameters
        ----------
        structures
            ``ase.Atoms``, a one-structure :class:`ase_gnn.AtomicGraph` (with the model's
            cutoff) or a list of ``ase.Atoms``.

        Returns
        -------
        Attribution or list of Attribution
        """
        if isinstance(structures, (Atoms, AtomicGraph)):
            return self._explain_one(structures)
        return [self._explain_one(atoms) for atoms in structures]

    # -- pieces that metrics reuse ----------------------------------------------------------
    def graph(self, atoms: Atoms) -> AtomicGraph:
        """The model's graph of ``atoms`` (cutoff, dtype, device of the model)."""
        return graph_from_atoms(
            atoms, self.model.cutoff, dtype=self.model.dtype, device=self.model.device
        )

    def forward(self, graph: AtomicGraph) -> GateForward:
        """The attributed function: gates ``[S, K]`` → target ``[S]`` (:mod:`explain._forward`)."""
        self.target.check(graph, self.model)
        return GateForward(
            self.target.view(self.model),
            self.target,
            graph,
            self.level,
            keep_reference=self.baseline != "zero",
        )

    def inputs_and_baseline(self, forward: GateForward) -> tuple[Tensor, Tensor]:
        """Inputs ``[1, K]`` (all gates 1, or positions ``[1, N, 3]``) and baselines ``[R, K]``."""
        graph, dtype, device = forward.graph, self.model.dtype, self.model.device
        if self.level == "position":
            inputs = graph.positions.detach().clone()[None]
            return inputs, torch.zeros_like(inputs)
        inputs = torch.ones(1, forward.num_inputs, dtype=dtype, device=device)
        if self.baseline != "random":
            return inputs, torch.zeros_like(inputs)
        count = self.options.get("n_samples", 1) if self.method == "gradient_shap" else 1
        generator = torch.Generator().manual_seed(self.seed)
        baseline = torch.rand(count, forward.num_inputs, generator=generator, dtype=dtype)
        return inputs, baseline.to(device)

    # -- the work ---------------------------------------------------------------------------
    def _explain_one(self, structure: Atoms | AtomicGraph) -> Attribution:
        if isinstance(structure, AtomicGraph):
            graph, atoms = structure, _atoms_of(structure)
            expected = self.graph(atoms).num_edges
            if graph.num_edges != expected:
                raise ValueError(
                    f"the graph has {graph.num_edges} edges, but the model's cutoff of "
                    f"{self.model.cutoff} Å gives {expected}: build it with "
                    "graph_from_atoms(atoms, model.cutoff) or pass the ase.Atoms"
                )
        else:
            graph, atoms = self.graph(structure), structure.copy()
            atoms.calc = None
        forward = self.forward(graph)
        inputs, baseline = self.inputs_and_baseline(forward)
        edge_index = graph.edge_index.cpu().numpy()
        edge_shift = graph.edge_shift.detach().cpu().double().numpy()
        if not isinstance(structure, AtomicGraph):
            # the graph's shifts refer to its positions, wrapped into the cell; the result's to
            # the positions of ``atoms``
            _, offsets = wrapped_positions(atoms)
            edge_shift = edge_shift - offsets[edge_index[1]] + offsets[edge_index[0]]
        spec = METHODS[self.method]
        feature_mask = None
        if spec.perturbs and self.level == "edge" and graph.num_edges:
            bonds = bond_ids(edge_index, edge_shift)
            feature_mask = torch.as_tensor(bonds, device=inputs.device)[None]
        with torch.enable_grad():
            call = Call(
                forward, inputs, baseline, self.internal_batch_size, feature_mask, self.options
            )
            scores, delta = spec.run(call)
        interaction = None
        if spec.interactions:  # Γ [K, K]; the scores are its row sums
            interaction = scores.detach().cpu().double().numpy()
            scores = scores.sum(dim=1)[None]
        values = scores.detach()[0].cpu().double().numpy()
        if feature_mask is not None:
            values = values / 2  # Captum gives each member the whole bond's score
        node, edge, position = _split_scores(self.level, values, edge_index, graph.num_atoms)
        gap = baseline_value = float("nan")
        if self.level == "position":  # no baseline: gradients at the structure itself
            target_value = float(forward.evaluate(inputs)[0])
        else:
            # Several baselines (random ones for gradient_shap): their mean is the reference.
            targets = forward.evaluate(torch.cat([inputs, baseline]), self.internal_batch_size)
            target_value, baseline_value = float(targets[0]), float(targets[1:].mean())
            if not spec.mask:  # a mask in (0, 1) is not meant to add up
                gap = float(values.sum() - (target_value - baseline_value))
        return Attribution(
            atoms=atoms,
            method=self.method,
            target=self.target.name,
            level=self.level,
            baseline=self.baseline if self.level != "position" else "none",
            node=node,
            edge=edge,
            edge_index=edge_index,
            edge_shift=edge_shift,
            position=position,
            target_value=target_value,
            baseline_value=baseline_value,
            completeness_gap=gap,
            convergence_delta=delta,
            interaction=interaction,
        )


def _split_scores(
    level: str, scores: np.ndarray, edge_index: np.ndarray, num_atoms: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Node ``[N]``, edge ``[E]`` and position ``[N, 3]`` views of the raw scores."""
    if level == "edge":
        node = 0.5 * (
            np.bincount(edge_index[0], scores, num_atoms)
            + np.bincount(edge_index[1], scores, num_atoms)
        )
        return node, scores, None
    if level == "atom":
        return scores, None, None
    position = scores.reshape(num_atoms, 3)
    return np.linalg.norm(position, axis=1), None, position


def _atoms_of(graph: AtomicGraph) -> Atoms:
    """The ``ase.Atoms`` of a one-structure graph."""
    if graph.num_graphs != 1:
        raise ValueError(f"explain one structure at a time, got a batch of {graph.num_graphs}")
    return Atoms(
        numbers=graph.species.cpu().numpy(),
        positions=graph.positions.detach().cpu().double().numpy(),
        cell=graph.cell[0].detach().cpu().double().numpy(),
        pbc=graph.pbc[0].cpu().numpy(),
    )
