"""Unlabelled structure builders and short MD for :mod:`ase_gnn.data.generate`.

Every function draws its randomness from the ``numpy.random.Generator`` it is given, so a run is
fixed by the seed of that one generator. Lengths are in Å, temperatures in K, times in ASE units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import vesin
from ase import Atoms, units
from ase.build import bulk, fcc100, fcc111
from ase.calculators.calculator import Calculator
from ase.constraints import FixCom
from ase.data import atomic_numbers, reference_states
from ase.md.langevin import Langevin
from ase.md.md import MolecularDynamics
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

from ase_gnn.simulate.md import thermalize_momenta

CalculatorFactory = Callable[[], Calculator]
#: ``(rng, index, symbol, lattice_constant) -> Atoms``: ``index`` counts structures of one type.
LatticeBuilder = Callable[[np.random.Generator, int, str, float], Atoms]
#: ``rng -> Atoms``.
Builder = Callable[[np.random.Generator], Atoms]

MD_EQUILIBRATION_STEPS = 20
MD_STEPS_PER_SNAPSHOT = 10
MD_SNAPSHOTS_PER_TRAJECTORY = 5
#: Langevin friction, 0.01 per fs: the thermostat couples over about 100 fs.
LANGEVIN_FRICTION = 0.01 / units.fs


def rattle(atoms: Atoms, rng: np.random.Generator, stdev: float) -> None:
    """Add Gaussian noise of standard deviation ``stdev`` Å to every coordinate, in place."""
    atoms.positions += rng.normal(scale=stdev, size=atoms.positions.shape)


def fcc_bulk(rng: np.random.Generator, symbol: str, lattice_constant: float) -> Atoms:
    """A 32-atom cubic (2x2x2) or a 27-atom primitive (3x3x3) fcc supercell, chosen at random."""
    if rng.random() < 0.5:
        return bulk(symbol, "fcc", a=lattice_constant, cubic=True).repeat((2, 2, 2))
    return bulk(symbol, "fcc", a=lattice_constant).repeat((3, 3, 3))


def random_strain(rng: np.random.Generator, mode: str, magnitude: float) -> np.ndarray:
    """Symmetric strain tensor [3, 3] (dimensionless) with entries uniform in ±``magnitude``.

    ``mode`` is ``"isotropic"`` (δ·1), ``"anisotropic"`` (all six components) or ``"shear"``
    (off-diagonal components only).
    """
    if mode == "isotropic":
        return rng.uniform(-magnitude, magnitude) * np.eye(3)
    values = rng.uniform(-magnitude, magnitude, size=(3, 3))
    symmetric = np.triu(values) + np.triu(values, 1).T
    if mode == "shear":
        np.fill_diagonal(symmetric, 0.0)
    return symmetric


def alloy_lattice(rng: np.random.Generator, elements: Sequence[str]) -> tuple[float, np.ndarray]:
    """Random composition [K] (flat Dirichlet) and its Vegard's-law fcc lattice constant in Å.

    A single element has composition [1.0] and consumes no random numbers.
    """
    if len(elements) == 1:
        composition = np.ones(1)
    else:
        composition = rng.dirichlet(np.ones(len(elements)))
    constants = np.array([_lattice_constant(s) for s in elements])
    return float(composition @ constants), composition


def substitute(
    atoms: Atoms, rng: np.random.Generator, elements: Sequence[str], composition: np.ndarray
) -> None:
    """Give each atom a species drawn from ``elements`` with probabilities ``composition``."""
    if len(elements) > 1:
        choice = rng.choice(len(elements), size=len(atoms), p=composition)
        atoms.numbers = np.array([atomic_numbers[s] for s in elements])[choice]


# EMT structure types. Each builds with the host species; alloying happens afterwards.


def emt_bulk(rng: np.random.Generator, index: int, symbol: str, lattice_constant: float) -> Atoms:
    """Rattled fcc supercell (27 or 32 atoms), rattle 0.02-0.1 Å."""
    atoms = fcc_bulk(rng, symbol, lattice_constant)
    rattle(atoms, rng, rng.uniform(0.02, 0.1))
    return atoms


def emt_strained(
    rng: np.random.Generator, index: int, symbol: str, lattice_constant: float
) -> Atoms:
    """Fcc supercell under isotropic, anisotropic or shear strain (cycling with ``index``) ≤ 4 %."""
    atoms = fcc_bulk(rng, symbol, lattice_constant)
    strain = random_strain(rng, ("isotropic", "anisotropic", "shear")[index % 3], 0.04)
    # Rows of the cell are lattice vectors, so r' = r (1 + ε) for the symmetric strain ε.
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
    # Without a rattle, symmetry makes every force of a strained perfect crystal zero.
    rattle(atoms, rng, 0.02)
    return atoms


def emt_vacancy(
    rng: np.random.Generator, index: int, symbol: str, lattice_constant: float
) -> Atoms:
    """32-atom cubic cell less one random atom, rattle 0.02-0.08 Å."""
    atoms = bulk(symbol, "fcc", a=lattice_constant, cubic=True).repeat((2, 2, 2))
    del atoms[int(rng.integers(len(atoms)))]
    rattle(atoms, rng, rng.uniform(0.02, 0.08))
    return atoms


def emt_surface(
    rng: np.random.Generator, index: int, symbol: str, lattice_constant: float
) -> Atoms:
    """Fcc(100) or fcc(111) slab (alternating), 2x2 with 3-6 layers or 3x3x3, rattled.

    ``ase.build`` gives ``pbc=(True, True, False)`` and a 3-D cell with 5-8 Å of vacuum on each
    side along z.
    """
    build: Callable[..., Atoms] = fcc111 if index % 2 else fcc100
    size = (3, 3, 3) if rng.random() < 0.2 else (2, 2, int(rng.integers(3, 7)))
    atoms = build(symbol, size=size, a=lattice_constant, vacuum=float(rng.uniform(5.0, 8.0)))
    rattle(atoms, rng, rng.uniform(0.02, 0.08))
    return atoms


EMT_BUILDERS: Mapping[str, LatticeBuilder] = MappingProxyType(
    {
        "bulk": emt_bulk,
        "strained": emt_strained,
        "vacancy": emt_vacancy,
        "surface": emt_surface,
    }
)


def md_snapshots(
    rng: np.random.Generator,
    count: int,
    start: Builder,
    factory: CalculatorFactory,
    temperatures_K: Sequence[float],
    timestep: float,
    accept: Callable[[Atoms], bool],
) -> Iterator[Atoms]:
    """``count`` snapshots of short trajectories, cycling over temperatures and Langevin / NVE.

    Each trajectory starts from ``start(rng)``, equilibrates for :data:`MD_EQUILIBRATION_STEPS`
    steps of ``timestep`` (ASE time units) and then yields up to
    :data:`MD_SNAPSHOTS_PER_TRAJECTORY` snapshots, :data:`MD_STEPS_PER_SNAPSHOT` steps apart, that
    pass ``accept``. The yielded ``Atoms`` is the live MD object: copy it before the next step.
    """
    made, trajectory = 0, 0
    while made < count:
        if trajectory > 2 * count + 10:
            raise RuntimeError(
                f"only {made} of {count} MD snapshots were accepted (minimum distance too large?)"
            )
        temperature = float(temperatures_K[trajectory % len(temperatures_K)])
        atoms = start(rng)
        atoms.calc = factory()
        dynamics: MolecularDynamics
        if trajectory % 2 == 0:
            thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
            # ASE >= 3.28 deprecates fixcm=True in Langevin in favor of a FixCom constraint.
            atoms.set_constraint(FixCom())
            dynamics = Langevin(
                atoms,
                timestep,
                temperature_K=temperature,
                friction=LANGEVIN_FRICTION,
                fixcm=False,
                rng=rng,
            )
        else:
            # NVE from a near-perfect lattice shares the kinetic energy with the potential
            # energy (equipartition), so start at twice the target temperature.
            thermalize_momenta(atoms, temperature_K=2.0 * temperature, rng=rng)
            dynamics = VelocityVerlet(atoms, timestep)
        Stationary(atoms)
        dynamics.run(MD_EQUILIBRATION_STEPS)
        for _ in range(MD_SNAPSHOTS_PER_TRAJECTORY):
            dynamics.run(MD_STEPS_PER_SNAPSHOT)
            if made < count and accept(atoms):
                made += 1
                yield atoms
        trajectory += 1


# Pair-potential structure types.


def min_distance_at_least(atoms: Atoms, min_distance: float) -> bool:
    """Whether no two atoms (periodic images included) are closer than ``min_distance`` Å."""
    if len(atoms) < 2:
        return True
    (first_index,) = vesin.ase_neighbor_list("i", atoms, min_distance)
    return len(first_index) == 0


def fcc_nearest_neighbor_distance(
    factory: CalculatorFactory, symbol: str, pair_minimum: float
) -> float:
    """Nearest-neighbor distance in Å that minimizes the fcc crystal's energy (1 % grid scan).

    It differs from the pair minimum because farther shells pull inward, by an amount that
    depends on the cutoff; scanning the actual potential keeps the densities meaningful.
    """
    distances = pair_minimum * np.linspace(0.8, 1.2, 41)
    energies = []
    for distance in distances:
        atoms = bulk(symbol, "fcc", a=float(np.sqrt(2.0) * distance))
        atoms.calc = factory()
        energies.append(atoms.get_potential_energy())
    return float(distances[int(np.argmin(energies))])


def random_positions(
    rng: np.random.Generator,
    num_atoms: int,
    min_distance: float,
    box_length: float | None = None,
    radius: float | None = None,
) -> np.ndarray:
    """Random sequential addition in a periodic cubic box or a sphere: positions [N, 3] in Å.

    Give exactly one of ``box_length`` (periodic cube, minimum-image distances, requires
    ``min_distance < box_length / 2``) and ``radius`` (sphere centred on the origin).
    """
    positions = np.empty((0, 3))
    for _ in range(200 * num_atoms):
        if box_length is not None:
            candidate = rng.uniform(0.0, box_length, size=3)
        else:
            assert radius is not None
            direction = rng.normal(size=3)
            candidate = direction / np.linalg.norm(direction) * radius * rng.random() ** (1 / 3)
        delta = positions - candidate
        if box_length is not None:
            delta -= box_length * np.round(delta / box_length)
        if len(delta) == 0 or np.linalg.norm(delta, axis=1).min() >= min_distance:
            positions = np.vstack([positions, candidate])
            if len(positions) == num_atoms:
                return positions
    raise RuntimeError(f"could not place {num_atoms} atoms {min_distance} Å apart; lower density")


def pair_builders(symbol: str, spacing: float, min_distance: float) -> dict[str, Builder]:
    """One ``rng -> Atoms`` builder per static pair-potential config type.

    ``spacing`` is the equilibrium fcc nearest-neighbor distance in Å; crystals and clusters cut
    from them are built at 0.96-1.08 and 0.97-1.05 times it. Random boxes and amorphous clusters
    are filled by random sequential addition of hard spheres of diameter ``min_distance`` to a
    packing fraction φ of 0.10-0.25 (0.15-0.25 for clusters), well below the 0.38 where random
    sequential addition jams; for argon-like Lennard-Jones this is 1.1-1.5 times the crystal's
    nearest-neighbor distance.
    """

    def hard_sphere_density(packing_fraction: float) -> float:
        """Number density in 1/Å³ of spheres of diameter ``min_distance`` at that packing."""
        return packing_fraction / (np.pi / 6.0 * min_distance**3)

    def crystal(rng: np.random.Generator) -> Atoms:
        atoms = fcc_bulk(rng, symbol, float(np.sqrt(2.0) * spacing * rng.uniform(0.96, 1.08)))
        rattle(atoms, rng, spacing * rng.uniform(0.01, 0.05))
        return atoms

    def random_box(rng: np.random.Generator) -> Atoms:
        num_atoms = int(rng.integers(8, 33))
        density = hard_sphere_density(rng.uniform(0.10, 0.25))
        box_length = float((num_atoms / density) ** (1 / 3))
        positions = random_positions(rng, num_atoms, min_distance, box_length=box_length)
        return Atoms(symbol * num_atoms, positions, cell=np.eye(3) * box_length, pbc=True)

    def cluster(rng: np.random.Generator) -> Atoms:
        num_atoms = int(rng.integers(4, 31))
        if rng.random() < 0.5:  # compact: the atoms of a rattled crystal nearest a random point
            lattice_constant = float(np.sqrt(2.0) * spacing * rng.uniform(0.97, 1.05))
            source = bulk(symbol, "fcc", a=lattice_constant, cubic=True).repeat((3, 3, 3))
            centre = source.cell.sum(axis=0) / 2 + rng.uniform(-0.5, 0.5, 3) * lattice_constant
            nearest = np.argsort(np.linalg.norm(source.positions - centre, axis=1))[:num_atoms]
            positions = source.positions[np.sort(nearest)] - centre
            positions += rng.normal(scale=spacing * rng.uniform(0.01, 0.05), size=positions.shape)
        else:  # amorphous: random sequential addition in a sphere
            density = hard_sphere_density(rng.uniform(0.15, 0.25))
            radius = float((3 * num_atoms / (4 * np.pi * density)) ** (1 / 3))
            positions = random_positions(rng, num_atoms, min_distance, radius=radius)
        return Atoms(symbol * num_atoms, positions, pbc=False)

    return {"bulk": crystal, "random": random_box, "cluster": cluster}


def _lattice_constant(symbol: str) -> float:
    """Reference fcc lattice constant of ``symbol`` from ``ase.data``, Å."""
    state = reference_states[atomic_numbers[symbol]]
    assert state is not None and "a" in state, f"no reference lattice constant for {symbol}"
    return float(state["a"])  # type: ignore[arg-type]  # ase.data types values as object


def fcc_twin_bicrystal(
    symbol: str, lattice_constant: float, grain_layers: int = 9, repeat: int = 4
) -> tuple[Atoms, np.ndarray]:
    """A periodic fcc bicrystal with two Σ3 (111) twin boundaries.

    Stacking ABC… for ``grain_layers`` (111) layers, then the mirror sequence …CBA, so the cell is
    periodic along z with a twin boundary in each grain junction; every atom keeps 12 nearest
    neighbors, only farther shells tell the boundary apart.

    Returns
    -------
    atoms : ase.Atoms
        ``2 · grain_layers · repeat²`` atoms.
    distance : ndarray
        ``[N]`` number of (111) layers between each atom and the nearest twin plane.
    """
    spacing = lattice_constant / np.sqrt(2)
    a1 = np.array([spacing, 0.0, 0.0])
    a2 = np.array([spacing / 2, spacing * np.sqrt(3) / 2, 0.0])
    height = lattice_constant / np.sqrt(3)
    stack = [k % 3 for k in range(grain_layers)] + [(1 - k) % 3 for k in range(grain_layers)]
    layers = len(stack)
    positions, layer_of = [], []
    for k, shift in enumerate(stack):
        for i in range(repeat):
            for j in range(repeat):
                positions.append(shift * (a1 + a2) / 3 + i * a1 + j * a2 + [0.0, 0.0, k * height])
                layer_of.append(k)
    cell = [repeat * a1, repeat * a2, [0.0, 0.0, layers * height]]
    atoms = Atoms(f"{symbol}{len(positions)}", positions, cell=cell, pbc=True)
    twins = [k for k in range(layers) if stack[k - 1] == stack[(k + 1) % layers]]
    gap = np.abs(np.array(layer_of)[:, None] - np.array(twins)[None, :])
    return atoms, np.minimum(gap, layers - gap).min(axis=1)


# Pairs of fragments (charged clusters, molecules).


def random_direction(rng: np.random.Generator) -> np.ndarray:
    """A random unit vector [3]."""
    direction = rng.normal(size=3)
    return direction / np.linalg.norm(direction)


def place_apart(first: Atoms, second: Atoms, separation: float, direction: np.ndarray) -> Atoms:
    """``first + second`` with ``second`` slid along ``direction`` until the shortest distance
    between the two is ``separation`` Å (stored as ``info["separation"]``)."""
    shifted = second.copy()
    start = (np.ptp(first.positions, 0).max() + np.ptp(second.positions, 0).max()) / 2
    shifted.positions += direction * start
    gap = _closest(first.positions, shifted.positions)
    for _ in range(50):  # the gap is piecewise linear in the shift: a few steps converge
        shifted.positions += direction * (separation - gap)
        gap = _closest(first.positions, shifted.positions)
        if abs(gap - separation) < 1e-9:
            break
    atoms = first + shifted
    atoms.info["separation"] = gap
    return atoms


def _closest(first: np.ndarray, second: np.ndarray) -> float:
    """Shortest distance between two sets of points [N, 3] and [M, 3], Å."""
    return float(np.linalg.norm(first[:, None] - second[None], axis=-1).min())
