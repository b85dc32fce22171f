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
