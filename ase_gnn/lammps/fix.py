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

and Python attaches the model before ``run``: ``attach(lmp, model, fix_id="gnn",
types=["Cu"])``. Every step each rank evaluates the graph of its owned and ghost atoms with the
per-layer feature exchange of :mod:`ase_gnn.lammps.halo`, returns the forces on its owned atoms
(ghost contributions added at their owners), and sets its share of the energy, per-atom energies
and the virial, which LAMMPS sums over ranks (``thermo pe``, ``press``, ``fix npt``, ``compute
pe/atom`` all work).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ase.data import atomic_numbers

from ase_gnn.lammps.halo import Halo, halo_graph, predict_split
from ase_gnn.models.base import EnergyModel


class ModelFix:
    """The callback of one ``fix external`` that evaluates ``model`` (see :func:`attach`)."""

    def __init__(
        self,
        lmp: Any,
        model: EnergyModel,
        fix_id: str,
        types: Sequence[str],
        comm: Any | None = None,
    ) -> None:
        units = lmp.extract_global("units")
        if units != "metal":
            raise ValueError(
                f"ase-gnn models work in eV and Å: the input script needs 'units metal', not "
                f"'units {units}'"
            )
        if model.readout != "sum":
            raise ValueError("LAMMPS needs an extensive energy: the model's readout must be 'sum'")
        num_types = int(lmp.extract_global("ntypes"))
        if len(types) != num_types:
            raise ValueError(
                f"the box has {num_types} atom types but {len(types)} elements were given "
                f"({list(types)}); give one element per type, in type order"
            )
        unknown = [t for t in types if t not in atomic_numbers]
        if unknown:
            raise ValueError(f"unknown element symbols {unknown} in the type mapping")
        missing = sorted({t for t in types if atomic_numbers[t] not in model.species})
        if missing:
            raise ValueError(
                f"the model knows {model.species_symbols}, not {missing} (from the type mapping)"
            )
        self.lmp, self.model, self.fix_id = lmp, model, fix_id
        self.numbers = np.array([atomic_numbers[t] for t in types])
        self.comm = comm
        self._halo: Halo | None = None
        self._tags: np.ndarray | None = None
        lmp.command(f"fix_modify {fix_id} energy yes virial yes")
        lmp.set_fix_external_callback(fix_id, self, None)

    def __call__(
        self, caller: Any, step: int, nlocal: int, tag: np.ndarray, x: np.ndarray, f: np.ndarray
    ) -> None:
        """Fill LAMMPS's force array ``f`` ``[nlocal, 3]`` and set energy and virial."""
        lmp = self.lmp
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
        graph = halo_graph(
            self.numbers[types - 1], positions, nlocal, self.model.cutoff, self.model.dtype
        ).to(self.model.device)
        result = predict_split(self.model, graph, self._halo)
        f[:] = result.forces
        w = result.virial
        # LAMMPS takes a fix's global energy and virial as totals (it does not sum them over
        # ranks, unlike per-atom values): 7 numbers to add up
        totals = np.array([result.energy, w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])
        if self.comm is not None and self.comm.Get_size() > 1:
            totals = self.comm.allreduce(totals, op=_mpi_sum())
        lmp.fix_external_set_energy_global(self.fix_id, float(totals[0]))
        lmp.fix_external_set_virial_global(self.fix_id, [float(v) for v in totals[1:]])
        lmp.numpy.fix_external_set_energy_peratom(self.fix_id, result.local_energies)


def _mpi_max() -> Any:
    from mpi4py import MPI

    return MPI.MAX


def _mpi_sum() -> Any:
    from mpi4py import MPI

    return MPI.SUM


def attach(
    lmp: Any,
    model: EnergyModel,
    fix_id: str,
    types: Sequence[str],
    comm: Any | None = None,
) -> ModelFix:
    """Make ``fix <fix_id> all external pf/callback 1 1`` evaluate ``model``.

    Parameters
    ----------
    lmp
        A ``lammps.lammps`` instance whose box exists and whose script defines the fix.
    model
        The potential (``"sum"`` readout), on the device and dtype to evaluate in.
    fix_id
        ID of the ``fix external`` in the input script.
    types
        Element symbol of every LAMMPS atom type, in type order (type 1 first).
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
        If the script's units are not ``metal``, a type has no element, or the model lacks an
        element.
    """
    if comm is None and int(lmp.extract_setting("world_size")) > 1:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    return ModelFix(lmp, model, fix_id, types, comm)
