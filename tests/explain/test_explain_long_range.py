"""Explaining a long-range model: the short-range and electrostatic parts, and Coulomb pairs.

Checks: the attributions of the two parts add up to those of the total energy and each part is
complete on its own (Σ scores = E_sr − Σ E0 and E_el); the pair decomposition of the
electrostatic energy is exact for a molecule, reaches beyond the cutoff and counts every image
of a crystal once; the charge map is drawn.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list
from torch import nn

from ase_gnn import graph_from_atoms
from ase_gnn.testing import tiny_model
from explain import Energy, Explainer, coulomb_pairs, plot_charges, predicted_charges

pytest.importorskip("torchpme")

CUTOFF = 3.5


@pytest.fixture(scope="module", params=["SchNet", "NequIP"])
def model(request):
    model = tiny_model(request.param, ["Na", "Cl"], cutoff=CUTOFF, long_range=True).double()
    last = [m for m in model.electrostatics.charge_network.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():  # charges of a few tenths of e, as a trained model's, not 1e-3
        last[-1].weight.mul_(30.0)
    return model


def _fragments(separation: float = 7.0) -> Atoms:
    """Na₂Cl⁺ and NaCl₂⁻ (each bonded within the cutoff), ``separation`` Å apart along x."""
    first = [[0.0, 0.0, 0.0], [2.8, 0.0, 0.0], [1.4, 2.3, 0.1]]
    second = [
        [2.8 + separation, 0.1, 0.0],
        [5.6 + separation, 0.0, 0.2],
        [4.2 + separation, 2.4, 0],
    ]
    return Atoms("Na2ClNaCl2", positions=first + second)


def _crystal() -> Atoms:
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.rattle(0.1, seed=4)
    return atoms


@pytest.mark.parametrize("level", ["edge", "atom"])
@pytest.mark.parametrize("structure", ["fragments", "crystal"])
def test_parts_add_up_to_the_total_and_each_is_complete(model, level, structure):
    atoms = _fragments() if structure == "fragments" else _crystal()
    explanations = {
        part: Explainer(model, target=Energy(part=part), level=level).explain(atoms)
        for part in ("total", "short_range", "electrostatic")
    }
    total, short, electrostatic = explanations.values()
    np.testing.assert_allclose(short.node + electrostatic.node, total.node, atol=1e-9)
    graph = graph_from_atoms(atoms, model.cutoff, dtype=model.dtype)
    short_energy, electrostatic_energy, _ = model.energy_parts(graph)
    reference = float(model.reference_energies(graph).sum())
    expected = float(short_energy.sum()) - reference
    assert short.node.sum() == pytest.approx(expected, rel=1e-7, abs=1e-7)
    expected = float(electrostatic_energy.sum())
    assert electrostatic.node.sum() == pytest.approx(expected, rel=1e-7, abs=1e-7)
    assert abs(electrostatic.node).max() > 1e-4  # the electrostatic part is not trivially 0
    for explanation in explanations.values():
        assert abs(explanation.completeness_gap) < 1e-7 * max(1.0, abs(explanation.target_value))
    assert electrostatic.target == "electrostatic energy"


def test_the_electrostatic_part_of_a_short_range_model_is_refused():
    short_range = tiny_model("SchNet", ["Na", "Cl"], cutoff=CUTOFF).double()
    with pytest.raises(ValueError, match="long-range term"):
        Explainer(short_range, target=Energy(part="electrostatic"))
    with pytest.raises(ValueError, match="part must be one of"):
        Energy(part="coulomb")
    with pytest.raises(ValueError, match="long-range term"):
        coulomb_pairs(short_range, _fragments())


def test_coulomb_pairs_of_a_molecule_are_exact_and_reach_beyond_the_cutoff(model):
    atoms = _fragments(separation=9.0)
    pairs = coulomb_pairs(model, atoms)
    assert len(pairs.energies) == 15  # every pair of 6 atoms
    assert abs(pairs.remainder) < 1e-10 * max(1.0, abs(pairs.total))
    bands = pairs.by_distance([0, CUTOFF, 2 * CUTOFF, 100])
    assert sum(bands.values()) == pytest.approx(pairs.total, abs=1e-10)
    beyond = bands[f"{2 * CUTOFF:g}-100 Å"]
    assert abs(beyond) > 1e-3  # charged fragments interact far beyond the graph's cutoff
    assert (pairs.distances > 2 * CUTOFF).sum() == 9  # every inter-fragment pair
    # q_i q_j erf(r/2σ)/r of the predicted charges, by hand, for the farthest pair
    charges, _ = predicted_charges(model, atoms)
    from scipy.special import erf

    from ase_gnn.models.long_range import COULOMB_CONSTANT

    k = int(np.argmax(pairs.distances))
    i, j = pairs.pairs[k]
    r = np.linalg.norm(atoms.positions[j] - atoms.positions[i])
    width = model.electrostatics.width
    exact = COULOMB_CONSTANT * charges[i] * charges[j] * erf(r / (2 * width)) / r
    assert pairs.energies[k] == pytest.approx(exact, rel=1e-12)


def test_coulomb_pairs_of_a_crystal_count_every_image_once(model):
    """Pairs i ≤ j and images out to r_max, an atom's own images at half weight; the sum over
    spheres converges only conditionally, so what is left is reported, not hidden."""
    atoms = _crystal()
    r_max = 7.0
    pairs = coulomb_pairs(model, atoms, r_max)
    first, second = neighbor_list("ij", atoms, r_max)
    assert len(pairs.energies) == np.sum(first <= second)
    charges, _ = predicted_charges(model, atoms)
    own = pairs.pairs[:, 0] == pairs.pairs[:, 1]
    assert own.sum() == 8 * 6  # each atom's 6 images at a = 5.64 Å (the next at 7.98 Å)
    assert pairs.remainder == pytest.approx(pairs.total - pairs.energies.sum())
    assert pairs.r_max == r_max
    assert np.all(np.sign(pairs.energies[~own]) == np.sign(
        charges[pairs.pairs[~own, 0]] * charges[pairs.pairs[~own, 1]]
    ))  # fmt: skip


def test_charge_map_is_drawn(model, tmp_path):
    atoms = _crystal()
    charges, _ = predicted_charges(model, atoms)
    assert charges.sum() == pytest.approx(0.0, abs=1e-10)
    figure = plot_charges(atoms, charges, tmp_path / "charges.png")
    assert (tmp_path / "charges.png").stat().st_size > 5000
    assert figure.axes[0].collections[0].get_array().tolist() == pytest.approx(charges.tolist())
    with pytest.raises(ValueError, match="shape"):
        plot_charges(atoms, charges[:-1])
