"""Shared fixtures: every architecture at tiny size, both dtypes, standard structures, seeding."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from ase_gnn.models import ARCHITECTURES
from ase_gnn.testing import tiny_model

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 - seeds code under test that may use the legacy global RNG


@pytest.fixture(params=sorted(ARCHITECTURES))
def architecture(request: pytest.FixtureRequest) -> str:
    """Name of every registered architecture."""
    return str(request.param)


@pytest.fixture
def model(architecture: str):
    """A tiny Cu/Ag model of every registered architecture (float32 as built)."""
    return tiny_model(architecture, species=["Cu", "Ag"])


@pytest.fixture(params=[torch.float64, torch.float32], ids=["float64", "float32"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Both supported float dtypes."""
    return request.param


@pytest.fixture
def molecule_atoms():
    """CH4 without a cell."""
    return molecule("CH4")


@pytest.fixture
def bulk_atoms():
    """Rattled cubic Cu cell, 4 atoms."""
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=3)
    return atoms
