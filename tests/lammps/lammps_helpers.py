"""Helpers of the LAMMPS tests (a module of its own: ``conftest`` is not a unique import name)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"


def thermo_tables(log: str) -> list[np.ndarray]:
    """Each run's thermo table in a LAMMPS log (rows of numbers under the ``Step`` header)."""
    tables, rows = [], None
    for line in log.splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            rows = []
        elif line.startswith("Loop time") and rows is not None:
            tables.append(np.array(rows, dtype=float))
            rows = None
        elif rows is not None and words and words[0].isdigit():
            rows.append([float(w) for w in words])
    return tables
