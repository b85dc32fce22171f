"""Shared by the LAMMPS tests: ``ase-gnn lammps`` under mpiexec, and its thermo output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


@pytest.fixture
def ase_gnn_lammps():
    """Run ``mpiexec -np ranks ase-gnn lammps SCRIPT ARGS...`` in a folder."""

    def run(folder: Path, *arguments: str, ranks: int = 2) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MPIEXEC, "-np", str(ranks), sys.executable, "-m", "ase_gnn", "lammps", *arguments],
            capture_output=True, text=True, timeout=600, cwd=folder,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip

    return run
