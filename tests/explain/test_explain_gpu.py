"""Attributions on CUDA equal those on the CPU (skipped without a GPU)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase.build import bulk

from ase_gnn.testing import tiny_model
from explain import Explainer, ForceComponent
from explain.calculator import ExplainingCalculator
from explain.metrics import deletion_insertion

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("method", ["integrated_gradients", "feature_ablation", "gradient_shap"])
@pytest.mark.parametrize("level", ["edge", "atom"])
def test_cuda_attributions_match_cpu(architecture, method, level) -> None:
    atoms = bulk("Cu", cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=0)
    atoms.symbols[0] = "Ag"
    cpu_model = tiny_model(architecture, ["Cu", "Ag"], cutoff=4.0).double()
    cpu_model.set_atomic_energies([-3.0, -2.5])
    gpu_model = copy.deepcopy(cpu_model).to("cuda")
    options = {"n_samples": 8} if method == "gradient_shap" else {}
    for target in (None, ForceComponent(1, 2)):
        cpu = Explainer(cpu_model, method, target, level=level, **options).explain(atoms)
        gpu = Explainer(gpu_model, method, target, level=level, **options).explain(atoms)
        assert np.allclose(cpu.scores, gpu.scores, atol=1e-8), (method, level, target)
        assert gpu.completeness_gap == pytest.approx(cpu.completeness_gap, abs=1e-8)
    explainer = Explainer(gpu_model, level=level)
    curves = deletion_insertion(explainer, explainer.explain(atoms), steps=4)
    assert np.isfinite(curves.deletion).all()


def test_explaining_calculator_on_cuda() -> None:
    from ase_gnn import GNNCalculator

    atoms = bulk("Cu", cubic=True)
    model = tiny_model("SchNet", ["Cu"], cutoff=4.0).double()
    calc = ExplainingCalculator(GNNCalculator(model, device="cuda"))
    scores = calc.get_property("atom_attributions", atoms)
    assert scores.shape == (4,) and np.isfinite(scores).all()
