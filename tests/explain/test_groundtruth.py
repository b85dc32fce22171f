"""Attributions of a model trained on Lennard-Jones data follow the true pair energies."""

from __future__ import annotations

import numpy as np
import pytest

from explain import Explainer
from explain.groundtruth import (
    bond_energies,
    correlation,
    dimer_energies,
    local_energy_check,
    pair_potential_check,
)


def test_dimer_energies_are_the_lennard_jones_formula(lennard_jones):
    r = np.array([3.2, 3.8, 4.5])
    sigma, epsilon = 3.4, 0.0104
    textbook = 4 * epsilon * ((sigma / r) ** 12 - (sigma / r) ** 6)
    energies = dimer_energies(lennard_jones, (18, 18), r)
    assert np.allclose(energies[:2], textbook[:2], rtol=1e-12)  # below the 4 Å switch onset
    assert 0 > energies[2] > textbook[2]  # switched off smoothly towards 5 Å


def test_correlation_of_known_arrays():
    x = np.arange(10.0)
    assert correlation(x, 2 * x + 1) == pytest.approx({"pearson": 1.0, "spearman": 1.0})
    assert correlation(x, x**3)["spearman"] == pytest.approx(1.0)
    assert np.isnan(correlation(x[:2], x[:2])["pearson"])


def test_bond_attributions_follow_pair_energies(lj_model, lj_data, lennard_jones):
    """Integrated Gradients bond scores of the trained model against V(r) of every bond."""
    snapshots = [a for a in lj_data[120:] if len(a) > 8][:3]
    explainer = Explainer(lj_model, level="edge")
    attributed, true = [], []
    for atoms in snapshots:
        scores, energies = bond_energies(explainer.explain(atoms), lennard_jones)
        attributed.append(scores)
        true.append(energies)
    result = correlation(np.concatenate(attributed), np.concatenate(true))
    assert result["pearson"] > 0.8 and result["spearman"] > 0.6, result
    assert pair_potential_check(explainer.explain(snapshots[0]), lennard_jones)["pearson"] > 0.7


def test_atom_attributions_follow_per_atom_energies(lj_model, lj_data):
    atoms = next(a for a in lj_data[120:] if a.info["config_type"] == "cluster")
    true = atoms.get_potential_energies()  # half of each pair energy per atom
    attribution = Explainer(lj_model, level="atom").explain(atoms)
    assert local_energy_check(attribution, true)["pearson"] > 0.8
