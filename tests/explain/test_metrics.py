"""Faithfulness metrics: definitions checked on known cases, and on the trained LJ model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain import Explainer
from explain.metrics import (
    deletion_insertion,
    fidelity,
    infidelity,
    permutation_deviation,
    randomization_check,
    rotation_deviation,
    sensitivity,
    sparsity,
)


@pytest.mark.parametrize("level", ["edge", "atom"])
def test_fidelity_of_all_inputs_is_the_whole_change(cu_model, cu_atoms, level):
    explainer = Explainer(cu_model, level=level)
    attribution = explainer.explain(cu_atoms)
    everything = fidelity(explainer, attribution, k=10**6)
    span = abs(attribution.target_value - attribution.baseline_value)
    assert everything.plus == pytest.approx(span) and everything.minus == pytest.approx(
        0.0, abs=1e-12
    )
    assert everything.plus_per_atom == pytest.approx(span / len(cu_atoms))


def test_deletion_and_insertion_curves_run_from_zero_to_one(cu_model, cu_atoms):
    explainer = Explainer(cu_model, level="atom")
    curves = deletion_insertion(explainer, explainer.explain(cu_atoms), steps=8)
    assert curves.fraction.shape == curves.deletion.shape == (9,)
    for curve in (curves.deletion_explained, curves.insertion_explained):
        assert curve[0] == pytest.approx(0.0, abs=1e-12) and curve[-1] == pytest.approx(1.0)
    assert 0.0 < curves.random_deletion_auc < 1.5


def test_sparsity_is_the_gini_index(cu_model, cu_atoms):
    attribution = Explainer(cu_model, level="atom").explain(cu_atoms)
    uniform = type(attribution)(**{**attribution.__dict__, "node": np.ones(8)})
    single = type(attribution)(**{**attribution.__dict__, "node": np.eye(8)[2]})
    assert sparsity(uniform) == pytest.approx(0.0) and sparsity(single) == pytest.approx(7 / 8)


def test_attributions_are_rotation_invariant_and_permutation_equivariant(cu_model, cu_atoms):
    for level in ("edge", "atom"):
        explainer = Explainer(cu_model, level=level)
        assert rotation_deviation(explainer, cu_atoms, seed=1) < 1e-9
        assert permutation_deviation(explainer, cu_atoms, seed=1) < 1e-9


def test_faithful_scores_beat_random_ones_on_the_trained_model(lj_model, lj_data):
    atoms = next(a for a in lj_data if a.info["config_type"] == "md")
    explainer = Explainer(lj_model, level="edge")
    attribution = explainer.explain(atoms)
    curves = deletion_insertion(explainer, attribution)
    assert curves.deletion_auc > curves.random_deletion_auc + 0.1  # measured 0.90 vs 0.61
    assert curves.insertion_auc > curves.random_insertion_auc + 0.1  # 0.74 vs 0.51
    rng = np.random.default_rng(0)
    shuffles = [
        type(attribution)(**{**attribution.__dict__, "edge": rng.permutation(attribution.edge)})
        for _ in range(5)
    ]
    random_infidelity = np.mean([infidelity(explainer, noise) for noise in shuffles])
    assert infidelity(explainer, attribution) < 0.7 * random_infidelity  # measured 0.25x
    random_fidelity = np.mean([fidelity(explainer, noise, k=20).plus for noise in shuffles])
    assert fidelity(explainer, attribution, k=20).plus > random_fidelity
    assert 0.0 < sensitivity(explainer, attribution, n_perturb_samples=2) < 0.1  # 0.012


def test_randomized_model_gives_different_attributions(lj_model, lj_data):
    atoms = next(a for a in lj_data if a.info["config_type"] == "md")
    before = [p.clone() for p in lj_model.parameters()]
    state = torch.random.get_rng_state()
    assert randomization_check(Explainer(lj_model, level="atom"), atoms) < 0.9
    assert all(torch.equal(p, q) for p, q in zip(lj_model.parameters(), before))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_metrics_refuse_position_level(cu_model, cu_atoms):
    explainer = Explainer(cu_model, "saliency", level="position")
    with pytest.raises(ValueError, match="edge- or atom-level"):
        fidelity(explainer, explainer.explain(cu_atoms))
