"""Reusable physics assertions for any :class:`~ase_gnn.models.EnergyModel`.

Every registered architecture must pass this battery (``tests/ase_gnn/test_model_battery.py``
runs it in float64 and float32). A new architecture adds a small configuration to
:data:`TINY_CONFIGS` and inherits all checks::

    from ase_gnn.testing import check_model, tiny_model
    check_model(tiny_model("SchNet", species=["Cu", "Ag"]), dtype=torch.float64)

Each ``assert_*`` function raises ``AssertionError`` with the largest deviation found.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, fcc111
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from scipy.spatial.transform import Rotation

from ase_gnn.calculators.calculator import GNNCalculator
from ase_gnn.graph.atomic_graph import batch_graphs, has_stress
from ase_gnn.graph.neighbors import graph_from_atoms
from ase_gnn.models.base import ARCHITECTURES, EnergyModel
from ase_gnn.models.forces import predict
from ase_gnn.models.io import load_model, save_model
from ase_gnn.training.config import TrainConfig, config_from_dict

#: Small hyper-parameters per architecture, so the battery runs in seconds.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "SchNet": {"hidden_channels": 16, "num_interactions": 2, "num_radial": 6},
    "NequIP": {
        "num_layers": 2,
        "num_features": 8,
        "l_max": 2,
        "num_radial": 6,
        "radial_hidden": 16,
    },
}

#: Absolute tolerances per dtype (energies in eV, forces in eV/Å, stress in eV/Å³).
TOLERANCES: dict[torch.dtype, float] = {torch.float64: 1e-9, torch.float32: 2e-4}


def supported_aggregations(architecture: str) -> tuple[str, ...]:
    """Aggregations an architecture accepts: its ``aggregations`` attribute, else all of them.

    Equivariant architectures (NequIP) refuse ``"max"``, which would break equivariance.
    """
    return ARCHITECTURES[architecture].aggregations


def tiny_model(
    architecture: str, species: list[str], cutoff: float = 4.0, **overrides: Any
) -> EnergyModel:
    """A small randomly initialised model with non-zero reference energies, for tests."""
    config = {**TINY_CONFIGS[architecture], **overrides}
    model = ARCHITECTURES[architecture](species=species, cutoff=cutoff, **config)
    rng = np.random.default_rng(0)
    model.set_atomic_energies(list(rng.uniform(-4.0, -1.0, len(species))))
    return model


def small_training_config(out_dir: str | Path, **sections: dict[str, Any]) -> TrainConfig:
    """A two-epoch training configuration for tests, with sections overridden key by key.

    Parameters
    ----------
    out_dir : str or Path
        Where the run writes its files.
    **sections : dict
        Per section (``run``, ``loss``, ``optimizer``, ...), the settings to change, e.g.
        ``small_training_config(tmp, run={"epochs": 5})``.

    Returns
    -------
    TrainConfig
        Checked like a configuration read from TOML (``data.train`` is a placeholder).
    """
    values: dict[str, dict[str, Any]] = {
        "data": {"train": "unused"},
        "run": {"out_dir": str(out_dir), "epochs": 2, "batch_size": 4, "progress": False},
    }
    for name, section in sections.items():
        values.setdefault(name, {}).update(section)
    return config_from_dict(values)


def _calc(model: EnergyModel, dtype: torch.dtype) -> GNNCalculator:
    return GNNCalculator(model, dtype=dtype)


def _energy_forces(
    model: EnergyModel, atoms: Atoms, dtype: torch.dtype
) -> tuple[float, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = _calc(model, dtype)
    return atoms.get_potential_energy(), atoms.get_forces()


def battery_structures(species: list[str]) -> dict[str, Atoms]:
    """Rattled structures covering the cases the battery needs, built from ``species``.

    Returns a molecule-like cluster, a cubic bulk cell, a triclinic cell and a (T, T, F) slab,
    with species assigned cyclically so that multi-species models see every element.
    """
    rng = np.random.default_rng(1)

    def decorate(atoms: Atoms) -> Atoms:
        atoms.symbols = [species[k % len(species)] for k in range(len(atoms))]
        atoms.positions += rng.normal(0.0, 0.1, atoms.positions.shape)
        return atoms

    cluster = decorate(bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1)))
    cluster.pbc = False
    cluster.cell = np.zeros((3, 3))
    cubic = decorate(bulk("Cu", "fcc", a=3.6, cubic=True))
    triclinic = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2))
    triclinic.set_cell(
        triclinic.cell[:] @ np.array([[1, 0.1, 0], [0, 1, 0.15], [0.05, 0, 1]]), scale_atoms=True
    )
    triclinic = decorate(triclinic)
    slab = decorate(fcc111("Cu", size=(2, 2, 3), a=3.6, vacuum=4.0, periodic=False))
    slab.pbc = (True, True, False)
    return {"cluster": cluster, "bulk": cubic, "triclinic": triclinic, "slab": slab}


# -- derivatives ------------------------------------------------------------------------------
def assert_forces_match_finite_differences(
    model: EnergyModel, atoms: Atoms, dtype: torch.dtype = torch.float64
) -> None:
    """Autograd forces equal central finite differences of the energy."""
    atoms = atoms.copy()
    atoms.calc = _calc(model, dtype)
    eps, atol = (1e-5, 1e-7) if dtype == torch.float64 else (1e-2, 5e-3)
    numeric = calculate_numerical_forces(atoms, eps=eps)
    error = np.abs(numeric - atoms.get_forces()).max()
    assert error < atol, f"forces differ from finite differences by {error:.3g} eV/Å"


def assert_stress_matches_finite_differences(
    model: EnergyModel, atoms: Atoms, dtype: torch.dtype = torch.float64
) -> None:
    """Autograd stress equals finite differences of the energy under strain (Voigt order)."""
    atoms = atoms.copy()
    atoms.calc = _calc(model, dtype)
    eps, atol = (1e-6, 1e-8) if dtype == torch.float64 else (1e-3, 1e-4)
    numeric = calculate_numerical_stress(atoms, eps=eps)
    error = np.abs(numeric - atoms.get_stress()).max()
    assert error < atol, f"stress differs from finite differences by {error:.3g} eV/Å³"


# -- symmetries -------------------------------------------------------------------------------
def assert_rotation_equivariant(
    model: EnergyModel, atoms: Atoms, dtype: torch.dtype = torch.float64, seed: int = 0
) -> None:
    """Energy is invariant and forces and stress rotate with the structure (and its cell)."""
    tol = TOLERANCES[dtype]
    rotation = Rotation.random(random_state=seed).as_matrix()
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rotation.T
    rotated.cell = atoms.cell[:] @ rotation.T
    reference = atoms.copy()
    for a in (reference, rotated):
        a.calc = _calc(model, dtype)
    scale = 1 + abs(reference.get_potential_energy())
    assert abs(reference.get_potential_energy() - rotated.get_potential_energy()) < tol * scale
    error = np.abs(reference.get_forces() @ rotation.T - rotated.get_forces()).max()
    assert error < 10 * tol, f"forces are not rotation equivariant (error {error:.3g} eV/Å)"
    if reference.pbc.any():
        sigma = reference.get_stress(voigt=False)
        error = np.abs(rotation @ sigma @ rotation.T - rotated.get_stress(voigt=False)).max()
        assert error < tol, f"stress is not rotation equivariant (error {error:.3g})"


def assert_translation_invariant(
    model: EnergyModel, atoms: Atoms, dtype: torch.dtype = torch.float64
) -> None:
    """A rigid translation changes neither energy nor forces."""
    tol = TOLERANCES[dtype]
    moved = atoms.copy()
    moved.positions += np.array([0.37, -1.21, 2.03])
    energy, forces = _energy_forces(model, atoms, dtype)
    energy_moved, forces_moved = _energy_forces(model, moved, dtype)
    assert abs(energy - energy_moved) < tol * (1 + abs(energy))
    assert np.abs(forces - forces_moved).max() < 10 * tol


def assert_permutation_equivariant(
    model: EnergyModel, atoms: Atoms, dtype: torch.dtype = torch.float64, seed: int = 0
) -> None:
    """Reordering atoms leaves the energy unchanged and permutes forces and per-atom energies."""
    tol = TOLERANCES[dtype]
    order = np.random.default_rng(seed).permutation(len(atoms))
    reference, permuted = atoms.copy(), atoms[order]
    for a in (reference, permuted):
        a.calc = _calc(model, dtype)
    scale = 1 + abs(reference.get_potential_energy())
    assert abs(reference.get_potential_energy() - permuted.get_potential_energy()) < tol * scale
    assert np.abs(reference.get_forces()[order] - permuted.get_forces()).max() < 10 * tol
    energies = reference.get_potential_energies()[order]
    assert np.abs(energies - permuted.get_potential_energies()).max() < tol * scale


def assert_periodic_image_invariant(
    model: EnergyModel, atoms: Atoms, dtype: torch.dtype = torch.float64, seed: int = 0
) -> None:
    """Moving atoms by lattice vectors along periodic axes (unwrapping) changes nothing."""
    tol = TOLERANCES[dtype]
    rng = np.random.default_rng(seed)
    shifts = rng.integers(-3, 4, size=(len(atoms), 3)) * atoms.pbc
    moved = atoms.copy()
    moved.positions += shifts @ atoms.cell[:]
    energy, forces = _energy_forces(model, atoms, dtype)
    energy_moved, forces_moved = _energy_forces(model, moved, dtype)
    assert abs(energy - energy_moved) < tol * (1 + abs(energy))
    assert np.abs(forces - forces_moved).max() < 10 * tol


def assert_supercell_extensive(
    model: EnergyModel, atoms: Atoms, dtype: torch.dtype = torch.float64
) -> None:
    """With a sum readout a 2×2×2 supercell has 8× the energy (a mean readout: the same energy).

    Energies come from :func:`ase_gnn.predict`, not the calculator, which refuses mean readouts.
    """
    tol = TOLERANCES[dtype]
    model = copy.deepcopy(model).to(dtype)

    def energy_of(structure: Atoms) -> float:
        graph = graph_from_atoms(structure, model.cutoff, dtype=dtype, device=model.device)
        return float(predict(model, graph, forces=False).energy[0])

    energy, energy_super = energy_of(atoms), energy_of(atoms.repeat((2, 2, 2)))
    expected = 8 * energy if model.readout == "sum" else energy
    assert abs(energy_super - expected) < 10 * tol * (1 + abs(expected)), (
        f"supercell energy {energy_super} != {expected} ({model.readout} readout)"
    )


# -- locality and batching --------------------------------------------------------------------
def assert_smooth_at_cutoff(
    model: EnergyModel, species: str, dtype: torch.dtype = torch.float64
) -> None:
    """A dimer's energy and force go continuously to the isolated limit as r crosses the cutoff."""
    rc = model.cutoff
    tol = TOLERANCES[dtype]

    def dimer(r: float) -> tuple[float, np.ndarray]:
        return _energy_forces(model, Atoms(f"{species}2", positions=[[0, 0, 0], [r, 0, 0]]), dtype)

    isolated, forces_far = dimer(rc + 1e-3)
    assert np.abs(forces_far).max() == 0.0
    for delta in (1e-2, 1e-3):
        energy, forces = dimer(rc - delta)
        # The envelope vanishes with its first two derivatives: errors shrink like delta^3.
        assert abs(energy - isolated) < 1e3 * delta**3 + tol, (energy, isolated, delta)
        assert np.abs(forces).max() < 1e3 * delta**2 + 10 * tol, (forces, delta)


def assert_isolated_atoms_have_reference_energy(
    model: EnergyModel, dtype: torch.dtype = torch.float64
) -> None:
    """Atoms farther apart than the cutoff have exactly E0 each and zero force."""
    symbols = model.species_symbols
    atoms = Atoms(symbols, positions=[[3 * model.cutoff * k, 0, 0] for k in range(len(symbols))])
    atoms.calc = _calc(model, dtype)
    reference = model.atomic_energies.double().cpu().numpy()
    assert np.abs(atoms.get_potential_energies() - reference).max() < TOLERANCES[dtype]
    assert np.abs(atoms.get_forces()).max() == 0.0


def assert_fragments_additive(
    model: EnergyModel, first: Atoms, second: Atoms, dtype: torch.dtype = torch.float64
) -> None:
    """Two non-periodic fragments farther apart than the cutoff add up in energy and forces."""
    tol = TOLERANCES[dtype]
    energy_a, forces_a = _energy_forces(model, first, dtype)
    energy_b, forces_b = _energy_forces(model, second, dtype)
    far = second.copy()
    far.positions += np.array([0.0, 0.0, 40.0 + 2 * model.cutoff])
    energy, forces = _energy_forces(model, first + far, dtype)
    assert abs(energy - energy_a - energy_b) < 10 * tol * (1 + abs(energy))
    assert np.abs(forces - np.concatenate([forces_a, forces_b])).max() < 10 * tol


def assert_batch_matches_single(
    model: EnergyModel, structures: list[Atoms], dtype: torch.dtype = torch.float64
) -> None:
    """Predicting a batch of mixed-size structures equals predicting each one alone."""
    tol = TOLERANCES[dtype]
    model = copy.deepcopy(model).to(dtype)
    graphs = [graph_from_atoms(a, model.cutoff, dtype=dtype) for a in structures]
    periodic = all(has_stress(a) for a in structures)
    batched = predict(model, batch_graphs(graphs), forces=True, stress=periodic)
    singles = [predict(model, g, forces=True, stress=periodic) for g in graphs]
    assert batched.forces is not None
    torch.testing.assert_close(
        batched.energy, torch.cat([s.energy for s in singles]), atol=tol, rtol=tol
    )
    torch.testing.assert_close(
        batched.forces,
        torch.cat([s.forces for s in singles if s.forces is not None]),
        atol=10 * tol,
        rtol=tol,
    )
    if periodic:
        assert batched.stress is not None
        torch.testing.assert_close(
            batched.stress,
            torch.cat([s.stress for s in singles if s.stress is not None]),
            atol=tol,
            rtol=tol,
        )


def assert_save_load_roundtrip(model: EnergyModel, atoms: Atoms) -> None:
    """Saving and loading gives bitwise identical predictions in the saved dtype."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.safetensors"
        save_model(model, path)
        loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.config() == model.config()
    assert loaded.dtype == model.dtype
    energy, forces = _energy_forces(model, atoms, model.dtype)
    energy_loaded, forces_loaded = _energy_forces(loaded, atoms, model.dtype)
    assert energy == energy_loaded
    assert np.array_equal(forces, forces_loaded)


def check_model(model: EnergyModel, dtype: torch.dtype = torch.float64) -> None:
    """Run the whole battery on ``model`` in ``dtype``."""
    structures = battery_structures(model.species_symbols)
    for name, atoms in structures.items():
        assert_forces_match_finite_differences(model, atoms, dtype)
        assert_rotation_equivariant(model, atoms, dtype)
        assert_translation_invariant(model, atoms, dtype)
        assert_permutation_equivariant(model, atoms, dtype)
        if atoms.pbc.any():
            assert_stress_matches_finite_differences(model, atoms, dtype)
            assert_periodic_image_invariant(model, atoms, dtype)
        if name in ("bulk", "triclinic"):
            assert_supercell_extensive(model, atoms, dtype)
    assert_smooth_at_cutoff(model, model.species_symbols[0], dtype)
    assert_isolated_atoms_have_reference_energy(model, dtype)
    assert_fragments_additive(model, structures["cluster"], structures["cluster"][:3], dtype)
    assert_batch_matches_single(model, [structures["bulk"], structures["triclinic"]], dtype)
    assert_save_load_roundtrip(copy.deepcopy(model).to(dtype), structures["bulk"])
