"""Batched evaluation equals one-by-one calculator results."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, fcc111, molecule

from ase_gnn import GNNCalculator, evaluate
from ase_gnn.testing import tiny_model


def _structures():
    crystal = bulk("Cu", cubic=True).repeat((2, 2, 1))
    crystal.rattle(0.05, seed=0)
    alloy = bulk("Cu", cubic=True)
    alloy.symbols[1] = "Ag"
    slab = fcc111("Ag", (2, 2, 3), vacuum=5.0)
    cluster = molecule("CH4")
    cluster.symbols[:] = "Cu"
    cluster.positions *= 2.2
    return [crystal, cluster, slab, alloy, crystal.repeat((1, 1, 2)), cluster.copy()]


@pytest.mark.parametrize("batch_size", [1, 2, 64])
def test_batched_results_equal_the_calculator_one_by_one(architecture, batch_size):
    model = tiny_model(architecture, ["Cu", "Ag"], cutoff=4.0).double()
    structures = _structures()
    properties = ["energy", "free_energy", "energies", "forces", "stress"]
    results = evaluate(model, structures, batch_size=batch_size, properties=properties)
    calc = GNNCalculator(model)
    for atoms, result in zip(structures, results):
        expected = {name: calc.get_property(name, atoms) for name in properties[:4]}
        if atoms.pbc.any():
            expected["stress"] = calc.get_stress(atoms)
        assert set(result) == set(expected)
        for name, value in expected.items():
            np.testing.assert_allclose(result[name], value, rtol=0, atol=1e-10, err_msg=name)


def test_only_requested_properties_are_returned_and_bad_requests_refused():
    model = tiny_model("SchNet", ["Cu", "Ag"], cutoff=4.0)
    (result,) = evaluate(model, [bulk("Cu")], properties=["energy"])
    assert set(result) == {"energy"}
    with pytest.raises(ValueError, match="unknown properties"):
        evaluate(model, [bulk("Cu")], properties=["magmom"])
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(model, [bulk("Cu")], batch_size=0)
    with pytest.raises(ValueError, match="Au"):
        evaluate(model, [bulk("Au")])
    assert evaluate(model, []) == []


@pytest.mark.parametrize("optimizer", ["FIRE", "BFGS"])
def test_batched_relaxation_equals_relaxing_one_by_one(optimizer):
    import ase.optimize

    from ase_gnn import relax

    optimizer_class = getattr(ase.optimize, optimizer)
    model = tiny_model("SchNet", ["Cu", "Ag"], cutoff=4.0).double()
    structures = _structures()
    structures[3] = bulk("Cu", cubic=True)  # ideal fcc: no force by symmetry, already relaxed
    references = [a.copy() for a in structures]
    report = relax(model, structures, fmax=0.02, max_steps=60, optimizer=optimizer_class,
                   batch_size=4)  # fmt: skip
    steps = []
    for atoms in references:
        atoms.calc = GNNCalculator(model)
        opt = optimizer_class(atoms, logfile=None)
        opt.run(fmax=0.02, steps=60)
        steps.append(opt.nsteps)
    assert report.steps.tolist() == steps
    assert report.steps[3] == 0 and report.steps.max() > 5
    for atoms, reference, converged, largest in zip(
        structures, references, report.converged, report.fmax
    ):
        np.testing.assert_allclose(atoms.positions, reference.positions, rtol=0, atol=1e-8)
        forces = reference.get_forces()
        assert largest == pytest.approx(np.linalg.norm(forces, axis=1).max(), abs=1e-8)
        assert converged == (largest < 0.02)
        np.testing.assert_allclose(atoms.get_forces(), forces, rtol=0, atol=1e-8)
    assert report.converged.sum() >= 4


def _constrained_slab(constraint: str):
    """A rattled Cu(111) slab, 3 layers, the bottom layer fixed, plus ``constraint``."""
    from ase.constraints import FixAtoms, FixBondLength, FixCartesian

    slab = fcc111("Cu", (2, 2, 3), vacuum=5.0)
    slab.rattle(0.05, seed=1)
    tags = slab.get_tags()  # 1 = top layer, 3 = bottom layer
    constraints = [FixAtoms(mask=tags == 3)]
    if constraint == "FixCartesian":  # the middle layer moves only in x and y
        constraints.append(FixCartesian(np.flatnonzero(tags == 2), mask=(False, False, True)))
    elif constraint == "FixBondLength":
        top = np.flatnonzero(tags == 1)
        constraints.append(FixBondLength(top[0], top[1]))
    slab.set_constraint(constraints)
    return slab


def _recording(optimizer_class):
    """``optimizer_class`` that also records the positions after every step in ``recorded``."""

    class Recording(optimizer_class):
        recorded: list[np.ndarray] = []

        def step(self, *args, **kwargs):
            super().step(*args, **kwargs)
            self.recorded.append(self.atoms.get_positions())

    Recording.recorded = []
    return Recording


@pytest.mark.parametrize("constraint", ["FixAtoms", "FixCartesian", "FixBondLength"])
@pytest.mark.parametrize("optimizer", ["FIRE", "BFGS"])
def test_constrained_relaxation_follows_ase_step_by_step(optimizer, constraint):
    import ase.optimize

    from ase_gnn import relax

    model = tiny_model("SchNet", ["Cu"], cutoff=4.0, hidden_channels=8, num_interactions=1)
    model = model.double()
    reference, batched = _constrained_slab(constraint), _constrained_slab(constraint)
    bond = [c for c in reference.constraints if type(c).__name__ == "FixBondLength"]
    start = reference.get_positions()

    ase_optimizer = _recording(getattr(ase.optimize, optimizer))
    reference.calc = GNNCalculator(model)
    opt = ase_optimizer(reference, logfile=None)
    converged = opt.run(fmax=0.05, steps=200)
    assert converged and 3 < opt.nsteps < 200
    # Fixed atoms still feel a force well above fmax: a raw-force test could never converge.
    raw = np.linalg.norm(reference.get_forces(apply_constraint=False), axis=1)
    assert raw.max() > 0.05

    ours = _recording(getattr(ase.optimize, optimizer))
    report = relax(model, [batched], fmax=0.05, max_steps=200, optimizer=ours)
    assert report.converged.tolist() == [True]
    assert report.steps.tolist() == [opt.nsteps]
    assert len(ours.recorded) == len(ase_optimizer.recorded) == opt.nsteps
    for step, (mine, theirs) in enumerate(zip(ours.recorded, ase_optimizer.recorded)):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-10, err_msg=f"step {step + 1}")
    constrained = np.linalg.norm(reference.get_forces(), axis=1).max()
    assert report.fmax[0] == pytest.approx(constrained, abs=1e-10)
    assert report.energy[0] == pytest.approx(reference.get_potential_energy(), abs=1e-10)
    # The constraints held: the bottom layer did not move, the bond kept its length.
    bottom = reference.get_tags() == 3
    np.testing.assert_array_equal(batched.positions[bottom], start[bottom])
    for constraint_object in bond:
        i, j = constraint_object.pairs[0]
        length = np.linalg.norm(start[i] - start[j])
        assert batched.get_distance(i, j) == pytest.approx(length, abs=1e-8)


def test_empty_structure_is_relaxed_at_once_beside_others():
    from ase import Atoms

    from ase_gnn import relax

    model = tiny_model("SchNet", ["Cu"], cutoff=4.0, hidden_channels=8, num_interactions=1)
    crystal = bulk("Cu", cubic=True)
    crystal.rattle(0.05, seed=0)
    report = relax(model.double(), [Atoms(), crystal], fmax=0.05, max_steps=5)
    assert report.converged[0] and report.steps[0] == 0 and report.fmax[0] == 0.0
    assert report.steps[1] > 0
