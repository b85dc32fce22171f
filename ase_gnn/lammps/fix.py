"""An ase-gnn model as the forces of a LAMMPS ``fix external``, on any number of MPI ranks.

The input script keeps LAMMPS's own terms; the model replaces the pair style::

    units metal
    atom_style atomic
    read_data cu.data
    pair_style zero 5.0          # a cutoff >= the model's: it sets LAMMPS's ghost shell
    pair_coeff * *
    fix gnn all external pf/callback 1 1
    fix nve all nve
    run 1000

and the model is attached before ``run``: by ``ase-gnn lammps`` (:mod:`ase_gnn.lammps.script`)
or from Python with ``attach(lmp, model, fix_id="gnn", types=["Cu"])``. Every step each rank
evaluates the graph of its owned and ghost atoms with the per-layer feature exchange of
:mod:`ase_gnn.lammps.halo`, returns the forces on its owned atoms (ghost contributions added at
their owners) and their energies, and sets the total energy and virial, summed over ranks here
because LAMMPS takes a fix's global values as totals (``thermo pe``, ``press``, ``fix npt`` and
``compute pe/atom`` all work).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase.data import atomic_masses, atomic_numbers

from ase_gnn.calculators.checks import coincident_edge
from ase_gnn.graph.atomic_graph import AtomicGraph
from ase_gnn.lammps.halo import Halo, halo_graph, predict_split
from ase_gnn.models.base import EnergyModel


class ModelFix:
    """The callback of one ``fix external`` that evaluates a model or committee (:func:`attach`)."""

    def __init__(
        self,
        lmp: Any,
        model: EnergyModel | Sequence[EnergyModel],
        fix_id: str,
        types: Sequence[str] | None = None,
        comm: Any | None = None,
    ) -> None:
        units = lmp.extract_global("units")
        if units != "metal":
            raise ValueError(
                f"ase-gnn models work in eV and Å: the input script needs 'units metal', not "
                f"'units {units}'"
            )
        models = [model] if isinstance(model, EnergyModel) else list(model)
        if any(m.readout != "sum" for m in models):
            raise ValueError("LAMMPS needs an extensive energy: the model's readout must be 'sum'")
        if any(m.electrostatics is not None for m in models):
            raise ValueError(
                "long-range (electrostatic) models do not run in LAMMPS yet: the Ewald sum is "
                "global and the ranks split the atoms; use GNNCalculator in ASE or i-PI"
            )
        first = models[0]
        if any((m.cutoff, m.dtype, m.device) != (first.cutoff, first.dtype, first.device)
               for m in models):  # fmt: skip
            raise ValueError("the members of a committee need one cutoff, dtype and device")
        num_types = int(lmp.extract_global("ntypes"))
        if types is None:
            types = types_from_masses(lmp, first.species_symbols)
        if len(types) != num_types:
            raise ValueError(
                f"the box has {num_types} atom types but {len(types)} elements were given "
                f"({list(types)}); give one element per type, in type order"
            )
        unknown = [t for t in types if t not in atomic_numbers]
        if unknown:
            raise ValueError(f"unknown element symbols {unknown} in the type mapping")
        for member in models:
            missing = sorted({t for t in types if atomic_numbers[t] not in member.species})
            if missing:
                raise ValueError(
                    f"the model knows {member.species_symbols}, not {missing} (from the type "
                    "mapping)"
                )
        self.lmp, self.models, self.fix_id = lmp, models, fix_id
        self.numbers = np.array([atomic_numbers[t] for t in types])
        self.comm = comm
        self._halo: Halo | None = None
        self._tags: np.ndarray | None = None
        #: seconds this rank spent per part of the callback, summed over calls (see bench/)
        self.timings = dict.fromkeys(("ghost owners", "graph", "model", "exchange", "rest"), 0.0)
        #: per-atom property with a committee's force spread, eV/Å (dump it, reduce it, halt)
        self.spread_property = f"d_{fix_id}_force_std" if len(models) > 1 else None
        if self.spread_property:
            lmp.command(f"fix {fix_id}_spread all property/atom {self.spread_property} ghost no")
        lmp.command(f"fix_modify {fix_id} energy yes virial yes")
        lmp.set_fix_external_callback(fix_id, self, None)
        ghost_cutoff = communication_cutoff(lmp, comm)
        if ghost_cutoff < first.cutoff:
            raise ValueError(
                f"LAMMPS's ghost shell ({ghost_cutoff:g} Å: pair cutoff + neighbor skin) is "
                f"smaller than the model's cutoff {first.cutoff:g} Å: define 'pair_style zero "
                f"{first.cutoff:g}' and 'pair_coeff * *' before attaching the model"
            )

    def __call__(
        self, caller: Any, step: int, nlocal: int, tag: np.ndarray, x: np.ndarray, f: np.ndarray
    ) -> None:
        """Fill LAMMPS's force array ``f`` ``[nlocal, 3]`` and set energy and virial.

        An error stops LAMMPS on all ranks (``ERROR on proc ...: ase-gnn ...``): an exception
        raised inside a ``fix external`` callback would otherwise be printed and ignored, and
        the step would go on with zero forces.
        """
        try:
            self._evaluate(nlocal, f)
        except Exception as error:  # noqa: BLE001  (any failure must end the run, not be lost)
            if not isinstance(error, ValueError):  # a bug, not a user error: keep its traceback
                traceback.print_exc(file=sys.stderr)
            self.lmp.error(1, f"ase-gnn model evaluation failed: {type(error).__name__}: {error}")

    def _evaluate(self, nlocal: int, f: np.ndarray) -> None:
        lmp, clock = self.lmp, _Clock(self.timings)
        nall = int(lmp.extract_setting("nall"))
        tags = np.array(lmp.numpy.extract_atom("id", nelem=nall), dtype=np.int64)
        positions = np.array(lmp.numpy.extract_atom("x", nelem=nall, dim=3), dtype=np.float64)
        types = np.array(lmp.numpy.extract_atom("type", nelem=nall), dtype=np.int64)
        # the ghost list changes only when LAMMPS re-neighbours; all ranks rebuild together
        changed = self._tags is None or not np.array_equal(self._tags, tags)
        if self.comm is not None and self.comm.Get_size() > 1:
            changed = bool(self.comm.allreduce(changed, op=_mpi_max()))
        if changed or self._halo is None:
            self._halo, self._tags = Halo(tags, nlocal, self.comm), tags
        clock("ghost owners")
        model = self.models[0]
        graph = halo_graph(
            self.numbers[types - 1], positions, self._halo, model.cutoff, model.dtype
        ).to(model.device)
        _check_distinct(graph, tags[self._halo.node_rows])
        clock("graph")
        exchanged = self._halo.exchange_seconds
        members = [predict_split(member, graph, self._halo) for member in self.models]
        clock("model")
        exchanged = self._halo.exchange_seconds - exchanged
        self.timings["model"] -= exchanged
        self.timings["exchange"] += exchanged
        forces = np.stack([m.forces for m in members])
        local_energies = np.mean([m.local_energies for m in members], axis=0)
        if not (np.isfinite(forces).all() and np.isfinite(local_energies).all()):
            raise ValueError("the model returned non-finite energies or forces")
        f[:] = forces.mean(axis=0)
        if self.spread_property:  # as CommitteeCalculator's forces_std
            spread = lmp.numpy.extract_atom(self.spread_property)
            spread[:nlocal] = np.sqrt(forces.var(axis=0).sum(axis=1))
        energy = np.mean([m.energy for m in members])
        w = np.mean([m.virial for m in members], axis=0)
        # LAMMPS takes a fix's global energy and virial as totals (it does not sum them over
        # ranks, unlike per-atom values): 7 numbers to add up
        totals = np.array([energy, w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])
        if self.comm is not None and self.comm.Get_size() > 1:
            totals = self.comm.allreduce(totals, op=_mpi_sum())
        lmp.fix_external_set_energy_global(self.fix_id, float(totals[0]))
        lmp.fix_external_set_virial_global(self.fix_id, [float(v) for v in totals[1:]])
        lmp.numpy.fix_external_set_energy_peratom(self.fix_id, local_energies)
        clock("rest")


class _Clock:
    """Adds the seconds since the previous call to ``timings[part]``."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings, self.last = timings, time.perf_counter()

    def __call__(self, part: str) -> None:
        now = time.perf_counter()
        self.timings[part] += now - self.last
        self.last = now


def _check_distinct(graph: AtomicGraph, tags: np.ndarray) -> None:
    """Raise ``ValueError`` naming (by atom ID) two atoms at the same position."""
    found = coincident_edge(graph)
    if found is not None:
        i, j = sorted(int(tags[graph.edge_index[k, found[0]]]) for k in (0, 1))
        raise ValueError(
            f"atoms with IDs {i} and {j} are at the same position: the model's energy is not "
            "defined there; remove the duplicate atom"
        )


def types_from_masses(lmp: Any, symbols: Sequence[str], tolerance: float = 0.1) -> list[str]:
    """Element of every LAMMPS atom type from its mass (``mass`` or ``read_data`` ``Masses``).

    Parameters
    ----------
    lmp
        A ``lammps.lammps`` instance whose box exists and whose masses are set.
    symbols
        The elements to choose from (the model's).
    tolerance
        Largest difference, in atomic mass units, between a type's mass and the element's.

    Returns
    -------
    list[str]
        One element symbol per type, type 1 first.

    Raises
    ------
    ValueError
        If a type's mass matches none or more than one of ``symbols``.
    """
    masses = np.asarray(lmp.numpy.extract_atom("mass"), dtype=float)[1:]
    elements = []
    for index, mass in enumerate(masses, start=1):
        close = [s for s in symbols if abs(atomic_masses[atomic_numbers[s]] - mass) < tolerance]
        if len(close) != 1:
            found = "no element" if not close else f"elements {close}"
            raise ValueError(
                f"atom type {index} has mass {mass:g}, which matches {found} of the model's "
                f"{list(symbols)}: give the elements of the types explicitly (types=... or "
                f"--types)"
            )
        elements.append(close[0])
    return elements


def communication_cutoff(lmp: Any, comm: Any | None = None) -> float:
    """LAMMPS's ghost-shell cutoff in Å (``Communication cutoff`` of ``info communication``).

    LAMMPS knows it only once initialised (pair cutoff + neighbour skin, or ``comm_modify
    cutoff``); ``write_coeff`` initialises it without running a step, and rank 0 reads the
    value, which it shares with all ranks.
    """
    root = comm is None or comm.Get_rank() == 0
    folder = tempfile.mkdtemp(prefix="ase_gnn_lammps_") if root else ""
    if comm is not None:
        folder = comm.bcast(folder)
    info = os.path.join(folder, "info.txt")
    cutoff = float("nan")
    try:
        lmp.command(f"write_coeff {os.path.join(folder, 'coeff.txt')}")
        lmp.command(f"info communication out overwrite {info}")
        if root:
            with open(info) as text:
                line = next(line for line in text if line.startswith("Communication cutoff"))
            cutoff = float(line.split("=")[1])
    finally:
        if comm is not None:
            cutoff = comm.bcast(cutoff)
        if root:
            shutil.rmtree(folder)
    return cutoff


def _mpi_max() -> Any:
    from mpi4py import MPI

    return MPI.MAX


def _mpi_sum() -> Any:
    from mpi4py import MPI

    return MPI.SUM


def attach(
    lmp: Any,
    model: EnergyModel | Sequence[EnergyModel],
    fix_id: str,
    types: Sequence[str] | None = None,
    comm: Any | None = None,
) -> ModelFix:
    """Make ``fix <fix_id> all external pf/callback 1 1`` evaluate ``model``.

    Parameters
    ----------
    lmp
        A ``lammps.lammps`` instance whose box exists and whose script defines the fix.
    model
        The potential (``"sum"`` readout), on the device and dtype to evaluate in; or the
        members of a committee (one cutoff, dtype and device), whose mean energy, forces and
        virial LAMMPS gets, with each atom's force spread (as ``forces_std`` of
        :class:`~ase_gnn.CommitteeCalculator`, eV/Å) in the per-atom property
        ``d_<fix_id>_force_std`` that the input script can dump, reduce and halt on.
    fix_id
        ID of the ``fix external`` in the input script.
    types
        Element symbol of every LAMMPS atom type, in type order (type 1 first). None reads
        them from the types' masses where each matches exactly one of the model's elements
        (:func:`types_from_masses`).
    comm
        The ``mpi4py`` communicator LAMMPS runs on (``MPI.COMM_WORLD`` by default when more than
        one rank runs); None on one process.

    Returns
    -------
    ModelFix
        The callback; keep a reference for as long as LAMMPS runs.

    Raises
    ------
    ValueError
        If the script's units are not ``metal``, a type has no element, the model lacks an
        element, or LAMMPS's ghost shell (communication cutoff) is smaller than the model's
        cutoff.
    """
    if comm is None and int(lmp.extract_setting("world_size")) > 1:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    return ModelFix(lmp, model, fix_id, types, comm)
