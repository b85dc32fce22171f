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
