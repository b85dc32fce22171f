"""What an explanation explains: one number per structure, differentiable in the gates.

A :class:`Target` maps (model, graph, edge weights) to ``[B]`` values. The model argument is any
module that returns local energies ``[N]`` (the user's model, or the atom-gated wrapper that
:mod:`explain.explainer` puts around it), so targets derived from the energy (forces, stress)
follow from :func:`ase_gnn.predict` with ``training=True``: the autograd graph of forces and
stress is kept, which lets the attribution method differentiate them once more with respect to
the gates.

Output heads of other model types plug in by subclassing :class:`Target`: implement
:meth:`Target.__call__` (and :attr:`Target.name`), and set :attr:`Target.position_level` to
False if the value cannot be differentiated with respect to positions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ase_gnn import AtomicGraph, predict


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

    def check(self, graph: AtomicGraph) -> None:  # noqa: B027 - optional hook, valid by default
        """Raise ``ValueError`` if the target is undefined for this one-structure graph."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _check_atom(atom: int, graph: AtomicGraph, what: str) -> None:
    if not 0 <= atom < graph.num_atoms:
        raise ValueError(f"{what} of atom {atom}, but the structure has {graph.num_atoms} atoms")


class Energy(Target):
    """Total energy E, eV."""

    @property
    def name(self) -> str:
        return "energy"

    def __call__(self, model: nn.Module, graph: AtomicGraph, edge_weight: Tensor | None) -> Tensor:
        """Total energies ``[B]``, eV."""
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

    def check(self, graph: AtomicGraph) -> None:
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
        if isinstance(self.direction, int):
            if self.direction not in (0, 1, 2):
                raise ValueError(f"direction must be 0, 1, 2 or a 3-vector, got {self.direction}")
            return tuple(float(k == self.direction) for k in range(3))  # type: ignore[return-value]  # length 3
        vector = torch.tensor(self.direction, dtype=torch.float64)
        if vector.shape != (3,) or not bool(vector.norm() > 0):
            raise ValueError(f"direction must be a non-zero 3-vector, got {self.direction}")
        x, y, z = (vector / vector.norm()).tolist()
        return x, y, z

    @property
    def name(self) -> str:
        return f"force[{self.atom}]·({', '.join(f'{v:g}' for v in self.unit_vector())})"

    def check(self, graph: AtomicGraph) -> None:
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

    def check(self, graph: AtomicGraph) -> None:
        if self.i not in (0, 1, 2) or self.j not in (0, 1, 2):
            raise ValueError(f"stress component ({self.i}, {self.j}) is not in 0…2")
        if not bool(graph.pbc.any()) or abs(float(torch.linalg.det(graph.cell[0]))) < 1e-10:
            raise ValueError("a stress target needs a periodic structure with a 3-D cell")

    def __call__(self, model: nn.Module, graph: AtomicGraph, edge_weight: Tensor | None) -> Tensor:
        """σ_ij ``[B]`` of every structure, eV/Å³."""
        prediction = predict(
            model, graph, forces=False, stress=True, training=True, edge_weight=edge_weight
        )
        assert prediction.stress is not None
        return prediction.stress[:, self.i, self.j]
