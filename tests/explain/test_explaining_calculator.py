"""Attributions during simulations: on request only, and along trajectories."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.md.verlet import VelocityVerlet

from ase_gnn import GNNCalculator
from explain import Explainer
from explain.calculator import ExplainingCalculator, attribute_trajectory


def test_attributions_are_computed_only_when_asked(cu_model, cu_atoms, monkeypatch):
    calc = ExplainingCalculator(GNNCalculator(cu_model))
    calls = []
    for explainer in calc.explainers.values():
        original = explainer.explain
        monkeypatch.setattr(explainer, "explain", lambda a, f=original: calls.append(1) or f(a))
    cu_atoms.calc = calc
    VelocityVerlet(cu_atoms, timestep=1.0 * units.fs).run(3)
    assert calls == []
    energy = cu_atoms.get_potential_energy()
    assert energy == pytest.approx(GNNCalculator(cu_model).get_potential_energy(cu_atoms))
    node = calc.get_property("atom_attributions", cu_atoms)
    edge = calc.get_property("edge_attributions", cu_atoms)
    assert len(calls) == 2 and node.shape == (8,)
    assert node.sum() == pytest.approx(energy + 3.0 * 8, abs=1e-6)  # E − Σ E0
    assert edge.shape == (calc.results["edge_index"].shape[1],)
    assert edge.sum() == pytest.approx(energy + 24.0, abs=1e-6)
    assert calc.attributions["edge"].edge is not None
    calc.get_property("atom_attributions", cu_atoms)  # cached while the atoms are unchanged
    assert len(calls) == 2
    assert "atom_attributions" in calc.implemented_properties


def test_trajectory_attribution(cu_model, cu_atoms):
    frames = []
    for seed in range(4):
        frame = cu_atoms.copy()
        frame.rattle(0.03, seed=seed)
        frames.append(frame)
    attributions = attribute_trajectory(Explainer(cu_model, level="atom"), frames, progress=False)
    assert len(attributions) == 4
    energies = [GNNCalculator(cu_model).get_potential_energy(f) for f in frames]
    assert np.allclose([a.target_value for a in attributions], energies)
