"""NequIP: equivariant layers (e3nn's check), parity, the edge_weight hook, validation, files."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from e3nn.util.test import assert_equivariant, equivariance_error
from scipy.spatial.transform import Rotation

from ase_gnn import GNNCalculator, NequIP, graph_from_atoms, load_model, predict, save_model
from ase_gnn.testing import battery_structures

STRUCTURES = battery_structures(["Cu", "Ag"])


def small_nequip(**overrides: Any) -> NequIP:
    """Three layers (so one hidden → hidden layer with a residual), tiny widths, float64.

    Models are cached (building the e3nn modules takes about a second): treat them as read-only.
    """
    return _small_nequip(tuple(sorted(overrides.items())))


@functools.cache
def _small_nequip(overrides: tuple[tuple[str, Any], ...]) -> NequIP:
    config = {
        "cutoff": 4.0,
        "num_layers": 3,
        "num_features": 4,
        "l_max": 2,
        "num_radial": 4,
        "radial_hidden": 8,
        **dict(overrides),
    }
    model = NequIP(["Cu", "Ag"], **config).double()
    model.set_atomic_energies([-3.0, -2.0])
    return model


def layer_functions(model: NequIP, atoms):
    """One function (positions [N, 3], h [N, irreps_in.dim]) → layer output per layer."""
    graph = graph_from_atoms(atoms, model.cutoff, dtype=torch.float64)
    assert not atoms.pbc.any() and graph.num_edges > 0  # no cell: positions alone fix the edges

    def run(layer):
        def f(positions: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            edge_features, weights = model.edge_inputs(graph.with_positions(positions))
            return layer(h, graph.edge_index, edge_features, weights)

        return f

    return graph, [run(layer) for layer in model.interactions]


# e3nn builds its Wigner D matrices from generators in the default dtype (float32 here), so its
# checks resolve errors down to about 1e-7 even for a float64 model. The exact float64 check is
# test_l1_layers_are_exactly_equivariant_in_float64 (and the force tests below).
E3NN_TOLERANCE = 1e-6


@pytest.mark.parametrize("l_max", [1, 2, 3])
def test_every_layer_is_equivariant_under_rotation_inversion_and_translation(l_max):
    model = small_nequip(l_max=l_max)
    graph, functions = layer_functions(model, STRUCTURES["cluster"])
    for layer, f in zip(model.interactions, functions, strict=True):
        h = layer.irreps_in.randn(graph.num_atoms, -1, dtype=torch.float64)
        assert_equivariant(
            f,
            args_in=[graph.positions, h],
            irreps_in=["cartesian_points", layer.irreps_in],
            irreps_out=[layer.irreps_out],
            tolerance=E3NN_TOLERANCE,
        )


def _l1_representation(irreps, rotation: torch.Tensor) -> torch.Tensor:
    """Block-diagonal D(R) for irreps of 0e and 1o only: 1 for scalars, R for vectors (xyz)."""
    assert {ir for _, ir in irreps} <= {(0, 1), (1, -1)}
    one = torch.ones(1, 1, dtype=rotation.dtype)
    return torch.block_diag(
        *[one if ir.l == 0 else rotation for mul, ir in irreps for _ in range(mul)]
    )


@pytest.mark.parametrize("improper", [False, True], ids=["rotation", "rotoinversion"])
def test_l1_layers_are_exactly_equivariant_in_float64(improper):
    model = small_nequip(l_max=1)
    graph, functions = layer_functions(model, STRUCTURES["cluster"])
    rotation = torch.tensor(Rotation.random(random_state=1).as_matrix())
    rotation = -rotation if improper else rotation  # a 1o vector flips under inversion
    for layer, f in zip(model.interactions, functions, strict=True):
        h = layer.irreps_in.randn(graph.num_atoms, -1, dtype=torch.float64)
        d_in = _l1_representation(layer.irreps_in, rotation)
        d_out = _l1_representation(layer.irreps_out, rotation)
        transformed = f(graph.positions @ rotation.T, h @ d_in.T)
        torch.testing.assert_close(transformed, f(graph.positions, h) @ d_out.T, rtol=0, atol=1e-13)


def test_without_parity_layers_are_rotation_but_not_inversion_equivariant():
    model = small_nequip(l_max=1, parity=False)
    graph, functions = layer_functions(model, STRUCTURES["cluster"])
    layer, f = model.interactions[1], functions[1]  # hidden → hidden, 1e ⊗ 1e → 1e included
    h = layer.irreps_in.randn(graph.num_atoms, -1, dtype=torch.float64)
    errors = equivariance_error(
        f, [graph.positions, h], ["cartesian_points", layer.irreps_in], [layer.irreps_out]
    )
    assert max(errors[(0, False)].max(), errors[(0, True)].max()) < E3NN_TOLERANCE
    assert errors[(1, False)].max() > 1e-3  # parity_k = 1: inversion included


def _energy_forces(model, atoms):
    atoms = atoms.copy()
    atoms.calc = GNNCalculator(model, dtype=torch.float64)
    return atoms.get_potential_energy(), atoms.get_forces()


@pytest.mark.parametrize("name", ["cluster", "triclinic"])
def test_forces_rotate_with_the_structure_and_flip_under_inversion(name):
    model = small_nequip()
    atoms = STRUCTURES[name]
    energy, forces = _energy_forces(model, atoms)
    assert np.abs(forces).max() > 1e-3
    for seed in range(2):
        rotation = Rotation.random(random_state=seed).as_matrix()
        rotated = atoms.copy()
        rotated.positions = atoms.positions @ rotation.T
        rotated.cell = atoms.cell[:] @ rotation.T
        energy_rotated, forces_rotated = _energy_forces(model, rotated)
        assert abs(energy_rotated - energy) < 1e-10 * (1 + abs(energy))
        np.testing.assert_allclose(forces_rotated, forces @ rotation.T, rtol=0, atol=1e-10)
    # Inversion r → −r through the origin; a lattice is centrosymmetric, so the cell stays.
    inverted = atoms.copy()
    inverted.positions = -atoms.positions
    energy_inverted, forces_inverted = _energy_forces(model, inverted)
    assert abs(energy_inverted - energy) < 1e-10 * (1 + abs(energy))
    np.testing.assert_allclose(forces_inverted, -forces, rtol=0, atol=1e-10)


def test_without_parity_the_energy_tells_mirror_images_apart():
    model = small_nequip(l_max=1, parity=False)
    atoms = STRUCTURES["cluster"]
    mirrored = atoms.copy()
    mirrored.positions = -atoms.positions
    energy, forces = _energy_forces(model, atoms)
    energy_mirrored, _ = _energy_forces(model, mirrored)
    assert abs(energy_mirrored - energy) > 1e-8  # a chiral (pseudo-scalar) term reaches E
    rotation = Rotation.random(random_state=3).as_matrix()
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rotation.T
    energy_rotated, forces_rotated = _energy_forces(model, rotated)
    assert abs(energy_rotated - energy) < 1e-10 * (1 + abs(energy))
    np.testing.assert_allclose(forces_rotated, forces @ rotation.T, rtol=0, atol=1e-10)


def test_representation_is_invariant_scalars_per_atom():
    model = small_nequip()
    atoms = STRUCTURES["cluster"]
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ Rotation.random(random_state=5).as_matrix().T
    features = []
    for a in (atoms, rotated, atoms):
        graph = graph_from_atoms(a, model.cutoff, dtype=torch.float64)
        features.append(model.representation(graph))
    assert features[0].shape == (len(atoms), 4)
    torch.testing.assert_close(features[1], features[0], rtol=0, atol=1e-10)


@pytest.fixture
def graph():
    atoms = STRUCTURES["bulk"].repeat((2, 1, 1))
    return graph_from_atoms(atoms, 4.0, dtype=torch.float64)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"l_max": 3, "parity": False}, {"aggregation": "mean", "avg_num_neighbors": None}],
    ids=["default", "l3-no-parity", "mean"],
)
def test_edge_weight_one_is_the_plain_model_and_zero_deletes_the_edge(graph, overrides):
    model = small_nequip(**overrides)
    ones = torch.ones(graph.num_edges, dtype=torch.float64)
    assert torch.equal(model(graph, ones), model(graph))
    removed = torch.tensor([0, 7, 30, 31])
    keep = torch.ones(graph.num_edges, dtype=torch.bool)
    keep[removed] = False
    pruned = dataclasses.replace(
        graph, edge_index=graph.edge_index[:, keep], edge_shift=graph.edge_shift[keep]
    )
    torch.testing.assert_close(model(graph, keep.double()), model(pruned), rtol=0, atol=1e-12)


def test_force_loss_is_differentiable_with_respect_to_parameters(graph):
    model = copy.deepcopy(small_nequip())
    prediction = predict(model, graph, forces=True, stress=True, training=True)
    assert prediction.forces is not None and prediction.stress is not None
    loss = prediction.forces.square().sum() + prediction.stress.square().sum()
    loss.backward()
    for name, parameter in model.named_parameters():
        # The readout's last bias cancels against the isolated-atom reference: no gradient.
        if parameter.requires_grad and name != "output.2.bias":
            assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    radial = model.interactions[1].radial_mlp
    assert any(p.grad.abs().sum() > 0 for p in radial.parameters())


def test_max_aggregation_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="max.*not rotation equivariant"):
        NequIP(["Cu"], aggregation="max")
    with pytest.raises(ValueError, match="unknown aggregation"):
        NequIP(["Cu"], aggregation="median")  # type: ignore[arg-type]  # bad input on purpose


@pytest.mark.parametrize("l_max", [0, 4, -1])
def test_l_max_outside_one_to_three_is_refused(l_max):
    with pytest.raises(ValueError, match="l_max must be one of"):
        NequIP(["Cu"], l_max=l_max)


@pytest.mark.parametrize(
    "overrides",
    [{"num_layers": 0}, {"num_features": 0}, {"avg_num_neighbors": 0.0}],
    ids=["layers", "features", "neighbors"],
)
def test_impossible_sizes_are_refused(overrides):
    with pytest.raises(ValueError):
        NequIP(["Cu"], **overrides)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_save_load_round_trip_is_exact(tmp_path: Path, dtype):
    model = small_nequip(l_max=3, parity=False, aggregation="mean", avg_num_neighbors=None)
    model = copy.deepcopy(model).to(dtype)
    config = model.config()
    assert json.loads(json.dumps(config)) == config
    assert config["avg_num_neighbors"] is None and config["parity"] is False
    path = tmp_path / "nequip.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert isinstance(loaded, NequIP) and loaded.config() == config and loaded.dtype == dtype
    graph = graph_from_atoms(STRUCTURES["triclinic"], model.cutoff, dtype=dtype)
    expected = predict(model, graph, forces=True, stress=True)
    actual = predict(loaded, graph, forces=True, stress=True)
    for name in ("local_energies", "forces", "stress"):
        assert torch.equal(getattr(actual, name), getattr(expected, name)), name


def test_default_config_is_fixed_and_documented():
    config = NequIP(["Cu"]).config()
    assert config["avg_num_neighbors"] == 12.0 and config["l_max"] == 1
    assert config["num_layers"] == 3 and config["num_features"] == 32
