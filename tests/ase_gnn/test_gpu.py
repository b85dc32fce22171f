"""CUDA runs give the CPU's answers (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, fcc111

from ase_gnn import GNNCalculator, batch_graphs, graph_from_atoms, load_model, predict, save_model
from ase_gnn.data.generate import generate_emt
from ase_gnn.testing import tiny_model
from ase_gnn.training import train_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _structures():
    cubic = bulk("Cu", cubic=True).repeat((2, 2, 2))
    cubic.rattle(0.05, seed=0)
    cubic.symbols[:3] = "Ag"
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=5.0)
    slab.rattle(0.05, seed=1)
    return [cubic, slab]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_calculator_on_cuda_matches_cpu(architecture, dtype) -> None:
    model = tiny_model(architecture, ["Cu", "Ag"])
    tol = 1e-10 if dtype == "float64" else 1e-4
    for atoms in _structures():
        atoms.calc = GNNCalculator(model, device="cpu", dtype=dtype)
        cpu = (atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())
        atoms.calc = GNNCalculator(model, device="cuda", dtype=dtype)
        gpu = (atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())
        assert abs(cpu[0] - gpu[0]) < tol * (1 + abs(cpu[0]))
        assert np.abs(cpu[1] - gpu[1]).max() < tol
        assert np.abs(cpu[2] - gpu[2]).max() < tol


def test_batched_prediction_on_cuda_matches_cpu(architecture) -> None:
    model = tiny_model(architecture, ["Cu", "Ag"]).double()
    graph = batch_graphs([graph_from_atoms(a, model.cutoff) for a in _structures()])
    cpu = predict(model, graph, stress=True)
    gpu = predict(model.to("cuda"), graph.to("cuda"), stress=True)
    for a, b in zip((cpu.energy, cpu.forces, cpu.stress), (gpu.energy, gpu.forces, gpu.stress)):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-10, atol=1e-10)


def test_model_saved_on_cuda_loads_on_cpu(tmp_path) -> None:
    model = tiny_model("SchNet", ["Cu"]).to("cuda")
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors", device="cpu")
    assert loaded.device == torch.device("cpu")


def test_training_runs_on_cuda() -> None:
    data = generate_emt("Cu", 12, progress=False)
    model = tiny_model("SchNet", ["Cu"])
    history = train_model(model, data[:10], data[10:], epochs=3, device="cuda", progress=False)
    assert model.device.type == "cuda" and np.isfinite(history.train_loss).all()
