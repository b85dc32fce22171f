"""Forward closures that Captum calls: S samples of gates (or positions) in, S target values out.

The graph is fixed; what varies is how strongly each input is present:

- ``"edge"``: gate g_e ∈ [0, 1] on every directed edge, passed as the model's ``edge_weight``
  (it scales that edge's message in every interaction layer; 0 removes the edge).
- ``"atom"``: gate a_i ∈ [0, 1] on every atom. Edge i→j gets weight a_i a_j, and the atom's own
  term becomes E0_i + a_i (E_i − E0_i), so a_i = 0 means the atom was moved infinitely far away
  (it keeps only its isolated-atom energy E0_i). With the ``"zero"`` baseline the term is
  a_i E_i instead, so a removed atom takes its E0 with it.
- ``"position"``: the atomic positions themselves (for plain gradients).

S samples are evaluated in one model call on S copies of the structure (a batch), so memory grows
with the number of samples per call, which every method bounds (``internal_batch_size``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ase_gnn import AtomicGraph, EnergyModel, batch_graphs
from explain.targets import EnergyPart, Target

Level = Literal["edge", "atom", "position"]
LEVELS: tuple[str, ...] = ("edge", "atom", "position")


class AtomGated(nn.Module):
    """Local energies ``[N]`` of a model whose atoms are switched by gates ``[N]`` (see above).

    Parameters
    ----------
    model
        The potential (read only).
    gates
        ``[N]`` gates of the atoms of the graphs it will be called with.
    keep_reference
        True: a gated-off atom keeps E0 ("isolated" baseline); False: it contributes 0.
    """

    def __init__(
        self, model: EnergyModel | EnergyPart, gates: Tensor, keep_reference: bool
    ) -> None:
        super().__init__()
        self.model = model
        self.gates = gates
        self.keep_reference = keep_reference

    def edge_weight(self, graph: AtomicGraph, edge_weight: Tensor | None) -> Tensor:
        """``[E]`` weights a_i a_j (times ``edge_weight``) of every edge."""
        center, neighbor = graph.edge_index
        weight = self.gates[center] * self.gates[neighbor]
        return weight if edge_weight is None else weight * edge_weight

    def head_outputs(
        self, graph: AtomicGraph, names: list[str], edge_weight: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The model's head outputs with the atoms' messages gated (no energy term here)."""
        model = self.model.model if isinstance(self.model, EnergyPart) else self.model
        return model.head_outputs(graph, names, self.edge_weight(graph, edge_weight))

    def forward(self, graph: AtomicGraph, edge_weight: Tensor | None = None) -> Tensor:
        """Gated local energies ``[N]``, eV."""
        local = self.model(graph, self.edge_weight(graph, edge_weight))
        if not self.keep_reference:
            return self.gates * local
        reference = self.model.reference_energies(graph)
        return reference + self.gates * (local - reference)


class GateForward:
    """Captum's ``forward_func``: inputs ``[S, K]`` (``[S, N, 3]`` for positions) → target ``[S]``.

    Parameters
    ----------
    model
        The potential.
    target
        What to explain.
    graph
        One structure.
    level
        ``"edge"`` (K = E), ``"atom"`` (K = N) or ``"position"``.
    keep_reference
        For ``"atom"``: whether gated-off atoms keep E0 (see :class:`AtomGated`).
    """

    def __init__(
        self,
        model: EnergyModel | EnergyPart,
        target: Target,
        graph: AtomicGraph,
        level: Level,
        keep_reference: bool = True,
    ) -> None:
        if graph.num_graphs != 1:
            raise ValueError(f"explain one structure at a time, got a batch of {graph.num_graphs}")
        self.model, self.target, self.graph, self.level = model, target, graph, level
        self.keep_reference = keep_reference
        self._copies: dict[int, AtomicGraph] = {}

    @property
    def num_inputs(self) -> int:
        """K: edges, atoms, or atoms × 3 coordinates."""
        return {
            "edge": self.graph.num_edges,
            "atom": self.graph.num_atoms,
            "position": 3 * self.graph.num_atoms,
        }[self.level]

    def replicate(self, num_samples: int) -> AtomicGraph:
        """``num_samples`` copies of the structure as one batch (cached for the last sizes)."""
        if num_samples not in self._copies:
            if len(self._copies) > 2:  # Captum uses one or two chunk sizes; bound the cache
                self._copies.clear()
            self._copies[num_samples] = batch_graphs([self.graph] * num_samples)
        return self._copies[num_samples]

    def __call__(self, inputs: Tensor) -> Tensor:
        """Target values ``[S]`` for S samples of gates ``[S, K]`` or positions ``[S, N, 3]``."""
        batch = self.replicate(inputs.shape[0])
        # Force and stress targets differentiate internally, also where Captum evaluates
        # under no_grad (its convergence delta): without this they would silently be 0.
        with torch.enable_grad():
            if self.level == "edge":
                return self.target(self.model, batch, inputs.reshape(-1))
            if self.level == "atom":
                gated = AtomGated(self.model, inputs.reshape(-1), self.keep_reference)
                return self.target(gated, batch, None)
            positions = inputs.reshape(-1, 3)
            return self.target(self.model, batch.with_positions(positions, batch.cell), None)

    def evaluate(self, inputs: Tensor, batch_size: int | None = None) -> Tensor:
        """Target values ``[S]``, detached, at most ``batch_size`` samples per model call."""
        chunks = inputs.detach().split(batch_size or max(1, len(inputs)))
        return torch.cat([self(chunk).detach() for chunk in chunks])
