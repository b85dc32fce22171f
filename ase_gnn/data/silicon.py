"""Stillinger–Weber silicon: data whose two- and three-body terms are known exactly.

Stillinger and Weber's potential (Phys. Rev. B 31, 5262 (1985)) is

    E = Σ_{i<j} φ2(r_ij) + Σ_i Σ_{j<k} φ3(r_ij, r_ik, θ_jik),
    φ2(r) = A ε (B (σ/r)^4 − 1) exp(σ / (r − aσ)),
    φ3 = λ ε (cos θ_jik + 1/3)² exp(γσ / (r_ij − aσ)) exp(γσ / (r_ik − aσ)),

with every term zero beyond aσ = 3.771 Å. Its many-body expansion therefore has nothing beyond
three bodies, which makes it the ground truth for :func:`explain.many_body.many_body`. The
energies come from matscipy's ``Manybody`` calculator with the published parameters (the
``[sw]`` extra), which agrees with LAMMPS's ``pair_style sw`` and its ``Si.sw`` file to 3e-13 eV
and 1e-13 eV/Å.

The mix (:data:`SW_CONFIG_TYPES`): rattled and strained diamond crystals, MD snapshots at
300–1500 K, vacancies, an unreconstructed (100) slab, liquid (random packing at the liquid's
density, then MD at 2500 K) and, with ``clusters=True``, isolated dimers, trimers and 4–8-atom
clusters. Condensed phases never show a model an isolated pair or triplet, which are exactly
its low-order terms; the clusters do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import MappingProxyType

import numpy as np
from ase import Atoms, units
from ase.build import bulk, diamond100
from ase.calculators.calculator import Calculator

from ase_gnn.data import _structures
from ase_gnn.data.generate import _allocate, _collect, _labelled, _static_jobs

__all__ = ["SW_CONFIG_TYPES", "SW_CUTOFF", "SW_LATTICE_CONSTANT", "generate_sw", "stillinger_weber"]

#: Range aσ of every Stillinger–Weber term, Å.
SW_CUTOFF = 1.80 * 2.0951
#: Diamond lattice constant that minimises the Stillinger–Weber energy, Å.
SW_LATTICE_CONSTANT = 5.431
#: Fraction of structures of each ``config_type``; "cluster" only with ``clusters=True``.
SW_CONFIG_TYPES = MappingProxyType(
    {"bulk": 0.15, "strained": 0.15, "md": 0.25, "vacancy": 0.1, "surface": 0.1,
     "liquid": 0.1, "cluster": 0.15}
)  # fmt: skip
#: Shortest distance between atoms in random structures, Å (SW's pair minimum is 2.35 Å).
MIN_DISTANCE = 1.95


def stillinger_weber() -> Calculator:
    """matscipy's Stillinger–Weber silicon calculator (PRB 31, 5262 parameters).

    Raises
    ------
    ImportError
        Without matscipy, with the command that installs it.
    """
    try:
        from matscipy.calculators.manybody import Manybody
        from matscipy.calculators.manybody.explicit_forms import StillingerWeber
        from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
            Stillinger_Weber_PRB_31_5262_Si,
        )
    except ImportError as error:
        raise ImportError(
            "Stillinger-Weber silicon needs matscipy: pip install 'ase-gnn[sw]'"
        ) from error
    return Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))


def generate_sw(
    num_structures: int = 200,
    seed: int = 0,
    *,
    clusters: bool = True,
    temperatures_K: tuple[float, ...] = (300.0, 800.0, 1500.0),
    progress: bool = True,
) -> list[Atoms]:
    """Generate Stillinger–Weber-labelled silicon structures (module docstring).

    Parameters
    ----------
    num_structures
        Number of structures.
    seed
        Seed of ``numpy.random.default_rng``; the same seed gives the same data.
    clusters
        Include isolated dimers, trimers and 4–8-atom clusters (config type ``"cluster"``).
    temperatures_K
        Temperatures of the crystal MD, K.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of ase.Atoms
        Labelled as :func:`ase_gnn.data.generate.generate_emt`'s (energy, forces, per-atom
        energies, and stress for periodic cells), ``info["config_type"]`` set.
    """
    fractions = {k: v for k, v in SW_CONFIG_TYPES.items() if clusters or k != "cluster"}
    fractions = {k: v / sum(fractions.values()) for k, v in fractions.items()}
    counts = _allocate(num_structures, fractions)
    rng = np.random.default_rng(seed)
    builders: dict[str, Callable[[np.random.Generator, int], Atoms]] = {
        "bulk": _bulk, "strained": _strained, "vacancy": _vacancy, "surface": _surface,
        "cluster": _cluster,
    }  # fmt: skip

    def label(atoms: Atoms, config_type: str) -> Atoms:
        return _labelled(atoms, stillinger_weber, config_type)

    def md(
        config_type: str, start: _structures.Builder, temperatures: tuple[float, ...]
    ) -> Callable[[], Iterator[Atoms]]:
        def make() -> Iterator[Atoms]:
            snapshots = _structures.md_snapshots(
                rng, counts[config_type], start, stillinger_weber, temperatures, 1.0 * units.fs,
                accept=lambda atoms: _structures.min_distance_at_least(atoms, MIN_DISTANCE),
            )  # fmt: skip
            return (label(atoms, config_type) for atoms in snapshots)

        return make

    jobs = _static_jobs(counts, rng, builders, label)
    jobs["md"] = md("md", _md_start, temperatures_K)
    jobs["liquid"] = md("liquid", _liquid_start, (2500.0,))
    return _collect(jobs, rng, num_structures, "Stillinger-Weber Si", progress)


def _diamond(repeat: tuple[int, int, int], scale: float = 1.0) -> Atoms:
    """The cubic 8-atom diamond cell, lattice constant scaled by ``scale``, repeated."""
    return bulk("Si", "diamond", a=SW_LATTICE_CONSTANT * scale, cubic=True).repeat(repeat)


def _bulk(rng: np.random.Generator, index: int) -> Atoms:
    """8–16-atom diamond cell, lattice constant ±3 %, rattled 0.03–0.15 Å."""
    atoms = _diamond(((1, 1, 1), (2, 1, 1))[index % 2], rng.uniform(0.97, 1.03))
    _structures.rattle(atoms, rng, rng.uniform(0.03, 0.15))
    return atoms


def _strained(rng: np.random.Generator, index: int) -> Atoms:
    """16-atom diamond cell under isotropic, anisotropic or shear strain up to 4 %."""
    atoms = _diamond((2, 1, 1))
    mode = ("isotropic", "anisotropic", "shear")[index % 3]
    strain = _structures.random_strain(rng, mode, 0.04)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    _structures.rattle(atoms, rng, 0.05)
    return atoms


def _vacancy(rng: np.random.Generator, index: int) -> Atoms:
    """32-atom diamond cell less one atom, rattled 0.05 Å."""
    atoms = _diamond((2, 2, 1))
    del atoms[int(rng.integers(len(atoms)))]
    _structures.rattle(atoms, rng, 0.05)
    return atoms


def _surface(rng: np.random.Generator, index: int) -> Atoms:
    """Unreconstructed Si(100) slab, 2x2 with 4–6 layers and 8 Å of vacuum, rattled 0.05 Å."""
    atoms = diamond100("Si", (2, 2, 4 + index % 3), a=SW_LATTICE_CONSTANT, vacuum=8.0)
    _structures.rattle(atoms, rng, 0.05)
    return atoms


def _cluster(rng: np.random.Generator, index: int) -> Atoms:
    """A dimer (1.9–4 Å), a trimer (legs 2–3.6 Å, 40–180°) or a 4–8-atom random cluster."""
    kind = index % 3
    if kind == 0:
        positions = np.array([[0.0, 0.0, 0.0], [rng.uniform(1.9, 4.0), 0.0, 0.0]])
    elif kind == 1:
        r_ij, r_ik = rng.uniform(2.0, 3.6, size=2)
        angle = np.radians(rng.uniform(40.0, 180.0))
        positions = np.array(
            [[0.0, 0.0, 0.0], [r_ij, 0.0, 0.0], [r_ik * np.cos(angle), r_ik * np.sin(angle), 0.0]]
        )
    else:
        size = int(rng.integers(4, 9))
        positions = _structures.random_positions(rng, size, 2.1, radius=1.3 * size ** (1 / 3))
    if kind == 1 and np.linalg.norm(positions[2] - positions[1]) < MIN_DISTANCE:
        return _cluster(rng, index)  # a trimer bent so far that its ends touch: draw again
    atoms = Atoms(f"Si{len(positions)}", positions=positions)
    atoms.center(vacuum=6.0)  # a box for matscipy's neighbour list; not periodic, no stress
    return atoms


def _md_start(rng: np.random.Generator) -> Atoms:
    """32-atom diamond cell, lattice constant ±1 %, rattled 0.03 Å."""
    atoms = _diamond((2, 2, 1), rng.uniform(0.99, 1.01))
    _structures.rattle(atoms, rng, 0.03)
    return atoms


def _liquid_start(rng: np.random.Generator) -> Atoms:
    """32 atoms placed at random in a periodic cube at liquid silicon's density (2.57 g/cm³)."""
    box = (32 / 0.0551) ** (1 / 3)
    positions = _structures.random_positions(rng, 32, 2.2, box_length=box)
    return Atoms("Si32", positions=positions, cell=np.eye(3) * box, pbc=True)
