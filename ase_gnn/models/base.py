"""The ``EnergyModel`` contract and the registry of architectures.

A model maps an :class:`~ase_gnn.graph.atomic_graph.AtomicGraph` to local energies ``[N]`` in eV:

    E_i = E0[Z_i] + scale · (ε_i − ε_iso[Z_i])

where ε_i is the architecture's raw per-atom output and ε_iso[Z] the raw output of an isolated
atom of that species. Subtracting ε_iso makes an atom without neighbors have exactly its reference
energy E0 and zero force, so E0 (fitted by least squares or given) is both the per-element shift
and the "isolated atoms" baseline that ``explain`` measures attributions against. With the
``"mean"`` readout every E_i is further divided by its structure's atom count, which makes the
total energy intensive (a 2×2×2 supercell then has the same energy, not 8×).

A model built with ``long_range`` adds the electrostatic energy of learned charges to every
E_i (:mod:`ase_gnn.models.long_range`). Its charges are taken relative to an isolated atom's too,
so with every edge removed they vanish and the energy is again Σ E0.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols
from torch import Tensor, nn

from ase_gnn.graph.atomic_graph import AtomicGraph, atoms_per_graph, batch_graphs
from ase_gnn.models.heads import Head
from ase_gnn.models.long_range import Electrostatics, neutralise
from ase_gnn.models.nn.embedding import SpeciesIndex

Readout = Literal["sum", "mean"]
READOUTS: tuple[str, ...] = ("sum", "mean")

#: Architectures by name: the allow-list that model files are loaded from.
ARCHITECTURES: dict[str, type[EnergyModel]] = {}

M = TypeVar("M", bound="type[EnergyModel]")


def register(cls: M) -> M:
    """Class decorator: add an architecture to :data:`ARCHITECTURES` as ``cls.architecture``."""
    ARCHITECTURES[cls.architecture] = cls
    return cls


def check_sizes(architecture: str, **sizes: int) -> None:
    """Raise ``ValueError`` naming the first layer size (channels, layers, basis) below 1.

    Parameters
    ----------
    architecture
        Name used in the message.
    **sizes
        Hyperparameter name → value; each must be an integer of at least 1.
    """
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(
                f"{architecture}: {name} must be an integer of at least 1, got {value!r}"
            )


def to_atomic_numbers(species: Sequence[str | int]) -> tuple[int, ...]:
    """Turn element symbols or atomic numbers into a tuple of unique atomic numbers, in order.

    Numbers must be integers (Python, NumPy or 0-d torch): ``29.5`` or ``True`` (from an edited
    model file, say) would otherwise truncate to another element without a word.
    """
    numbers: list[int] = []
    for s in species:
        if isinstance(s, str):
            if s not in atomic_numbers:
                raise ValueError(f"unknown element symbol {s!r}")
            z = atomic_numbers[s]
        else:
            try:
                if isinstance(s, (bool, np.bool_)):
                    raise TypeError
                z = operator.index(s)
            except TypeError:
                raise ValueError(
                    "species must be element symbols or integer atomic numbers, got "
                    f"{s!r} ({type(s).__name__})"
                ) from None
            if not 1 <= z < len(chemical_symbols):
                raise ValueError(f"atomic number {z} is outside 1…{len(chemical_symbols) - 1}")
        if z not in numbers:
            numbers.append(z)
    if not numbers:
        raise ValueError("a model needs at least one species")
    return tuple(numbers)


class EnergyModel(nn.Module, ABC):
    """Base class of all potentials: graph in, local energies ``[N]`` (eV) out.

    Parameters
    ----------
    species
        Element symbols or atomic numbers the model knows.
    cutoff
        Neighbor cutoff in Å.
    readout
        ``"sum"`` (extensive total energy, the physical choice) or ``"mean"`` (intensive).
    atomic_energies
        Reference energies E0 in eV, by symbol or in ``species`` order; zero if omitted.

    Notes
    -----
    ``forward(graph, edge_weight)`` takes an optional ``edge_weight [E]`` that multiplies every
    message of that edge (through the cutoff envelope) in every layer: 1 leaves the edge as it
    is, 0 removes it exactly. Subclasses implement :meth:`interaction_energies` and must honour it.
    """

    #: Registry name, also written to model files.
    architecture: ClassVar[str]
    #: Aggregations the architecture accepts (equivariant ones refuse "max").
    aggregations: ClassVar[tuple[str, ...]] = ("sum", "mean", "max")
    #: Reference energies E0 per species ``[S]``, eV (a buffer).
    atomic_energies: Tensor
    #: Scale of the raw outputs (a scalar buffer), eV.
    scale: Tensor

    def __init__(
        self,
        species: Sequence[str | int],
        cutoff: float,
        readout: Readout = "sum",
        atomic_energies: Mapping[str, float] | Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if not 0 < cutoff < float("inf"):
            raise ValueError(f"cutoff must be a positive finite number of Å, got {cutoff}")
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; choose one of {READOUTS}")
        self.species: tuple[int, ...] = to_atomic_numbers(species)
        self.cutoff = float(cutoff)
        self.readout: Readout = readout
        self.species_index = SpeciesIndex(self.species)
        self.register_buffer("atomic_energies", torch.zeros(len(self.species)))
        self.register_buffer("scale", torch.ones(()))
        if atomic_energies is not None:
            self.set_atomic_energies(atomic_energies)
        #: Output heads beyond the energy, by name (see :mod:`ase_gnn.models.heads`).
        self.heads: nn.ModuleDict = nn.ModuleDict()
        #: Learned charges and their Coulomb energy, or None (see :meth:`set_long_range`).
        self.electrostatics: Electrostatics | None = None

    def set_long_range(self, long_range: Mapping[str, Any] | bool | None) -> None:
        """Give the model an electrostatic term of learned charges (or none), in place.

        Architectures call this at the end of their constructor with their ``long_range``
        argument, once :attr:`num_features` is known.

        Parameters
        ----------
        long_range
            None or False: short-range only. True: the defaults of
            :class:`~ase_gnn.models.long_range.Electrostatics` (Gaussian charges of width 1 Å,
            accuracy 1e-6, Ewald or PME by size). A mapping: its ``width``, ``accuracy`` and
            ``summation``.

        Raises
        ------
        ValueError
            For unknown settings, or with the ``"mean"`` readout (an intensive energy has no
            electrostatic term).
        """
        if long_range is None or long_range is False:
            self.electrostatics = None
            return
        settings = {} if long_range is True else dict(long_range)
        unknown = sorted(set(settings) - {"width", "accuracy", "summation"})
        if unknown:
            raise ValueError(
                f"unknown long_range setting(s) {unknown}; use width, accuracy, summation"
            )
        if self.readout != "sum":
            raise ValueError("long-range electrostatics needs readout='sum' (an extensive energy)")
        self.electrostatics = Electrostatics(self.num_features, **settings)

    # -- contract ---------------------------------------------------------------------------
    @abstractmethod
    def interaction_energies(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None
    ) -> Tensor:
        """Raw per-atom outputs ε_i ``[N]`` before reference energies and scaling.

        :meth:`forward` passes the caller's batch with one more structure appended, S isolated
        atoms without edges, whose outputs are ε_iso; so structures must not influence each other
        (the batching test of :mod:`ase_gnn.testing` checks this).
        """

    @abstractmethod
    def features(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        """Invariant per-atom features ``[N, F]`` after all interactions (the backbone)."""

    def interaction_energies_and_features(
        self, graph: AtomicGraph, species_index: Tensor, edge_weight: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """:meth:`interaction_energies` ``[N]`` and :meth:`features` ``[N, F]`` of one pass.

        Architectures whose energies are a readout of their features override this to run the
        backbone once; the long-range charges need both.
        """
        return (
            self.interaction_energies(graph, species_index, edge_weight),
            self.features(graph, species_index, edge_weight),
        )

    @property
    @abstractmethod
    def num_features(self) -> int:
        """F, the width of :meth:`features`."""

    @abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments (besides species, cutoff, readout) that rebuild this model."""

    # -- shared behaviour -------------------------------------------------------------------
    def forward(
        self, graph: AtomicGraph, edge_weight: Tensor | None = None, charges: bool = False
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """Local energies ``[N]`` in eV; see the class docstring for ``edge_weight [E]``.

        With ``charges=True``, the pair (energies, charges) of :meth:`energies_and_charges`
        (through the module call, so that ``torch.compile`` and wrappers apply).
        """
        energies, atom_charges = self.energies_and_charges(graph, edge_weight)
        return (energies, atom_charges) if charges else energies

    def energies_and_charges(
        self, graph: AtomicGraph, edge_weight: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Local energies ``[N]`` (eV), as :meth:`forward`, and the charges ``[N]`` (e) of a
        long-range model from the same pass (None for a short-range model)."""
        short_range, electrostatic, charges = self.energy_parts(graph, edge_weight)
        return (short_range if electrostatic is None else short_range + electrostatic), charges

    def energy_parts(
        self, graph: AtomicGraph, edge_weight: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The two parts of the local energies and the charges, from one pass.

        Returns
        -------
        short_range : Tensor
            ``[N]`` E0_i plus the message-passing energy, eV.
        electrostatic : Tensor or None
            ``[N]`` Coulomb energy k_e q_i V_i of the learned charges, eV (None without a
            long-range term); ``short_range + electrostatic`` is :meth:`forward`.
        charges : Tensor or None
            ``[N]`` charges, e (None without a long-range term).
        """
        if edge_weight is not None and edge_weight.shape != (graph.num_edges,):
            raise ValueError(
                f"edge_weight must have shape [{graph.num_edges}] (one per edge), "
                f"got {tuple(edge_weight.shape)}"
            )
        species_index = self.species_index(graph.species)
        # ε_iso is computed in the same pass: the S isolated atoms ride along as one more
        # structure without edges (so edge_index and edge_weight keep their meaning). A separate
        # model call would pay the per-operation overhead again (about 0.5 ms, 3 % of a call on
        # 108 Cu atoms), and unlike a cache this stays exact, gradients included, whenever the
        # parameters change.
        isolated = self._isolated_atoms(graph.dtype, graph.device)
        batch = batch_graphs([graph, isolated])
        index = torch.cat([species_index, torch.arange(isolated.num_atoms, device=graph.device)])
        if self.electrostatics is None:
            raw, features = self.interaction_energies(batch, index, edge_weight), None
        else:
            raw, features = self.interaction_energies_and_features(batch, index, edge_weight)
        num_atoms = graph.num_atoms
        # A one-hot product rather than raw[num_atoms:][species_index]: torch.compile's CPU code
        # generation fails on the backward (a scatter) of indexing into a one-element tensor.
        one_hot = torch.nn.functional.one_hot(species_index, isolated.num_atoms).to(raw.dtype)
        raw = raw[:num_atoms] - one_hot @ raw[num_atoms:]
        energies = self.atomic_energies[species_index] + self.scale * raw
        if self.readout == "mean":
            energies = energies / atoms_per_graph(graph)[graph.batch].to(energies.dtype)
        if self.electrostatics is None or features is None:
            return energies, None, None
        raw_charges = self.electrostatics.charge_network(features).squeeze(-1)
        # relative to an isolated atom's, so that with every edge removed no charge is left
        charges = neutralise(raw_charges[:num_atoms] - one_hot @ raw_charges[num_atoms:], graph)
        return energies, self.electrostatics.energies(graph, charges), charges

    def representation(self, graph: AtomicGraph, edge_weight: Tensor | None = None) -> Tensor:
        """Invariant per-atom features ``[N, F]``: the shared backbone of energy and heads.

        For equivariant models, the scalar (0e) channels. ``edge_weight`` ``[E]`` acts as in
        :meth:`forward`. These are the embeddings of :func:`ase_gnn.embed`.
        """
        return self.features(graph, self.species_index(graph.species), edge_weight)

    def add_head(self, head: Head) -> None:
        """Attach an output head (in place); its ``name`` must be new.

        Raises
        ------
        ValueError
            If the name is taken or the head's ``num_features`` differs from the model's.
        """
        if head.name in self.heads or head.name == "energy":
            raise ValueError(f"the model already has an output named {head.name!r}")
        if head.num_features != self.num_features:
            raise ValueError(
                f"head {head.name!r} expects {head.num_features} features, the model gives "
                f"{self.num_features}"
            )
        reference = self.atomic_energies
        self.heads[head.name] = head.to(device=reference.device, dtype=reference.dtype)

    def head_outputs(
        self,
        graph: AtomicGraph,
        names: Sequence[str] | None = None,
        edge_weight: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Outputs of heads (all if ``names`` is None) from one pass of the backbone.

        Returns
        -------
        dict
            ``{name: [N, C] | [E, C] | [B, C]}`` for node, edge and graph heads.
        """
        names = list(self.heads) if names is None else list(names)
        unknown = [name for name in names if name not in self.heads]
        if unknown:
            raise ValueError(f"no head named {unknown}; the model has {list(self.heads)}")
        features = self.representation(graph, edge_weight)
        return {name: self.heads[name](graph, features) for name in names}

    def reference_energies(self, graph: AtomicGraph) -> Tensor:
        """Local energies ``[N]`` (eV) that the atoms of ``graph`` would have without neighbors.

        E0 of each atom's species (divided by its structure's atom count for the ``"mean"``
        readout): what :meth:`forward` returns when every ``edge_weight`` is zero, so the energy
        of "isolated atoms" that ``explain`` takes as its baseline.
        """
        energies = self.atomic_energies[self.species_index(graph.species)]
        if self.readout == "mean":
            energies = energies / atoms_per_graph(graph)[graph.batch].to(energies.dtype)
        return energies

    def _isolated_atoms(self, dtype: torch.dtype, device: torch.device) -> AtomicGraph:
        """One structure of S atoms, one per species in ``species`` order, without edges."""
        num = len(self.species)
        return AtomicGraph(
            species=torch.tensor(self.species, device=device),
            positions=torch.zeros(num, 3, dtype=dtype, device=device),
            cell=torch.zeros(1, 3, 3, dtype=dtype, device=device),
            pbc=torch.zeros(1, 3, dtype=torch.bool, device=device),
            edge_index=torch.zeros(2, 0, dtype=torch.long, device=device),
            edge_shift=torch.zeros(0, 3, dtype=dtype, device=device),
            batch=torch.zeros(num, dtype=torch.long, device=device),
            ptr=torch.tensor([0, num], device=device),
        )

    def set_atomic_energies(self, atomic_energies: Mapping[str, float] | Sequence[float]) -> None:
        """Set the reference energies E0 (eV), by symbol or in ``species`` order (in place)."""
        if isinstance(atomic_energies, Mapping):
            symbols = [chemical_symbols[z] for z in self.species]
            missing = [s for s in symbols if s not in atomic_energies]
            if missing:
                raise ValueError(f"atomic_energies lacks {missing}")
            values = [float(atomic_energies[s]) for s in symbols]
        else:
            values = [float(v) for v in atomic_energies]
            if len(values) != len(self.species):
                raise ValueError(
                    f"got {len(values)} atomic energies for {len(self.species)} species"
                )
        with torch.no_grad():
            self.atomic_energies.copy_(torch.tensor(values))

    @property
    def species_symbols(self) -> list[str]:
        """Element symbols of ``species``."""
        return [chemical_symbols[z] for z in self.species]

    @property
    def dtype(self) -> torch.dtype:
        """Float dtype of the parameters."""
        return self.atomic_energies.dtype

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.atomic_energies.device

    def config(self) -> dict[str, Any]:
        """JSON-serialisable arguments that rebuild this architecture (weights excluded)."""
        config = {
            "species": self.species_symbols,
            "cutoff": self.cutoff,
            "readout": self.readout,
            **self.hyperparameters(),
        }
        if self.electrostatics is not None:
            config["long_range"] = self.electrostatics.config()
        return config
