"""An ase-gnn model as an i-PI driver: ``ase-gnn ipi --model m.safetensors --address ...``.

i-PI (the server) runs the dynamics, path-integral beads included, and sends structures over a
socket to drivers that answer with energies, forces and virials; this module speaks i-PI's
socket protocol (messages of 12 bytes, atomic units: Bohr, Hartree). When i-PI batches
requests (``<ffsocket ... batch_size="4">``, announced as ``batch_size:4`` in the INIT string)
the driver receives several structures at once, for instance all beads, and evaluates them in
one batched model call (:func:`ase_gnn.evaluate`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.stress import voigt_6_to_full_3x3_stress

from ase_gnn.calculators.checks import check_extensive
from ase_gnn.models.base import EnergyModel
from ase_gnn.simulate.batched import evaluate

HEADER = 12  # bytes of every message name


def _message(name: str) -> bytes:
    return name.ljust(HEADER).encode()


class Driver:
    """Answers i-PI's force requests for structures of fixed ``symbols`` with ``model``.

    Parameters
    ----------
    model
        The potential (``"sum"`` readout).
    symbols
        Chemical symbols of the atoms in i-PI's order (i-PI sends positions only).
    pbc
        Periodic axes (i-PI always sends a cell; a molecule may use ``False``).
    """

    def __init__(self, model: EnergyModel, symbols: Sequence[str], pbc: bool = True) -> None:
        check_extensive(model)
        self.model, self.symbols, self.pbc = model, list(symbols), pbc
        #: structures evaluated, and model calls they took
        self.structures = self.calls = 0
        missing = sorted(set(self.symbols) - set(model.species_symbols))
        if missing:
            raise ValueError(f"the model knows {model.species_symbols}, not {missing}")

    def compute(
        self, cells: Sequence[np.ndarray], positions: Sequence[np.ndarray]
    ) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """Energy (Ha), forces (Ha/Bohr, ``[N, 3]``) and virial (Ha, ``[3, 3]``) per structure.

        ``cells`` are i-PI's ``h`` (lattice vectors as columns, Bohr) and ``positions``
        ``[N, 3]`` arrays in Bohr; all structures go to the model in one batch.
        """
        structures = []
        for h, x in zip(cells, positions):
            if len(x) != len(self.symbols):
                raise ValueError(f"i-PI sent {len(x)} atoms; the driver has {len(self.symbols)}")
            atoms = Atoms(self.symbols, positions=x * units.Bohr, cell=h.T * units.Bohr)
            atoms.pbc = self.pbc
            structures.append(atoms)
        properties = ("energy", "forces", "stress") if self.pbc else ("energy", "forces")
        self.structures, self.calls = self.structures + len(structures), self.calls + 1
        results = evaluate(self.model, structures, len(structures), properties)  # one batch
        answers = []
        for atoms, result in zip(structures, results):
            virial = np.zeros((3, 3))
            if "stress" in result:  # W = -V σ (ASE's stress, tensile positive)
                virial = -atoms.get_volume() * voigt_6_to_full_3x3_stress(result["stress"])
            forces = np.asarray(result["forces"], np.float64) * units.Bohr / units.Ha
            answers.append((float(result["energy"]) / units.Ha, forces, virial / units.Ha))
        return answers


class _Socket:
    """Exact-size reads and writes of i-PI's binary messages."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def read(self, dtype: Any, count: int = 1) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        buffer = bytearray(size)
        view, done = memoryview(buffer), 0
        while done < size:
            got = self.sock.recv_into(view[done:], size - done)
            if got == 0:
                raise ConnectionError("i-PI closed the connection")
            done += got
        return np.frombuffer(buffer, dtype=dtype, count=count)

    def header(self) -> str:
        return bytes(self.read(np.uint8, HEADER)).decode().strip()

    def write(self, *parts: bytes | np.ndarray | np.generic) -> None:
        self.sock.sendall(b"".join(p if isinstance(p, bytes) else p.tobytes() for p in parts))


def run_driver(
    driver: Driver, address: str, port: int = 31415, unix: bool = False, wait: float = 60.0
) -> None:
    """Connect to i-PI and answer its requests until it says EXIT or closes the socket.

    Parameters
    ----------
    driver
        What evaluates the structures.
    address
        Host name (TCP) or, with ``unix``, the socket's name: i-PI's ``<address>``, which it
        creates as ``/tmp/ipi_<address>``.
    port
        TCP port (i-PI's ``<port>``).
    unix
        Use a UNIX domain socket instead of TCP.
    wait
        Seconds to keep trying to connect (i-PI may still be starting).
    """
    sock = _connect(address, port, unix, wait)
    link = _Socket(sock)
    batch, initialised, results = 1, False, None
    try:
        while True:
            try:
                name = link.header()
            except ConnectionError:
                return
            if name == "STATUS":
                state = (
                    "HAVEDATA" if results is not None else "READY" if initialised else "NEEDINIT"
                )
                link.write(_message(state))
            elif name == "INIT":
                link.read(np.int32)  # replica index
                text = bytes(link.read(np.uint8, int(link.read(np.int32)[0]))).decode()
                for token in text.replace(",", " ").split():
                    key, _, value = token.partition(":")
                    if key == "batch_size":
                        batch = int(value)
                initialised = True
            elif name == "POSDATA":
                cells, positions = _read_positions(link, batch)
                results = driver.compute(cells, positions)
            elif name == "GETFORCE" and results is not None:
                _write_results(link, results, batch)
                results = None
            elif name == "EXIT":
                return
            else:
                raise ConnectionError(f"unexpected message {name!r} from i-PI")
    finally:
        sock.close()


def _connect(address: str, port: int, unix: bool, wait: float) -> socket.socket:
    """A socket connected to i-PI, retried every 0.2 s for ``wait`` seconds."""
    path = address if address.startswith("/") else f"/tmp/ipi_{address}"
    deadline = time.monotonic() + wait
    while True:
        try:
            if unix:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(path)
                return sock
            return socket.create_connection((address, port))
        except (FileNotFoundError, ConnectionRefusedError) as error:
            if unix:
                sock.close()
            if time.monotonic() > deadline:
                where = path if unix else f"{address}:{port}"
                raise ConnectionError(f"no i-PI server at {where} after {wait:g} s") from error
            time.sleep(0.2)


def _read_positions(link: _Socket, batch: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One structure (h, h⁻¹, N, x) or, batched, N, then ``batch`` × (h, h⁻¹), then all x."""
    if batch == 1:
        h = link.read(np.float64, 9).reshape(3, 3)  # row-major h: lattice vectors as columns
        link.read(np.float64, 9)
        num = int(link.read(np.int32)[0])
        return [h], [link.read(np.float64, 3 * num).reshape(num, 3)]
    num = int(link.read(np.int32)[0])
    blocks = link.read(np.float64, 18 * batch).reshape(batch, 2, 3, 3)
    x = link.read(np.float64, 3 * num * batch).reshape(batch, num, 3)
    return [block[0] for block in blocks], list(x)


def _write_results(
    link: _Socket, results: list[tuple[float, np.ndarray, np.ndarray]], batch: int
) -> None:
    """FORCEREADY with energies, N, forces, virials and an empty extra string per structure."""
    num = np.int32(len(results[0][1]))
    empty = np.int32(0)
    if batch == 1:
        energy, forces, virial = results[0]
        link.write(_message("FORCEREADY"), np.float64(energy), num, forces, virial.T, empty)
        return
    link.write(
        _message("FORCEREADY"),
        np.array([r[0] for r in results]),
        num,
        np.stack([r[1] for r in results]),
        np.stack([r[2].T for r in results]),
        *([empty] * len(results)),
    )
