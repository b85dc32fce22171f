"""A small SchNet trained on Lennard-Jones argon inside the test session: ground truth known."""

from __future__ import annotations

import importlib.util

import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones

from ase_gnn import SchNet
from ase_gnn.data.generate import generate_lennard_jones
from ase_gnn.testing import tiny_model
from ase_gnn.training import prepare_model, train_model

if importlib.util.find_spec("captum") is None:  # explain needs the [explain] extra
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def lennard_jones():
    """Factory of the calculator that labels :func:`generate_lennard_jones` data (defaults)."""
    return lambda: LennardJones(sigma=3.4, epsilon=0.0104, rc=5.0, ro=4.0, smooth=True)


@pytest.fixture(scope="session")
def lj_data():
    """140 labelled argon structures: crystals, MD snapshots, random boxes and clusters."""
    return generate_lennard_jones(140, seed=0, progress=False)


@pytest.fixture(scope="session")
def lj_model(lj_data):
    """SchNet fitted to energies and forces for a fixed number of epochs (float64 after).

    E0 is the physical isolated-atom energy (0 for a pair potential), not a least-squares fit,
    so that the "isolated atoms" baseline of the attributions is the true one.
    """
    model = SchNet(["Ar"], cutoff=5.0, hidden_channels=32, num_interactions=2, num_radial=8)
    prepare_model(model, lj_data[:120], "isolated:lj")
    train, valid = lj_data[:120], lj_data[120:]
    train_model(
        model, train, valid, epochs=40, batch_size=8, fit_reference_energies=False, progress=False
    )
    return model.double()


@pytest.fixture
def cu_model():
    """A tiny float64 SchNet for Cu with E0 = −3 eV."""
    model = tiny_model("SchNet", ["Cu"], cutoff=4.0).double()
    model.set_atomic_energies([-3.0])
    return model


@pytest.fixture
def cu_atoms():
    """Eight rattled fcc Cu atoms in a 2×1×1 cubic cell."""
    atoms = bulk("Cu", cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=3)
    return atoms
