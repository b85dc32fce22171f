"""Ghost atoms and their owners: the feature exchange that keeps a split graph exact.

LAMMPS splits the box over MPI ranks. A rank *owns* ``nlocal`` atoms and holds ``nghost`` ghost
copies of atoms within the ghost cutoff of its subdomain: periodic images of its own atoms, or
copies of atoms another rank owns. A model of L message-passing layers sees L cutoffs around
an atom, but the ghost shell is one cutoff (plus LAMMPS's skin) wide. The split stays exact
because every layer first overwrites each ghost's features with its owner's current features
(:class:`Halo`, applied through :func:`~ase_gnn.models.nn.message_passing.halo_exchange`); in
the backward pass the gradients that reach ghost rows travel back to the owners and are added
there. Each rank computes the layers for its owned atoms from edges whose centre it owns, so
every edge of the global graph is evaluated exactly once.

Who owns a ghost is found from atom IDs (tags) when the ghost list changes (at LAMMPS's
re-neighbouring steps): owned atoms are registered at a directory rank ``tag % P``, which
answers each ghost's owner rank and row. Between those steps only the features move, and only
between a rank and the ranks that own its ghosts, so communication grows with the ghost count.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ase_gnn.graph.atomic_graph import AtomicGraph
from ase_gnn.graph.neighbors import neighbor_pairs
from ase_gnn.models.base import EnergyModel
from ase_gnn.models.nn.message_passing import halo_exchange


class Halo:
    """Which rows of a rank's ``[nlocal + nghost]`` atoms are ghosts, and where their owners are.

    Parameters
    ----------
    tags
        ``[nlocal + nghost]`` integer atom IDs of owned atoms (first ``nlocal``) and ghosts.
    nlocal
        Number of owned atoms.
    comm
        An ``mpi4py`` communicator over all ranks of the simulation, or None for one process
        (every ghost is then a periodic image of an owned atom).

    Raises
    ------
    ValueError
        If a ghost's ID is owned by no rank (or by this rank twice).
    """

    def __init__(self, tags: np.ndarray, nlocal: int, comm: Any | None = None) -> None:
        tags = np.asarray(tags, dtype=np.int64)
        self.num_owned = int(nlocal)
        self.num_rows = len(tags)
        self.comm: Any = comm if comm is not None and comm.Get_size() > 1 else None
        owned = tags[:nlocal]
        order = np.argsort(owned, kind="stable")
        if len(owned) and np.any(np.diff(owned[order]) == 0):
            raise ValueError("two owned atoms share an atom ID")
        ghosts = np.arange(nlocal, len(tags))
        slot, is_local = _lookup(owned[order], tags[nlocal:])
        #: ghost rows whose owner is on this rank, and the owners' rows
        self.ghost_rows = torch.from_numpy(ghosts[is_local])
        self.owner_rows = torch.from_numpy(order[slot[is_local]])
        #: per peer rank: owned rows it needs (in its order) and the ghost rows it fills here
        self.peers: list[int] = []
        self.send_rows: list[Tensor] = []
        self.recv_rows: list[Tensor] = []
        remote = ghosts[~is_local]
        if self.comm is None:
            if len(remote):
                raise ValueError(
                    f"{len(remote)} ghost atoms (IDs {tags[remote[:3]].tolist()}, ...) are not "
                    "owned by this process, and there is no communicator to find their owners"
                )
            return
        self._find_remote_owners(owned, tags[remote], remote)

    def _find_remote_owners(
        self, owned: np.ndarray, remote_tags: np.ndarray, remote: np.ndarray
    ) -> None:
        """Ask directory ranks who owns each remote ghost, then tell the owners what to send."""
        comm = self.comm
        size = comm.Get_size()
        # 1. register owned atoms (tag, row) at their directory rank tag % P
        rows = np.arange(len(owned))
        registered = comm.alltoall([np.stack([owned, rows])[:, owned % size == r]
                                    for r in range(size)])  # fmt: skip
        sources = [np.full(part.shape[1], r) for r, part in enumerate(registered)]
        directory_tags = np.concatenate([part[0] for part in registered])
        directory_owner = np.stack(
            [np.concatenate(sources), np.concatenate([part[1] for part in registered])]
        )
        order = np.argsort(directory_tags)
        directory_tags = directory_tags[order]
        directory_owner = directory_owner[:, order]
        # 2. ask the directory about every remote ghost
        asked = comm.alltoall([remote_tags[remote_tags % size == r] for r in range(size)])
        answers = []
        for question in asked:
            slot, found = _lookup(directory_tags, question)
            if not found.all():
                missing = question[~found][:3].tolist()
                raise ValueError(f"ghost atom IDs {missing} are owned by no rank")
            answers.append(directory_owner[:, slot])
        answered = comm.alltoall(answers)
        owner_rank = np.empty(len(remote_tags), np.int64)
        owner_row = np.empty(len(remote_tags), np.int64)
        for r in range(size):
            mask = remote_tags % size == r
            owner_rank[mask], owner_row[mask] = answered[r]
        # 3. every owner learns which of its rows each ghost holder needs, in the holder's order
        requests = comm.alltoall([owner_row[owner_rank == r] for r in range(size)])
        for peer in range(size):
            wanted = requests[peer]
            filled = remote[owner_rank == peer]
            if len(wanted) or len(filled):
                self.peers.append(peer)
                self.send_rows.append(torch.from_numpy(np.ascontiguousarray(wanted)))
                self.recv_rows.append(torch.from_numpy(np.ascontiguousarray(filled)))

    # -- the exchange --------------------------------------------------------------------------
    def fill_ghosts(self, x: Tensor) -> Tensor:
        """``x`` ``[M, ...]`` (M ≥ nlocal + nghost) with every ghost row set to its owner's row."""
        out = x.clone()
        out[self.ghost_rows.to(x.device)] = x[self.owner_rows.to(x.device)]
        received = self._swap(x, self.send_rows, self.recv_rows)
        for rows, values in zip(self.recv_rows, received):
            out[rows.to(x.device)] = values
        return out

    def add_ghosts_to_owners(self, g: Tensor) -> Tensor:
        """The adjoint of :meth:`fill_ghosts`: ghost rows of ``g`` added to their owners' rows.

        Ghost rows of the result are zero. Used for feature gradients and for forces.
        """
        out = g.clone()
        out.index_add_(0, self.owner_rows.to(g.device), g[self.ghost_rows.to(g.device)])
        received = self._swap(g, self.recv_rows, self.send_rows)
        for rows, values in zip(self.send_rows, received):
            out.index_add_(0, rows.to(g.device), values)
        out[self.num_owned : self.num_rows] = 0
        return out

    def __call__(self, x: Tensor) -> Tensor:
        """:meth:`fill_ghosts`, differentiable (for :func:`halo_exchange`)."""
        return _Exchange.apply(x, self)

    def _swap(self, x: Tensor, send: list[Tensor], recv: list[Tensor]) -> list[Tensor]:
        """Send ``x[send[k]]`` to peer k and receive ``len(recv[k])`` rows from it."""
        if not self.peers:
            return []
        from mpi4py import MPI

        shape = x.shape[1:]
        buffers = [np.empty((len(rows), *shape), dtype=np.float64) for rows in recv]
        outgoing = [
            np.ascontiguousarray(x[rows.to(x.device)].detach().cpu().numpy(), dtype=np.float64)
            for rows in send
        ]
        requests = [self.comm.Irecv(buf, source=peer) for peer, buf in zip(self.peers, buffers)]
        requests += [self.comm.Isend(buf, dest=peer) for peer, buf in zip(self.peers, outgoing)]
        MPI.Request.Waitall(requests)
        return [torch.from_numpy(buf).to(device=x.device, dtype=x.dtype) for buf in buffers]


def _lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``queries`` in ``sorted_keys`` and whether each is there."""
    slot = np.searchsorted(sorted_keys, queries)
    found = slot < len(sorted_keys)
    found[found] = sorted_keys[slot[found]] == queries[found]
    return slot, found


class _Exchange(torch.autograd.Function):
    """Ghost rows ← owners' rows; the backward pass adds ghost gradients to the owners."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, halo: Halo) -> Tensor:
        ctx.halo = halo
        return halo.fill_ghosts(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return ctx.halo.add_ghosts_to_owners(grad), None


def halo_graph(
    species: np.ndarray, positions: np.ndarray, nlocal: int, cutoff: float, dtype: torch.dtype
) -> AtomicGraph:
    """The graph a rank evaluates: all its atoms as nodes, edges only from owned centres.

    Ghost positions are already periodic images, so the graph is not periodic (no cell, no
    shifts), and edges into ghosts are not needed: ghosts' features come from their owners.

    Parameters
    ----------
    species
        ``[nlocal + nghost]`` atomic numbers.
    positions
        ``[nlocal + nghost, 3]`` positions in Å (owned atoms first).
    nlocal
        Number of owned atoms.
    cutoff
        The model's cutoff in Å.
    dtype
        Float dtype of the graph (edges are found in float64).

    Returns
    -------
    AtomicGraph
        One structure of ``nlocal + nghost`` atoms.
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    num = len(positions)
    if num:
        center, neighbor, _ = neighbor_pairs(positions, np.zeros((3, 3)), np.zeros(3, bool), cutoff)
        keep = center < nlocal
        center, neighbor = center[keep], neighbor[keep]
    else:
        center = neighbor = np.zeros(0, np.int64)
    return AtomicGraph(
        species=torch.as_tensor(np.asarray(species, np.int64)),
        positions=torch.as_tensor(positions).to(dtype),
        cell=torch.zeros(1, 3, 3, dtype=dtype),
        pbc=torch.zeros(1, 3, dtype=torch.bool),
        edge_index=torch.as_tensor(np.stack([center, neighbor])),
        edge_shift=torch.zeros(len(center), 3, dtype=dtype),
        batch=torch.zeros(num, dtype=torch.long),
        ptr=torch.tensor([0, num]),
    )


@dataclass(frozen=True)
class SplitPrediction:
    """One rank's share of a split evaluation.

    Attributes
    ----------
    energy
        Sum of the owned atoms' local energies, eV (the ranks' values add up to the total).
    local_energies
        ``[nlocal]`` owned atoms' energies, eV.
    forces
        ``[nlocal]`` × 3 total forces on owned atoms, eV/Å (ghost contributions included).
    virial
        ``[3, 3]`` this rank's share of the virial W = Σ r ⊗ f, eV (W = −V σ summed over ranks).
    """

    energy: float
    local_energies: np.ndarray
    forces: np.ndarray
    virial: np.ndarray


def predict_split(model: EnergyModel, graph: AtomicGraph, halo: Halo) -> SplitPrediction:
    """Energy, forces and virial of a rank's owned atoms from its :func:`halo_graph`.

    Every rank of the communicator must call this together (the exchanges are collective
    between peers), whatever the ambient autograd mode.

    Parameters
    ----------
    model
        Any model built from :class:`~ase_gnn.models.nn.message_passing.MessagePassing` layers
        with the ``"sum"`` readout.
    graph
        The rank's graph (:func:`halo_graph`), on the model's device and dtype.
    halo
        Ghost ownership for the same rows.

    Returns
    -------
    SplitPrediction
    """
    with torch.enable_grad(), halo_exchange(halo):
        positions = graph.positions.detach().requires_grad_(True)
        local = model(replace(graph, positions=positions))[: halo.num_owned]
        energy = local.sum()
        (gradient,) = torch.autograd.grad(energy, positions)
    forces = -gradient.detach()
    # Σ x ⊗ f over owned and ghost copies is Σ over this rank's edges of r_ij ⊗ f_ij
    virial = positions.detach().T @ forces
    forces = halo.add_ghosts_to_owners(forces)[: halo.num_owned]
    return SplitPrediction(
        energy=float(energy.detach()),
        local_energies=local.detach().cpu().double().numpy(),
        forces=forces.cpu().double().numpy(),
        virial=virial.cpu().double().numpy(),
    )
