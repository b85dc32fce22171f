"""What an explanation explains: one number per structure, differentiable in the gates.

A :class:`Target` maps (model, graph, edge weights) to ``[B]`` values. The model argument is any
module that returns local energies ``[N]`` (the user's model, or the atom-gated wrapper that
:mod:`explain.explainer` puts around it), so targets derived from the energy (forces, stress)
follow from :func:`ase_gnn.predict` with ``training=True``: the autograd graph of forces and
stress is kept, which lets the attribution method differentiate them once more with respect to
the gates.

Output heads of the model (:mod:`ase_gnn.models.heads`) are explained through :class:`HeadOutput`;
other quantities plug in by subclassing :class:`Target`: implement :meth:`Target.__call__` (and
:attr:`Target.name`), and set :attr:`Target.position_level` to False if the value cannot be
differentiated with respect to positions.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol, cast

import torch
from torch import Tensor, nn

from ase_gnn import AtomicGraph, EnergyModel, Head, predict, stress_mask


class Target(ABC):
    """A scalar per structure to attribute (abstract).

    Subclasses implement :meth:`__call__` and :attr:`name`; :meth:`check` rejects structures
    the target is undefined for.
    """

    #: Whether the value can be attributed to atomic positions (plain gradients). Targets that
    #: are themselves position derivatives (forces, stress) cannot: ``predict`` makes positions
    #: a fresh leaf of the autograd graph.
    position_level: bool = True

    @property
    @abstractmethod
    def name(self) -> str:
        """Short description, e.g. ``"energy"`` or ``"force[3]·(0, 0, 1)"``."""

    @abstractmethod
    def __call__(self, model: nn.Module, graph: AtomicGraph, edge_weight: Tensor | None) -> Tensor:
        """Values ``[B]`` for a batch of B structures, differentiable in ``edge_weight``.

        Parameters
        ----------
        model
            Module returning local energies ``[N]`` (eV) for ``(graph, edge_weight)``.
        graph
            B structures (in :mod:`explain`, B copies of one structure).
        edge_weight
            ``[E]`` weights of every edge, or None.
        """

    def check(self, graph: AtomicGraph, model: EnergyModel) -> None:  # noqa: B027 - optional
        """Raise ``ValueError`` if the target is undefined for this one-structure graph."""

    def check_model(self, model: EnergyModel) -> None:  # noqa: B027 - optional hook
        """Raise ``ValueError`` if ``model`` cannot give this target (checked when built)."""

    def view(self, model: EnergyModel) -> EnergyModel | EnergyPart:
        """The module whose local energies the target reads (``model`` itself by default)."""
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class _WithHeads(Protocol):
    def head_outputs(
        self, graph: AtomicGraph, names: list[str], edge_weight: Tensor | None = None
    ) -> dict[str, Tensor]: ...


def _check_atom(atom: int, graph: AtomicGraph, what: str) -> None:
    if isinstance(atom, bool) or not isinstance(atom, numbers.Integral):
        raise TypeError(f"{what}: the atom index must be an integer, got {atom!r}")
    if not 0 <= atom < graph.num_atoms:
        raise ValueError(f"{what} of atom {atom}, but the structure has {graph.num_atoms} atoms")


PARTS: tuple[str, ...] = ("total", "short_range", "electrostatic")


class EnergyPart(nn.Module):
    """One part of a long-range model's local energies, as a module shaped like the model.

    ``"short_range"``: E0_i plus the message-passing energy (reference energies E0);
    ``"electrostatic"``: k_e q_i V_i of the learned charges (reference 0: with every bond gated
    off no charge is left). The two sum to the model's local energies, so attributions of the
    two parts sum to those of the total energy (exactly, for linear methods such as Integrated
    Gradients).
    """

    def __init__(self, model: EnergyModel, part: str) -> None:
        super().__init__()
        self.model, self.part = model, part

    def forward(self, graph: AtomicGraph, edge_weight: Tensor | None = None) -> Tensor:
        """Local energies ``[N]`` of the part, eV."""
        short_range, electrostatic, _ = self.model.energy_parts(graph, edge_weight)
        if self.part == "short_range":
            return short_range
        return torch.zeros_like(short_range) if electrostatic is None else electrostatic

    def reference_energies(self, graph: AtomicGraph) -> Tensor:
        """``[N]`` local energies of the part without neighbours: E0, or 0 (electrostatic)."""
        reference = self.model.reference_energies(graph)
        return reference if self.part == "short_range" else torch.zeros_like(reference)


@dataclass(frozen=True, repr=False)
class Energy(Target):
    """Total energy E, eV, or one part of it for a long-range model.

    Parameters
    ----------
    part
        ``"total"``; ``"short_range"`` (Σ E0_i + message-passing energies) or
        ``"electrostatic"`` (the Coulomb energy of the learned charges) of a model built with
        ``long_range``. With the isolated-atom baseline the attributions of the parts sum to
        E_sr − Σ E0 and E_el, those of the total to their sum.
    """

    part: str = "total"

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {self.part!r}")

    @property
    def name(self) -> str:
        return "energy" if self.part == "total" else f"{self.part.replace('_', '-')} energy"

    def check_model(self, model: EnergyModel) -> None:
        if self.part == "electrostatic" and model.electrostatics is None:
            raise ValueError(
                "the electrostatic part needs a model with a long-range term "
                "(e.g. SchNet(..., long_range=True)); this one is short-range only"
            )

    def view(self, model: EnergyModel) -> EnergyModel | EnergyPart:
        return model if self.part == "total" else EnergyPart(model, self.part)

    def __call__(self, model: nn.Module, graph: AtomicGraph, edge_weight: Tensor | None) -> Tensor:
        """Total energies (or those of the part) ``[B]``, eV."""
        return predict(model, graph, forces=False, training=True, edge_weight=edge_weight).energy


class EnergyPerAtom(Target):
    """Energy per atom E/N, eV/atom."""

    @property
    def name(self) -> str:
        return "energy per atom"

    def __call__(self, model: nn.Module, graph: AtomicGraph, edge_weight: Tensor | None) -> Tensor:
        """Energies per atom ``[B]``, eV/atom."""
        energy = Energy()(model, graph, edge_weight)
        return energy / (graph.ptr[1:] - graph.ptr[:-1]).to(energy.dtype)


@dataclass(frozen=True, repr=False)
class LocalEnergy(Target):
    """Local energy E_i of one atom (index within its structure), eV.

    With the ``"isolated"`` baseline, attributions sum to E_i − E0_i.
    """

    atom: int

    @property
    def name(self) -> str:
        return f"local energy[{self.atom}]"

    def check(self, graph: AtomicGraph, model: EnergyModel) -> None:
        _check_atom(self.atom, graph, "local energy")

    def __call__(self, model: nn.Module, graph: AtomicGraph, edge_weight: Tensor | None) -> Tensor:
        """Local energies ``[B]`` of atom ``atom`` of every structure, eV."""
        local = predict(model, graph, forces=False, training=True, edge_weight=edge_weight)
        return local.local_energies[graph.ptr[:-1] + self.atom]


@dataclass(frozen=True, repr=False)
class ForceComponent(Target):
    """Force on one atom along a direction, F_i · u in eV/Å (u normalised).

    Parameters
    ----------
    atom
        Index of the atom within its structure.
    direction
        Axis 0, 1, 2 (x, y, z) or a 3-vector u.
    """

    atom: int
    direction: int | tuple[float, float, float] = 2
    position_level = False

    def unit_vector(self) -> tuple[float, float, float]:
        """The direction u as a unit 3-vector."""
        if isinstance(self.direction, bool):
            raise TypeError(f"direction must be 0, 1, 2 or a 3-vector, got {self.direction}")
        if isinstance(self.direction, numbers.Integral):
            if self.direction not in (0, 1, 2):
                raise ValueError(f"direction must be 0, 1, 2 or a 3-vector, got {self.direction}")
            return tuple(float(k == self.direction) for k in range(3))
        vector = torch.tensor(self.direction, dtype=torch.float64)
        if vector.shape != (3,) or not bool(torch.isfinite(vector).all() & (vector.norm() > 0)):
            raise ValueError(f"direction must be a finite non-zero 3-vector, got {self.direction}")
        x, y, z = (vector / vector.norm()).tolist()
        return x, y, z

    @property
    def name(self) -> str:
        return f"force[{self.atom}]·({', '.join(f'{v:g}' for v in self.unit_vector())})"

    def check(self, graph: AtomicGraph, model: EnergyModel) -> None:
        _check_atom(self.atom, graph, "force")
        self.unit_vector()

    def __call__(self, model: nn.Module, graph: AtomicGraph, edge_weight: Tensor | None) -> Tensor:
        """F_i · u ``[B]`` of atom ``atom`` of every structure, eV/Å."""
        forces = predict(model, graph, forces=True, training=True, edge_weight=edge_weight).forces
        assert forces is not None
        u = torch.tensor(self.unit_vector(), dtype=forces.dtype, device=forces.device)
        return forces[graph.ptr[:-1] + self.atom] @ u


@dataclass(frozen=True, repr=False)
class StressComponent(Target):
    """One component σ_ij of the stress tensor, eV/Å³ (ASE sign: tensile positive).

    Defined only for periodic structures with a 3-D cell.
    """

    i: int
    j: int
    position_level = False

    @property
    def name(self) -> str:
        return f"stress[{'xyz'[self.i]}{'xyz'[self.j]}]"

    def check(self, graph: AtomicGraph, model: EnergyModel) -> None:
        if self.i not in (0, 1, 2) or self.j not in (0, 1, 2):
            raise ValueError(f"stress component ({self.i}, {self.j}) is not in 0…2")
        if not bool(stress_mask(graph).all()):
            raise ValueError("a stress target needs a periodic structure with a 3-D cell")

    def __call__(self, model: nn.Module, graph: AtomicGraph, edge_weight: Tensor | None) -> Tensor:
        """σ_ij ``[B]`` of every structure, eV/Å³."""
        prediction = predict(
            model, graph, forces=False, stress=True, training=True, edge_weight=edge_weight
        )
        assert prediction.stress is not None
        return prediction.stress[:, self.i, self.j]


@dataclass(frozen=True, repr=False)
class HeadOutput(Target):
    """One output of a node, edge or graph head of the model (:mod:`ase_gnn.models.heads`).

    For a classifier the output is the logit of class ``component``. At atom level, atom gates
    switch the messages (edge weights a_i a_j), as for energies.

    Parameters
    ----------
    head
        Name of the head (``model.heads``).
    component
        Output column (class index for classifiers).
    item
        Atom index (node heads) or edge index (edge heads) within the structure; None for graph
        heads.
    """

    head: str
    component: int = 0
    item: int | None = None

    @property
    def name(self) -> str:
        where = "" if self.item is None else f"[{self.item}]"
        return f"{self.head}{where}[{self.component}]"

    def check_model(self, model: EnergyModel) -> None:
        if self.head not in model.heads:
            raise ValueError(f"the model has no head {self.head!r}; it has {list(model.heads)}")
        head = model.heads[self.head]
        assert isinstance(head, Head)
        if not 0 <= self.component < head.num_outputs:
            raise ValueError(
                f"head {self.head!r} has {head.num_outputs} outputs, not {self.component}"
            )
        if (head.level == "graph") != (self.item is None):
            raise ValueError(
                f"a {head.level} head needs "
                + ("no item" if head.level == "graph" else f"item = the {head.level} index")
            )

    def check(self, graph: AtomicGraph, model: EnergyModel) -> None:
        if self.item is not None:
            level = model.heads[self.head].level
            count = graph.num_atoms if level == "node" else graph.num_edges
            if not 0 <= self.item < count:
                raise ValueError(f"{self.head}: {level} {self.item} is not among the {count}")

    def __call__(self, model: nn.Module, graph: AtomicGraph, edge_weight: Tensor | None) -> Tensor:
        """The chosen output ``[B]`` of every structure."""
        # An EnergyModel or its atom-gated wrapper: both have head_outputs.
        outputs = cast(_WithHeads, model).head_outputs(graph, [self.head], edge_weight)[self.head]
        if self.item is None:  # graph head: [B, C]
            return outputs[:, self.component]
        per_structure = outputs.shape[0] // graph.num_graphs  # atoms or edges of one copy
        rows = torch.arange(graph.num_graphs, device=outputs.device) * per_structure + self.item
        return outputs[rows, self.component]
