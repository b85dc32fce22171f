"""The many-body expansion: bookkeeping, periodic clusters, invariances, and reference potentials.

The reference tests check the expansion code, not a model: a pair potential has no three-body
terms, Stillinger–Weber's terms are its own two- and three-body functions with nothing left
over, and EMT's embedding leaves a remainder.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from ase_gnn import GNNCalculator, SchNet
from ase_gnn.data.silicon import SW_CUTOFF, generate_sw, stillinger_weber
from ase_gnn.testing import tiny_model
from ase_gnn.training import prepare_model, train_model
from explain import Explainer, many_body, plot_profiles
from explain.groundtruth import correlation
from explain.many_body import triplet_interactions


def _energy(calc, atoms, indices, shifts=None):
    """Energy of the cluster of ``atoms[indices]`` moved by ``shifts`` cells, alone."""
    positions = atoms.positions[indices]
    if shifts is not None:
        positions = positions + np.asarray(shifts) @ atoms.cell.array
    cluster = Atoms(numbers=atoms.numbers[indices], positions=positions)
    cluster.calc = calc
    return cluster.get_potential_energy()


@pytest.fixture(scope="module")
def models():
    return {name: tiny_model(name, ["Cu"], cutoff=3.0).double() for name in ("SchNet", "NequIP")}


def test_three_atoms_expand_exactly_into_their_clusters(models, architecture):
    model = models[architecture]
    atoms = Atoms("Cu3", positions=[[0, 0, 0], [2.4, 0, 0], [1.0, 2.0, 0.3]])
    result = many_body(model, atoms)
    calc = GNNCalculator(model, dtype="float64")
    e0 = float(model.atomic_energies[0])
    np.testing.assert_allclose(result.one_body, e0, atol=1e-12)  # an atom alone keeps E0
    assert len(result.pair_energy) == 3 and len(result.triplet_energy) == 1
    for (i, j), value in zip(result.pair_index, result.pair_energy):
        assert value == pytest.approx(_energy(calc, atoms, [i, j]) - 2 * e0, abs=1e-10)
    assert result.energy == pytest.approx(_energy(calc, atoms, [0, 1, 2]), abs=1e-10)
    assert abs(result.remainder) < 1e-10  # three atoms: nothing beyond three bodies
    assert sum(result.profile().values()) == pytest.approx(1.0)


def test_a_periodic_cell_has_the_clusters_of_its_crystal(models):
    # fcc with nearest neighbours only (2.55 Å < 3 Å < 3.6 Å): per atom 6 pairs and
    # C(12, 2) = 66 paths, of which 24 triangles are counted three times: 50 triplets
    model = models["SchNet"]
    one = bulk("Cu", "fcc", a=3.6)
    result = many_body(model, one)
    assert len(result.pair_energy) == 6 and len(result.triplet_energy) == 50
    assert (result.pair_index == 0).all()  # an atom and its own images
    assert abs(result.remainder) > 1e-6  # 4-body terms and more
    # every Δ3 is that of the cluster cut out of the crystal by hand
    calc = GNNCalculator(model, dtype="float64")
    e0, pair = float(model.atomic_energies[0]), result.pair_energy[0]
    for t in (0, 17, 49):
        indices, shifts = result.triplet_index[t], np.vstack([[0, 0, 0], result.triplet_shift[t]])
        cluster = _energy(calc, one, indices, shifts)
        bonded = int((result.triplet_distance[t] < 3.0).sum())  # all nearest: Δ2 equal
        assert result.triplet_energy[t] == pytest.approx(cluster - 3 * e0 - bonded * pair, abs=1e-9)
    # a supercell is the same crystal: every sum scales with the number of atoms
    big = many_body(model, one * (2, 2, 2))
    assert len(big.pair_energy) == 48 and len(big.triplet_energy) == 400
    for n in (1, 2, 3):
        assert big.sums[n] == pytest.approx(8 * result.sums[n], rel=1e-10)
    assert big.remainder == pytest.approx(8 * result.remainder, rel=1e-8)


def test_the_expansion_is_invariant_under_translation_rotation_and_permutation(models):
    model = models["NequIP"]
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 1)
    atoms.rattle(0.15, seed=3)
    reference = many_body(model, atoms)
    moved = atoms.copy()
    moved.positions += [5.3, -7.1, 2.2]  # atoms wrap into other cells
    rotated = atoms.copy()
    rotated.rotate(37, (1, 2, 3), rotate_cell=True)
    order = np.random.default_rng(0).permutation(len(atoms))
    for other, permutation in ((moved, None), (rotated, None), (atoms[order], order)):
        result = many_body(model, other)
        assert len(result.pair_energy) == len(reference.pair_energy)
        assert len(result.triplet_energy) == len(reference.triplet_energy)
        for mine, theirs in ((result.pair_energy, reference.pair_energy),
                             (result.triplet_energy, reference.triplet_energy),
                             (result.triplet_angle, reference.triplet_angle)):  # fmt: skip
            np.testing.assert_allclose(np.sort(mine), np.sort(theirs), atol=1e-9)
        assert result.remainder == pytest.approx(reference.remainder, abs=1e-9)
        if permutation is not None:  # the atoms' own terms follow them
            np.testing.assert_allclose(result.one_body, reference.one_body[permutation])


def test_a_pair_potential_has_no_three_body_terms_or_remainder():
    calc = LennardJones(sigma=2.3, epsilon=0.4, rc=5.0)
    atoms = bulk("Ar", "fcc", a=3.6) * (2, 1, 1)
    atoms.rattle(0.1, seed=1)
    result = many_body(calc, atoms, cutoff=5.0)
    assert len(result.triplet_energy) > 100
    assert np.abs(result.triplet_energy).max() < 1e-10
    assert abs(result.remainder) < 1e-10
    r = result.pair_distance  # Δ2 is the (shifted) Lennard-Jones pair energy itself
    lj = lambda x: 4 * 0.4 * ((2.3 / x) ** 12 - (2.3 / x) ** 6)  # noqa: E731
    np.testing.assert_allclose(result.pair_energy, lj(r) - lj(5.0), atol=1e-12)


def test_emt_has_terms_beyond_three_bodies():
    atoms = Atoms("Cu4", positions=[[0, 0, 0], [2.5, 0, 0], [1.2, 2.2, 0], [1.2, 0.8, 2.1]])
    result = many_body(EMT(), atoms, cutoff=6.0)
    assert len(result.pair_energy) == 6 and len(result.triplet_energy) == 4
    print(f"EMT Cu4: sums {result.sums}, remainder {result.remainder:.4f} eV")
    assert abs(result.remainder) > 1e-3 * abs(result.interaction_energy)


def test_bands_add_up_and_bad_arguments_are_refused(models, tmp_path):
    result = many_body(models["SchNet"], bulk("Cu", "fcc", a=3.6, cubic=True))
    assert result.bands(2, "distance", [0, 3.0]).sum() == pytest.approx(result.sums[2])
    assert result.bands(3, "angle", [0, 90, 180.01]).sum() == pytest.approx(result.sums[3])
    with pytest.raises(ValueError, match="order 2 by 'distance'"):
        result.bands(2, "angle", [0, 180])
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        many_body(models["SchNet"], result.atoms, order=4)
    with pytest.raises(ValueError, match="beyond the model's"):
        many_body(models["SchNet"], result.atoms, cutoff=4.0)
    with pytest.raises(ValueError, match="cutoff="):
        many_body(EMT(), result.atoms)
    files = result.write(tmp_path)
    triplets = np.loadtxt(files[2], delimiter=",", skiprows=1)
    np.testing.assert_allclose(triplets[:, -1], result.triplet_energy, rtol=1e-9)
    figure = result.plot(tmp_path / "many_body.png")
    assert len(figure.axes) == 3 and (tmp_path / "many_body.png").stat().st_size > 10_000
    plot_profiles([result, result], ["a", "b"])
    figure = result.plot3d(top=5, path=tmp_path / "triplets.png")
    assert len(figure.axes[0].collections) >= 5  # a wedge per triplet, atoms
    with pytest.raises(ValueError, match="3 values for"):
        result.plot3d(values=np.ones(3))


def test_a_float32_model_is_evaluated_in_float64_without_changing_it():
    model = tiny_model("SchNet", ["Cu"], cutoff=3.0)
    atoms = bulk("Cu", "fcc", a=3.6)
    result = many_body(model, atoms)
    assert model.dtype == torch.float32
    exact = many_body(model.double(), atoms)  # the same numbers as a float64 model's
    np.testing.assert_array_equal(result.triplet_energy, exact.triplet_energy)
    single = many_body(tiny_model("SchNet", ["Cu"], cutoff=3.0), atoms, dtype=torch.float32)
    assert np.abs(single.triplet_energy - exact.triplet_energy).max() > 0


# Stillinger-Weber silicon, PRB 31, 5262 (1985): the formulas retyped here, independent of
# matscipy's implementation that labels the data
EPSILON, SIGMA, A, B, LAMBDA, GAMMA, RANGE = (
    2.1683,
    2.0951,
    7.049556277,
    0.6022245584,
    21.0,
    1.2,
    1.8,
)


def _sw_pair(r):
    cut = RANGE * SIGMA
    inside = r < cut
    x = np.where(inside, r, 0.5 * cut)
    value = A * EPSILON * (B * (SIGMA / x) ** 4 - 1) * np.exp(SIGMA / (x - cut))
    return np.where(inside, value, 0.0)


def _sw_triplet(r_ij, r_ik, cos_jik):
    cut = RANGE * SIGMA
    if r_ij >= cut or r_ik >= cut:
        return 0.0
    radial = np.exp(GAMMA * SIGMA / (r_ij - cut)) * np.exp(GAMMA * SIGMA / (r_ik - cut))
    return LAMBDA * EPSILON * (cos_jik + 1 / 3) ** 2 * radial


def _sw_triplet_terms(result, t):
    """Σ over the triplet's three possible centres of φ3 (those with both legs in range)."""
    r_ij, r_ik, r_jk = result.triplet_distance[t]
    total = 0.0
    for a, b, c in ((r_ij, r_ik, r_jk), (r_ij, r_jk, r_ik), (r_ik, r_jk, r_ij)):
        total += _sw_triplet(a, b, (a**2 + b**2 - c**2) / (2 * a * b))  # angle opposite c
    return total


def test_stillinger_weber_is_exactly_its_two_and_three_body_terms():
    atoms = bulk("Si", "diamond", a=5.431 * 0.95, cubic=True) * (2, 1, 1)
    atoms.rattle(0.2, seed=5)  # compressed and rattled: second neighbours come in range
    result = many_body(stillinger_weber(), atoms, cutoff=SW_CUTOFF)
    assert (result.triplet_distance[:, 2] < SW_CUTOFF).any()  # there are triangles
    np.testing.assert_allclose(result.one_body, 0.0, atol=1e-12)
    assert abs(result.remainder) < 1e-8
    np.testing.assert_allclose(result.pair_energy, _sw_pair(result.pair_distance), atol=1e-9)
    assert result.sums[2] == pytest.approx(_sw_pair(result.pair_distance).sum(), abs=1e-8)
    expected = [_sw_triplet_terms(result, t) for t in range(len(result.triplet_energy))]
    np.testing.assert_allclose(result.triplet_energy, expected, atol=1e-9)
    assert result.profile()["remainder"] == pytest.approx(0.0, abs=1e-9)
    # a molecule without a cell (matscipy needs one): a trimer is exactly its three terms
    trimer = Atoms("Si3", positions=[[0, 0, 0], [2.35, 0, 0], [-0.8, 2.2, 0]])
    alone = many_body(stillinger_weber(), trimer, cutoff=SW_CUTOFF)
    assert abs(alone.remainder) < 1e-12 and len(alone.triplet_energy) == 1


@pytest.mark.slow
def test_a_model_trained_on_stillinger_weber_learns_its_pair_and_triplet_terms():
    # with isolated clusters in its data, the model sees its low-order terms directly
    data = generate_sw(80, seed=0, progress=False)
    model = SchNet(["Si"], cutoff=4.0, hidden_channels=32, num_interactions=2, num_radial=8)
    prepare_model(model, data[:72], "isolated:sw")
    train_model(model, data[:72], data[72:], epochs=30, batch_size=8,
                fit_reference_energies=False, progress=False)  # fmt: skip
    atoms = bulk("Si", "diamond", a=5.431 * 0.97, cubic=True) * (2, 1, 1)
    atoms.rattle(0.15, seed=5)
    reference = many_body(stillinger_weber(), atoms, cutoff=4.0)
    learned = many_body(model, atoms)
    assert np.array_equal(learned.triplet_index, reference.triplet_index)  # the same clusters
    pairs = correlation(learned.pair_energy, reference.pair_energy)
    triplets = correlation(learned.triplet_energy, reference.triplet_energy)
    print(f"SchNet on SW: pairs {pairs}, triplets {triplets}, profile {learned.profile()}")
    assert pairs["pearson"] > 0.8 and pairs["spearman"] > 0.8, pairs
    assert triplets["pearson"] > 0.3 and triplets["spearman"] > 0.3, triplets
    # the gradient route to the same three-body terms: Integrated Hessians over the edge gates
    small = atoms[:8].copy()
    small.set_cell(atoms.cell.array * [[0.5], [1], [1]])
    expansion = many_body(model, small)
    attribution = Explainer(model.double(), "integrated_hessians", level="edge").explain(small)
    agreement = correlation(triplet_interactions(attribution, expansion), expansion.triplet_energy)
    print(f"Integrated Hessians against the exact Δ3 of the model: {agreement}")
    assert agreement["pearson"] > 0.5 and agreement["spearman"] > 0.5, agreement
