"""The ASE calculator contract (see shared notes A1)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk, fcc111, molecule
from ase.calculators.calculator import BaseCalculator, PropertyNotImplementedError
from ase.md.verlet import VelocityVerlet

from ase_gnn import GNNCalculator, SchNet
from ase_gnn.simulate.md import thermalize_momenta
from ase_gnn.testing import tiny_model


@pytest.fixture
def cu_model():
    return tiny_model("SchNet", ["Cu"], cutoff=4.0)


def _rattled(seed: int = 0):
    atoms = bulk("Cu", cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=seed)
    return atoms


def test_results_have_ase_types_shapes_and_units(cu_model) -> None:
    atoms = _rattled()
    atoms.calc = GNNCalculator(cu_model, dtype="float64")
    atoms.calc.calculate_properties(
        atoms, ["energy", "free_energy", "energies", "forces", "stress"]
    )
    results = atoms.calc.results
    assert isinstance(results["energy"], float) and results["free_energy"] == results["energy"]
    assert results["forces"].shape == (32, 3) and results["forces"].dtype == np.float64
    assert results["stress"].shape == (6,)
    assert abs(results["energies"].sum() - results["energy"]) < 1e-10


def test_no_stress_without_periodicity(cu_model) -> None:
    atoms = molecule("CH4")
    model = tiny_model("SchNet", ["C", "H"])
    atoms.calc = GNNCalculator(model)
    atoms.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_slab_stress_uses_the_full_cell_volume(cu_model) -> None:
    from ase.calculators.fd import calculate_numerical_stress

    slab = fcc111("Cu", size=(2, 2, 3), vacuum=5.0)
    slab.rattle(0.05, seed=4)
    slab.calc = GNNCalculator(cu_model, dtype="float64")
    assert np.abs(slab.get_stress() - calculate_numerical_stress(slab, 1e-6)).max() < 1e-8


def test_implemented_properties_are_a_class_tuple_not_shared_state(cu_model) -> None:
    before = list(BaseCalculator.implemented_properties)
    first, second = GNNCalculator(cu_model), GNNCalculator(cu_model)
    assert isinstance(GNNCalculator.implemented_properties, tuple)
    assert first.implemented_properties == second.implemented_properties
    assert BaseCalculator.implemented_properties == before


def test_one_model_call_per_md_step(cu_model, monkeypatch) -> None:
    atoms = _rattled()
    atoms.calc = GNNCalculator(cu_model)
    calls = []
    original = atoms.calc.model.forward
    monkeypatch.setattr(
        atoms.calc.model, "forward", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    dyn = VelocityVerlet(atoms, timestep=1 * units.fs)
    dyn.attach(lambda: (atoms.get_potential_energy(), atoms.get_stress()), interval=1)
    dyn.run(5)
    # one initial evaluation plus one per step; stress and energy come from the cache
    assert len(calls) == 6


def test_cache_is_invalidated_by_any_change(cu_model) -> None:
    atoms = _rattled()
    atoms.calc = GNNCalculator(cu_model, dtype="float64")
    energy = atoms.get_potential_energy()
    assert atoms.calc.get_property("energy", atoms, allow_calculation=False) == energy
    changes = [
        lambda a: a.positions.__setitem__((0, 0), a.positions[0, 0] + 1e-3),
        lambda a: a.set_cell(a.cell * 1.001, scale_atoms=False),
        lambda a: a.set_pbc([True, True, False]),
        lambda a: a.set_atomic_numbers([29] * (len(a) - 1) + [29]),  # same numbers: no change
    ]
    for change, invalidates in zip(changes, (True, True, True, False)):
        change(atoms)
        cached = atoms.calc.get_property("energy", atoms, allow_calculation=False)
        assert (cached is None) == invalidates
        new = atoms.get_potential_energy()
        assert (new != energy) == invalidates
        energy = new


def test_ambient_default_dtype_and_environment_are_never_changed(cu_model) -> None:
    environment = dict(os.environ)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # a hostile caller's setting must survive us
    try:
        for dtype in ("float32", "float64"):
            atoms = _rattled()
            atoms.calc = GNNCalculator(cu_model, dtype=dtype)
            atoms.get_forces()
            assert torch.get_default_dtype() == torch.float64
        assert dict(os.environ) == environment
    finally:
        torch.set_default_dtype(previous)


def test_calculator_never_changes_the_callers_model(cu_model) -> None:
    parameter = next(cu_model.parameters())
    GNNCalculator(cu_model, dtype="float64")
    assert cu_model.dtype == torch.float32 and next(cu_model.parameters()) is parameter


def test_float32_and_float64_agree(cu_model) -> None:
    atoms = _rattled()
    atoms.calc = GNNCalculator(cu_model, dtype="float32")
    e32, f32 = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = GNNCalculator(cu_model, dtype="float64")
    assert abs(atoms.get_potential_energy() - e32) < 1e-4 * abs(e32)
    assert np.abs(atoms.get_forces() - f32).max() < 1e-4


def test_rejects_objects_that_are_not_models() -> None:
    with pytest.raises(TypeError, match="EnergyModel"):
        GNNCalculator(torch.nn.Linear(2, 2))  # type: ignore[arg-type]  # wrong type on purpose


def test_short_nve_run_conserves_energy() -> None:
    model = SchNet(["Cu"], cutoff=4.0, hidden_channels=16, num_interactions=2)
    atoms = bulk("Cu", cubic=True).repeat((2, 2, 2))
    atoms.calc = GNNCalculator(model, dtype="float64")
    thermalize_momenta(atoms, 300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=1 * units.fs)
    totals = []
    dyn.attach(lambda: totals.append(atoms.get_total_energy()), interval=1)
    dyn.run(50)
    spread = (max(totals) - min(totals)) / len(atoms)
    assert spread < 2e-4, f"NVE total energy wandered {spread:.2e} eV/atom in 50 fs"


@pytest.mark.parametrize("architecture", ["SchNet", "NequIP"])
def test_compiled_model_equals_eager_over_changing_sizes(architecture) -> None:
    model = tiny_model(architecture, ["Cu"], cutoff=4.0).double()
    eager, compiled = GNNCalculator(model), GNNCalculator(model, compile=True)
    for repeat in [(2, 2, 2), (2, 2, 3), (1, 2, 2)]:  # dynamic shapes: no recompilation needed
        atoms = bulk("Cu", cubic=True).repeat(repeat)
        atoms.rattle(0.05, seed=sum(repeat))
        for name in ("energy", "forces", "stress", "energies"):
            expected = eager.get_property(name, atoms)
            assert np.allclose(compiled.get_property(name, atoms), expected, atol=1e-10), name
