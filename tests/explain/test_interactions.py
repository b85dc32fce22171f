"""Integrated Hessians: exact on a quadratic, complete (rows sum to Integrated Gradients), and
mapped onto the triplets of the many-body expansion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from ase_gnn.testing import tiny_model
from explain import Explainer, many_body
from explain.many_body import triplet_interactions
from explain.methods import integrated_hessians, log_weight_rule
from explain.result import bond_ids


def test_a_quadratic_has_its_textbook_interactions():
    # f = ½ xᵀAx + bᵀx from x' = 0: Γ = ¼ (Δ Δᵀ ∘ A) + ¼ diag(Δ ∘ AΔ) + diag(Δ ∘ b)
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.normal(size=(5, 5)))
    a = a + a.T
    b, x = torch.tensor(rng.normal(size=5)), torch.tensor(rng.uniform(0.5, 1.5, size=5))

    def forward(gates):
        return 0.5 * torch.einsum("si,ij,sj->s", gates, a, gates) + gates @ b

    gamma = integrated_hessians(forward, x, torch.zeros(5), n_steps=2, batch_size=2)
    expected = 0.25 * torch.outer(x, x) * a + torch.diag(0.25 * x * (a @ x) + x * b)
    torch.testing.assert_close(gamma, expected, rtol=1e-12, atol=1e-12)
    assert float(gamma.sum()) == pytest.approx(float(forward(x[None])[0]))


@pytest.mark.parametrize("level", ["edge", "atom"])
def test_interactions_sum_to_integrated_gradients(architecture, level):
    atoms = bulk("Cu", cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=3)
    model = tiny_model(architecture, ["Cu"], cutoff=3.0).double()
    reference = Explainer(model, "integrated_gradients", level=level, n_steps=128).explain(atoms)
    result = Explainer(model, "integrated_hessians", level=level, internal_batch_size=40)
    attribution = result.explain(atoms)
    gamma = attribution.interaction
    assert gamma.shape == (len(reference.scores),) * 2
    np.testing.assert_allclose(gamma, gamma.T, atol=1e-14)
    np.testing.assert_allclose(attribution.scores, gamma.sum(axis=1), rtol=1e-12)
    scale = np.abs(reference.scores).max()
    assert np.abs(gamma.sum(axis=1) - reference.scores).max() < 1e-6 * scale
    assert abs(attribution.completeness_gap) < 1e-10 * abs(reference.target_value)
    assert np.abs(gamma - np.diag(np.diag(gamma))).max() > 1e-3 * scale  # real interactions


def test_three_atoms_get_every_interaction_between_their_bonds():
    atoms = Atoms("Cu3", positions=[[0, 0, 0], [2.4, 0, 0], [1.0, 2.0, 0.3]])
    model = tiny_model("NequIP", ["Cu"], cutoff=3.0).double()
    attribution = Explainer(model, "integrated_hessians", level="edge").explain(atoms)
    expansion = many_body(model, atoms)
    (value,) = triplet_interactions(attribution, expansion)
    bond = bond_ids(attribution.edge_index, attribution.edge_shift)
    between = bond[:, None] != bond[None, :]  # Γ of edges of two different bonds
    assert value == pytest.approx(attribution.interaction[between].sum(), rel=1e-12)
    with pytest.raises(ValueError, match="integrated_hessians"):
        triplet_interactions(Explainer(model, level="edge").explain(atoms), expansion)


def test_in_a_crystal_equivalent_triplets_get_equal_interactions():
    # fcc with nearest neighbours only, one atom per cell: 50 triplets (module test_many_body)
    one = bulk("Cu", "fcc", a=3.6)
    model = tiny_model("SchNet", ["Cu"], cutoff=3.0).double()
    attribution = Explainer(model, "integrated_hessians", level="edge").explain(one)
    expansion = many_body(model, one)
    values = triplet_interactions(attribution, expansion)
    angles = np.round(expansion.triplet_angle, 6)
    assert values.shape == (50,) and set(angles) == {60.0, 90.0, 120.0, 180.0}
    for angle in set(angles):
        same = angles == angle
        np.testing.assert_allclose(values[same], values[same][0], rtol=1e-9)
    # an atom between two of its own images: both legs are one bond of the crystal, one gate,
    # so its interaction is not separable; every other triplet has one
    assert np.all(values[angles == 180] == 0) and np.all(values[angles < 180] != 0)


def test_the_log_weight_rule_integrates_polynomials_exactly():
    for n in (1, 4, 16, 40):
        nodes, weights = log_weight_rule(n)
        assert np.all((0 < nodes) & (nodes < 1)) and np.all(weights > 0)
        for k in range(2 * n):  # ∫ −ln γ γ^k dγ = 1 / (k + 1)²
            assert (weights * nodes**k).sum() == pytest.approx(1 / (k + 1) ** 2, rel=1e-12)
