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

Ghosts that are periodic images of the rank's own atoms are not nodes at all: an edge to such
an image points at the owned atom, with the image's displacement as the edge shift (the graph's
cell is the identity, so shifts are in Å). On one rank the graph is then the periodic graph of
the cell, and the exchange does nothing; on several ranks only ghosts owned elsewhere are
nodes.

Who owns a ghost is found from atom IDs (tags) when the ghost list changes (at LAMMPS's
re-neighbouring steps): owned atoms are registered at a directory rank ``tag % P``, which
answers each ghost's owner rank and row. Between those steps only the features move, and only
between a rank and the ranks that own its ghosts, so communication grows with the ghost count.
"""

from __future__ import annotations

import time
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
    """The nodes of a rank's graph, and where the owners of its ghost nodes are.

    Rows are LAMMPS's ``[nlocal + nghost]`` atoms. Nodes are the owned atoms (rows ``0 ..
    nlocal-1``, same order) followed by the ghosts owned by other ranks; a ghost that is an image
    of an owned atom is that atom's node (see the module docstring).

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
        self.comm: Any = comm if comm is not None and comm.Get_size() > 1 else None
        owned = tags[:nlocal]
        order = np.argsort(owned, kind="stable")
        if len(owned) and np.any(np.diff(owned[order]) == 0):
            raise ValueError("two owned atoms share an atom ID")
        ghosts = np.arange(nlocal, len(tags))
        slot, is_local = _lookup(owned[order], tags[nlocal:])
        remote = ghosts[~is_local]
        #: ``[nlocal + nghost]`` node of every row; ``[num_nodes]`` row of every node
        self.node_of_row = np.arange(len(tags))
        self.node_of_row[ghosts[is_local]] = order[slot[is_local]]
        self.node_of_row[remote] = nlocal + np.arange(len(remote))
        self.node_rows = np.concatenate([np.arange(nlocal), remote])
        self.num_nodes = len(self.node_rows)
        #: per peer rank: owned nodes it needs (in its order) and the ghost nodes it fills here
        self.peers: list[int] = []
        self.send_rows: list[Tensor] = []
        self.recv_rows: list[Tensor] = []
        #: seconds spent in exchanges with peers (both directions)
        self.exchange_seconds = 0.0
        if self.comm is None:
            if len(remote):
                raise ValueError(
                    f"{len(remote)} ghost atoms (IDs {tags[remote[:3]].tolist()}, ...) are not "
                    "owned by this process, and there is no communicator to find their owners"
                )
            return
        self._find_remote_owners(owned, tags[remote], nlocal + np.arange(len(remote)))

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
        """``x`` ``[num_nodes, ...]`` with every ghost node's row set to its owner's row."""
        if not self.peers:
            return x
        out = x.clone()
        received = self._swap(x, self.send_rows, self.recv_rows)
        for rows, values in zip(self.recv_rows, received):
            out[rows.to(x.device)] = values
        return out

    def add_ghosts_to_owners(self, g: Tensor) -> Tensor:
        """The adjoint of :meth:`fill_ghosts`: ghost rows of ``g`` added to their owners' rows.

        Ghost rows of the result are zero. Used for feature gradients and for forces.
        """
        if not self.peers:
            return g
        out = g.clone()
        received = self._swap(g, self.recv_rows, self.send_rows)
        for rows, values in zip(self.send_rows, received):
            out.index_add_(0, rows.to(g.device), values)
        out[self.num_owned : self.num_nodes] = 0
        return out

    def __call__(self, x: Tensor) -> Tensor:
        """:meth:`fill_ghosts`, differentiable (for :func:`halo_exchange`)."""
        return _Exchange.apply(x, self)

    def _swap(self, x: Tensor, send: list[Tensor], recv: list[Tensor]) -> list[Tensor]:
        """Send ``x[send[k]]`` to peer k and receive ``len(recv[k])`` rows from it."""
        if not self.peers:
            return []
        from mpi4py import MPI

        start = time.perf_counter()

        shape = x.shape[1:]
        buffers = [np.empty((len(rows), *shape), dtype=np.float64) for rows in recv]
        outgoing = [
            np.ascontiguousarray(x[rows.to(x.device)].detach().cpu().numpy(), dtype=np.float64)
            for rows in send
        ]
        requests = [self.comm.Irecv(buf, source=peer) for peer, buf in zip(self.peers, buffers)]
        requests += [self.comm.Isend(buf, dest=peer) for peer, buf in zip(self.peers, outgoing)]
        MPI.Request.Waitall(requests)
        received = [torch.from_numpy(buf).to(device=x.device, dtype=x.dtype) for buf in buffers]
        self.exchange_seconds += time.perf_counter() - start
        return received


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
    species: np.ndarray, positions: np.ndarray, halo: Halo, cutoff: float, dtype: torch.dtype
) -> AtomicGraph:
    """The graph a rank evaluates: its :class:`Halo` nodes, edges only from owned centres.

    Ghost features come from their owners, so edges into ghosts are not needed. An edge to a
    periodic image of an owned atom points at that atom and carries the image's displacement
    as its shift (Å; the graph's cell is the identity and its ``pbc`` all True).

    Parameters
    ----------
    species
        ``[nlocal + nghost]`` atomic numbers of LAMMPS's rows.
    positions
        ``[nlocal + nghost, 3]`` positions in Å (owned atoms first).
    halo
        The nodes and owners for the same rows.
    cutoff
        The model's cutoff in Å.
    dtype
        Float dtype of the graph (edges are found in float64).

    Returns
    -------
    AtomicGraph
        One structure of ``halo.num_nodes`` atoms.
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    nodes = halo.node_rows
    if len(positions):
        center, row, _ = neighbor_pairs(positions, np.zeros((3, 3)), np.zeros(3, bool), cutoff)
        keep = np.flatnonzero(center < halo.num_owned)
        keep = keep[np.argsort(center[keep], kind="stable")]  # by centre: local scatters
        center, row = center[keep], row[keep]
    else:
        center = row = np.zeros(0, np.int64)
    neighbor = halo.node_of_row[row]
    shift = positions[row] - positions[nodes[neighbor]]  # non-zero for images of owned atoms
    num = len(nodes)
    return AtomicGraph(
        species=torch.as_tensor(np.asarray(species, np.int64)[nodes]),
        positions=torch.as_tensor(positions[nodes]).to(dtype),
        cell=torch.eye(3, dtype=dtype)[None],
        pbc=torch.ones(1, 3, dtype=torch.bool),
        edge_index=torch.as_tensor(np.stack([center, neighbor])),
        edge_shift=torch.as_tensor(shift).to(dtype),
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
    with torch.enable_grad(), halo_exchange(halo, slice(halo.num_owned, halo.num_nodes)):
        positions = graph.positions.detach().requires_grad_(True)
        # a homogeneous strain of nodes and shifts (the cell): dE/dstrain = -virial
        strain = torch.zeros(3, 3, dtype=positions.dtype, device=positions.device)
        strain.requires_grad_(True)
        deformation = torch.eye(3, dtype=positions.dtype, device=positions.device) + strain
        strained = replace(graph, positions=positions @ deformation, cell=deformation[None])
        local = model(strained)[: halo.num_owned]
        energy = local.sum()
        gradient, virial = torch.autograd.grad(energy, (positions, strain))
    forces = halo.add_ghosts_to_owners(-gradient.detach())[: halo.num_owned]
    return SplitPrediction(
        energy=float(energy.detach()),
        local_energies=local.detach().cpu().double().numpy(),
        forces=forces.cpu().double().numpy(),
        virial=-virial.detach().cpu().double().numpy(),
    )
