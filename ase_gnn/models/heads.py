"""Output heads on the shared backbone: node-, edge- and graph-level regression or classification.

Every architecture exposes :meth:`ase_gnn.EnergyModel.representation`, invariant per-atom
features ``[N, F]`` after all interactions; the energy is one head on them (built into the
model), and any number of further heads can be added with :meth:`EnergyModel.add_head`:

=========  ==================================================================  ==============
head       input                                                               output
=========  ==================================================================  ==============
node       features h_i                                                        ``[N, C]``
edge       h_i + h_j, h_i ⊙ h_j and the Bessel basis of |r_ij| (symmetric in   ``[E, C]``
           i and j, so both directions of a bond get the same output)
graph      per-atom MLP, then sum or mean over the structure, then an MLP      ``[B, C]``
=========  ==================================================================  ==============

C is ``num_outputs`` for regression and the number of classes for classification (the outputs
are then logits; class names are stored with the head, and in the model file).

Every subclass of :class:`Head` is registered in :data:`HEADS` under its class name when it is
defined, and model files name each head's class, so a user's head (say
``class ShiftedCharges(NodeHead)``) round-trips through :func:`ase_gnn.save_model` and
:func:`ase_gnn.load_model` once the module that defines it has been imported; the built-in heads
stay what they are. A configuration that names only a ``level`` (training tables, model files of
format version 1) builds the built-in head of that level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from ase_gnn.graph.atomic_graph import AtomicGraph, atoms_per_graph, edge_vectors, sum_per_graph
from ase_gnn.models.nn.mlp import MLP, xavier_init_
from ase_gnn.models.nn.radial import BesselBasis

Task = Literal["regression", "classification"]
TASKS: tuple[str, ...] = ("regression", "classification")
Level = Literal["node", "edge", "graph"]
LEVELS: tuple[str, ...] = ("node", "edge", "graph")

#: Head classes by class name: the allow-list that model files are loaded from.
HEADS: dict[str, type[Head]] = {}


def _register(cls: type[Head]) -> None:
    """Add ``cls`` to :data:`HEADS` under its name; ``ValueError`` if another class has it.

    The same class defined again (a re-run notebook cell, ``importlib.reload``) is no clash: its
    module and qualified name are those of the registered one, and it replaces it.
    """
    if getattr(cls, "level", None) not in LEVELS:
        raise TypeError(f"head class {cls.__name__} must set level to one of {LEVELS}")
    taken = HEADS.get(cls.__name__)
    if taken is not None and (taken.__module__, taken.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise ValueError(
            f"a head class named {cls.__name__!r} is defined in {cls.__module__} and already in "
            f"{taken.__module__}; model files name heads by class, so give it another name"
        )
    HEADS[cls.__name__] = cls


class Head(nn.Module):
    """Base of the output heads (see the module docstring).

    Parameters
    ----------
    name
        Key of the head in the model and of its labels (e.g. ``"charges"``).
    num_features
        F, the width of the model's representation.
    task
        ``"regression"`` or ``"classification"``.
    num_outputs
        Outputs per item for regression (ignored for classification).
    classes
        Class names, in output order, for classification.
    hidden
        Width of the hidden layer of the MLPs.
    """

    level: ClassVar[Level]

    def __init__(
        self,
        name: str,
        num_features: int,
        task: Task = "regression",
        num_outputs: int = 1,
        classes: Sequence[str] = (),
        hidden: int = 64,
    ) -> None:
        super().__init__()
        if not name.isidentifier():
            raise ValueError(f"head name must be an identifier, got {name!r}")
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if task == "classification" and len(set(classes)) < 2:
            raise ValueError(f"classification needs two or more distinct classes, got {classes}")
        if task == "regression" and num_outputs < 1:
            raise ValueError(f"num_outputs must be >= 1, got {num_outputs}")
        self.name, self.task, self.hidden = name, task, hidden
        self.num_features = num_features
        self.classes = tuple(str(c) for c in classes) if task == "classification" else ()
        self.num_outputs = len(self.classes) if self.classes else num_outputs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)

    def config(self) -> dict[str, Any]:
        """JSON-serialisable arguments that rebuild this head (weights excluded).

        ``class`` and ``level`` identify the head's class (see :func:`build_head`); a subclass
        with constructor arguments of its own adds them to this dictionary.
        """
        return {
            "class": type(self).__name__,
            "level": self.level,
            "name": self.name,
            "num_features": self.num_features,
            "task": self.task,
            "num_outputs": self.num_outputs,
            "classes": list(self.classes),
            "hidden": self.hidden,
        }

    def forward(self, graph: AtomicGraph, features: Tensor) -> Tensor:  # pragma: no cover
        """Outputs for ``graph`` from the per-atom ``features [N, F]``."""
        raise NotImplementedError


class NodeHead(Head):
    """Per-atom outputs ``[N, C]`` (e.g. charges, the element of a masked atom)."""

    level = "node"

    def __init__(self, name: str, num_features: int, **kwargs: Any) -> None:
        super().__init__(name, num_features, **kwargs)
        self.mlp = MLP([num_features, self.hidden, self.num_outputs])
        xavier_init_(self)

    def forward(self, graph: AtomicGraph, features: Tensor) -> Tensor:
        """``[N, C]``."""
        return self.mlp(features)


class EdgeHead(Head):
    """Per-edge outputs ``[E, C]``, the same for both directions of a bond (e.g. bond orders).

    Parameters
    ----------
    cutoff
        The model's cutoff, Å (range of the Bessel basis of bond lengths).
    num_radial
        Number of Bessel functions of the bond length.
    """

    level = "edge"

    def __init__(
        self, name: str, num_features: int, cutoff: float, num_radial: int = 8, **kwargs: Any
    ) -> None:
        super().__init__(name, num_features, **kwargs)
        self.cutoff, self.num_radial = float(cutoff), num_radial
        self.radial = BesselBasis(cutoff, num_radial)
        self.mlp = MLP([2 * num_features + num_radial, self.hidden, self.num_outputs])
        xavier_init_(self)

    def config(self) -> dict[str, Any]:
        """As :meth:`Head.config`, with the radial basis."""
        return {**super().config(), "cutoff": self.cutoff, "num_radial": self.num_radial}

    def forward(self, graph: AtomicGraph, features: Tensor) -> Tensor:
        """``[E, C]``."""
        center, neighbor = graph.edge_index
        h_i, h_j = features.index_select(0, center), features.index_select(0, neighbor)
        lengths = edge_vectors(graph).norm(dim=-1)
        return self.mlp(torch.cat([h_i + h_j, h_i * h_j, self.radial(lengths)], dim=-1))


class GraphHead(Head):
    """Per-structure outputs ``[B, C]`` (e.g. a HOMO-LUMO gap, the crystal phase).

    Parameters
    ----------
    readout
        ``"sum"`` (extensive) or ``"mean"`` (intensive) over the atoms of a structure.
    """

    level = "graph"

    def __init__(
        self,
        name: str,
        num_features: int,
        readout: Literal["sum", "mean"] = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(name, num_features, **kwargs)
        if readout not in ("sum", "mean"):
            raise ValueError(f"readout must be 'sum' or 'mean', got {readout!r}")
        self.readout = readout
        self.atom_mlp = MLP([num_features, self.hidden, self.hidden])
        self.graph_mlp = MLP([self.hidden, self.hidden, self.num_outputs])
        xavier_init_(self)

    def config(self) -> dict[str, Any]:
        """As :meth:`Head.config`, with the readout."""
        return {**super().config(), "readout": self.readout}

    def forward(self, graph: AtomicGraph, features: Tensor) -> Tensor:
        """``[B, C]``."""
        pooled = sum_per_graph(self.atom_mlp(features), graph)
        if self.readout == "mean":
            pooled = pooled / atoms_per_graph(graph).clamp(min=1).to(pooled.dtype)[:, None]
        return self.graph_mlp(pooled)


#: The head each level builds when a configuration names no class (never a user's subclass).
BUILT_IN_HEADS: dict[str, type[Head]] = {"node": NodeHead, "edge": EdgeHead, "graph": GraphHead}


def build_head(config: dict[str, Any]) -> Head:
    """A head from its :meth:`Head.config`.

    ``class`` picks a registered class from :data:`HEADS`; without it (training configurations,
    model files of format version 1) ``level`` picks the built-in head of that level.

    Raises
    ------
    ValueError
        For an unknown level, a class that is not registered, or a class of another level.
    """
    arguments = dict(config)
    level = arguments.pop("level", None)
    name = arguments.pop("class", None)
    if level not in LEVELS:
        raise ValueError(f"unknown head level {level!r}; choose one of {LEVELS}")
    if name is None:
        return BUILT_IN_HEADS[level](**arguments)
    if name not in HEADS:
        raise ValueError(
            f"head class {name!r} is not registered (known: {sorted(HEADS)}); import the module "
            "that defines it before loading the model"
        )
    cls = HEADS[name]
    if cls.level != level:
        raise ValueError(f"head class {name!r} is a {cls.level!r} head, the config says {level!r}")
    return cls(**arguments)
