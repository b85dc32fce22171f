"""The physics battery of ase_gnn.testing, run for every registered architecture and dtype."""

from __future__ import annotations

import pytest
import torch

from ase_gnn import testing
from ase_gnn.models import ARCHITECTURES

STRUCTURES = testing.battery_structures(["Cu", "Ag"])


def test_every_architecture_has_a_tiny_test_config() -> None:
    assert set(ARCHITECTURES) <= set(testing.TINY_CONFIGS)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_forces_match_finite_differences(model, dtype, name) -> None:
    testing.assert_forces_match_finite_differences(model, STRUCTURES[name], dtype)


@pytest.mark.parametrize("name", ["bulk", "triclinic", "slab"])
def test_stress_matches_finite_differences(model, dtype, name) -> None:
    testing.assert_stress_matches_finite_differences(model, STRUCTURES[name], dtype)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_energy_invariant_and_forces_equivariant_under_rotation(model, dtype, name) -> None:
    testing.assert_rotation_equivariant(model, STRUCTURES[name], dtype)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_translation_invariance(model, dtype, name) -> None:
    testing.assert_translation_invariant(model, STRUCTURES[name], dtype)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_permutation_equivariance(model, dtype, name) -> None:
    testing.assert_permutation_equivariant(model, STRUCTURES[name], dtype)


@pytest.mark.parametrize("name", ["bulk", "triclinic", "slab"])
def test_periodic_images_are_equivalent(model, dtype, name) -> None:
    testing.assert_periodic_image_invariant(model, STRUCTURES[name], dtype)


@pytest.mark.parametrize("name", ["bulk", "triclinic"])
def test_supercell_energy_is_extensive_with_sum_readout(model, dtype, name) -> None:
    testing.assert_supercell_extensive(model, STRUCTURES[name], dtype)


def test_supercell_energy_is_intensive_with_mean_readout(architecture, dtype) -> None:
    model = testing.tiny_model(architecture, ["Cu", "Ag"], readout="mean")
    testing.assert_supercell_extensive(model, STRUCTURES["bulk"], dtype)


def test_smooth_as_neighbor_crosses_cutoff(model, dtype) -> None:
    testing.assert_smooth_at_cutoff(model, "Cu", dtype)


def test_isolated_atoms_have_reference_energy_and_no_force(model, dtype) -> None:
    testing.assert_isolated_atoms_have_reference_energy(model, dtype)


def test_far_apart_fragments_add_up(model, dtype) -> None:
    cluster = STRUCTURES["cluster"]
    testing.assert_fragments_additive(model, cluster, cluster[:3], dtype)


def test_batched_prediction_equals_one_by_one(model, dtype) -> None:
    testing.assert_batch_matches_single(
        model, [STRUCTURES["bulk"], STRUCTURES["triclinic"], STRUCTURES["slab"]], dtype
    )


def test_save_load_gives_identical_predictions(model, dtype) -> None:
    testing.assert_save_load_roundtrip(model.to(dtype), STRUCTURES["bulk"])


def test_battery_passes_for_mean_aggregation(architecture) -> None:
    model = testing.tiny_model(architecture, ["Cu", "Ag"], aggregation="mean")
    testing.check_model(model, torch.float64)


def test_max_aggregation_is_invariant_and_has_consistent_forces(architecture) -> None:
    # max is only piecewise smooth (forces jump where the maximising neighbor changes, and tied
    # periodic images split gradients arbitrarily), so it gets the checks that hold regardless.
    if "max" not in testing.supported_aggregations(architecture):
        pytest.skip(f"{architecture} refuses aggregation='max' (not equivariant)")
    model = testing.tiny_model(architecture, ["Cu", "Ag"], aggregation="max")
    for atoms in STRUCTURES.values():
        testing.assert_forces_match_finite_differences(model, atoms)
        testing.assert_translation_invariant(model, atoms)
        testing.assert_permutation_equivariant(model, atoms)
    testing.assert_rotation_equivariant(model, STRUCTURES["cluster"])
    testing.assert_supercell_extensive(model, STRUCTURES["bulk"])
    testing.assert_smooth_at_cutoff(model, "Cu")
    testing.assert_isolated_atoms_have_reference_energy(model)
