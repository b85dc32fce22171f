"""Bad input to explain is refused with a message naming it (issue 15, items 6 and 16)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from ase_gnn import SchNet, graph_from_atoms
from explain import Explainer
from explain.metrics import fidelity, infidelity, sensitivity
from explain.targets import ForceComponent, LocalEnergy


@pytest.fixture(scope="module")
def model() -> SchNet:
    return SchNet(["Cu"], cutoff=3.0, hidden_channels=8, num_interactions=1).double()


@pytest.fixture(scope="module")
def crystal() -> Atoms:
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=0)
    return atoms


def test_graph_with_another_cutoff_is_refused(model, crystal) -> None:
    wide = graph_from_atoms(crystal, 5.0, dtype=torch.float64)
    with pytest.raises(ValueError, match="model's cutoff of 3.0 Å gives"):
        Explainer(model).explain(wide)
    exact = graph_from_atoms(crystal, model.cutoff, dtype=torch.float64)
    assert np.allclose(Explainer(model).explain(exact).edge, Explainer(model).explain(crystal).edge)


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_fidelity_needs_a_positive_integer_k(model, crystal, k) -> None:
    explainer = Explainer(model)
    attribution = explainer.explain(crystal)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        fidelity(explainer, attribution, k=k)


@pytest.mark.parametrize(
    "direction", [(math.nan, 0.0, 1.0), (math.inf, 0.0, 0.0), (0.0, 0.0, 0.0), True, 3]
)
def test_non_finite_or_degenerate_directions_are_refused(model, crystal, direction) -> None:
    with pytest.raises((ValueError, TypeError), match="direction must be"):
        Explainer(model, target=ForceComponent(0, direction)).explain(crystal)


@pytest.mark.parametrize("atom", [1.5, True, "0"])
def test_non_integer_atom_indices_are_refused(model, crystal, atom) -> None:
    for target in (ForceComponent(atom, 0), LocalEnergy(atom)):
        with pytest.raises(TypeError, match="atom index must be an integer"):
            Explainer(model, target=target).explain(crystal)


def test_numpy_integer_atom_index_is_accepted(model, crystal) -> None:
    attribution = Explainer(model, target=LocalEnergy(np.int64(1))).explain(crystal)
    assert np.isfinite(attribution.edge).all()


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("integrated_gradients", {"n_steps": True}),
        ("integrated_gradients", {"n_steps": 0}),
        ("integrated_gradients", {"n_steps": 8.0}),
        ("shapley_value_sampling", {"n_samples": -1}),
    ],
)
def test_non_integer_step_counts_are_refused(model, method, options) -> None:
    with pytest.raises(ValueError, match="must be a positive integer"):
        Explainer(model, method, **options)


def test_unknown_integration_is_refused_with_the_choices(model) -> None:
    with pytest.raises(ValueError, match="unknown integration 'simpson'.*gausslegendre"):
        Explainer(model, "integrated_gradients", integration="simpson")


def test_shapley_sampling_without_edges_says_why(model) -> None:
    isolated = Atoms("Cu2", positions=[[0, 0, 0], [10, 0, 0]])
    with pytest.raises(ValueError, match="no edges within the model's cutoff"):
        Explainer(model, "shapley_value_sampling").explain(isolated)


def test_infidelity_and_sensitivity_leave_the_global_random_streams_alone(model, crystal) -> None:
    explainer = Explainer(model, n_steps=8)
    attribution = explainer.explain(crystal)
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()  # noqa: NPY002 - the global state is what is checked
    first = infidelity(explainer, attribution, n_perturb_samples=4, seed=3)
    sensitivity(explainer, attribution, n_perturb_samples=2, seed=3)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])  # noqa: NPY002
    torch.rand(5)  # moving the global stream changes nothing: the metric has its own
    assert infidelity(explainer, attribution, n_perturb_samples=4, seed=3) == first
    assert infidelity(explainer, attribution, n_perturb_samples=4, seed=4) != first
