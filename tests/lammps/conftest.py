"""Shared by the LAMMPS tests: ``ase-gnn lammps`` under mpiexec (helpers: ``lammps_helpers``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lammps_helpers import MPIEXEC


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
