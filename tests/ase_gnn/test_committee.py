"""Committee calculator: means, spreads, and spreads that grow away from the training data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError

from ase_gnn import CommitteeCalculator, GNNCalculator, save_model
from ase_gnn.data.generate import generate_emt
from ase_gnn.testing import tiny_model
from ase_gnn.training import train_model


def _members(count=3):
    members = []
    for seed in range(count):
        torch.manual_seed(seed)
        members.append(tiny_model("SchNet", ["Cu"], cutoff=4.0).double())
    return members


def test_means_and_spreads_follow_their_definitions(tmp_path):
    members = _members()
    save_model(members[2], tmp_path / "third.safetensors")
    atoms = bulk("Cu", cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=0)
    atoms.calc = CommitteeCalculator([members[0], members[1], tmp_path / "third.safetensors"])
    single = [GNNCalculator(m) for m in members]
    energies = [c.get_potential_energy(atoms) for c in single]
    forces = np.stack([c.get_forces(atoms) for c in single])
    stresses = np.stack([c.get_stress(atoms) for c in single])
    assert atoms.get_potential_energy() == pytest.approx(np.mean(energies), abs=1e-12)
    assert atoms.calc.get_property("energy_std", atoms) == pytest.approx(np.std(energies))
    np.testing.assert_allclose(atoms.get_forces(), forces.mean(axis=0), atol=1e-12)
    expected = np.sqrt(forces.var(axis=0).sum(axis=1))
    np.testing.assert_allclose(atoms.calc.get_property("forces_std", atoms), expected, atol=1e-12)
    np.testing.assert_allclose(atoms.calc.get_property("stress_std", atoms), stresses.std(axis=0))
    assert abs(atoms.get_potential_energies().sum() - atoms.get_potential_energy()) < 1e-10


def test_identical_members_have_no_spread_and_bad_input_is_refused():
    model = _members(1)[0]
    cluster = molecule("CH4")
    cluster.symbols[:] = "Cu"
    cluster.positions *= 2.2
    cluster.calc = CommitteeCalculator([model, model])
    assert cluster.calc.get_property("energy_std", cluster) == 0.0
    assert not cluster.calc.get_property("forces_std", cluster).any()
    with pytest.raises(PropertyNotImplementedError):
        cluster.get_stress()
    with pytest.raises(ValueError, match="at least two"):
        CommitteeCalculator([model])


def test_spread_grows_away_from_the_training_data():
    data = generate_emt("Cu", 40, seed=0, progress=False)
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = tiny_model("SchNet", ["Cu"], cutoff=4.0)
        train_model(model, data[:32], data[32:], epochs=15, seed=seed, progress=False)
        members.append(model)
    calc = CommitteeCalculator(members)
    familiar = [a.copy() for a in data[32:] if a.info["config_type"] in ("bulk", "md")]
    unusual = []
    for atoms in familiar:
        squeezed = atoms.copy()
        squeezed.set_cell(atoms.cell * 0.85, scale_atoms=True)
        unusual.append(squeezed)
    spread = [calc.get_property("forces_std", a).mean() for a in familiar]
    squeezed_spread = [calc.get_property("forces_std", a).mean() for a in unusual]
    assert np.median(squeezed_spread) > 2 * np.median(spread)


def test_callers_models_are_not_changed():
    members = [tiny_model("SchNet", ["Cu"], cutoff=4.0) for _ in range(2)]  # float32
    CommitteeCalculator(members, dtype="float64")
    assert all(m.dtype == torch.float32 for m in members)
