"""Labelled training data from ASE's analytic calculators: EMT, Lennard-Jones and Morse.

Nothing is downloaded; every structure is built with :mod:`ase.build` (or random packing), moved
with short MD where asked, and labelled by a fresh calculator. The same ``seed`` gives identical
data, since all randomness comes from one ``numpy.random.default_rng(seed)``.

Labels
------
Each returned ``ase.Atoms`` carries its labels in a
:class:`~ase.calculators.singlepoint.SinglePointCalculator`:

================  ========  ========  ==================================================
key               shape     unit      note
================  ========  ========  ==================================================
``energy``        scalar    eV        total potential energy
``free_energy``   scalar    eV        equal to ``energy`` (no electronic entropy)
``forces``        [N, 3]    eV/Å
``energies``      [N]       eV        per-atom energies; they sum to ``energy``
``stress``        [6]       eV/Å³     Voigt order xx, yy, zz, yz, xz, xy; only where defined
================  ========  ========  ==================================================

and ``atoms.info["config_type"]`` names how it was made (see :data:`EMT_CONFIG_TYPES` and
:data:`PAIR_CONFIG_TYPES`).

Stress is stored when the cell has rank 3 and at least one axis is periodic. This includes surface
slabs with ``pbc=(True, True, False)`` and a vacuum gap along z: EMT returns a stress there, and
it is the exact strain derivative of the energy, ``(1/V) dE/dε``, with V the volume of the whole
cell including the vacuum. It therefore depends on the vacuum thickness, but a model whose stress
is computed the same way (autograd with respect to a homogeneous strain of the stored cell) is
compared like for like. Clusters have no cell and no stress.

Per-atom energies and extxyz
----------------------------
ASE 3.29's extxyz writer puts ``energies`` into a per-atom column (``energies:R:1``) and its
reader turns that column back into a calculator result, so all five labels round-trip through
:func:`write_dataset` / :func:`read_dataset` without extra keys. Per-atom columns (``forces``,
``energies``) are written with 8 decimals (``%16.8f``), so they come back to within 5e-9 eV/Å or
eV; ``energy`` and ``stress`` are written at full precision.

Neighbor lists
--------------
Labels always come from ASE's own calculators with their own neighbor lists, so they stay an
independent reference for :mod:`ase_gnn.graph.neighbors` (which uses vesin). vesin only speeds up
moving atoms (Morse MD, the lattice scan) and the minimum-distance check.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType

import ase.io
import numpy as np
import vesin
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.calculators.morse import MorsePotential
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers
from tqdm import tqdm

from ase_gnn.data import _structures
from ase_gnn.data._structures import CalculatorFactory
from ase_gnn.graph.atomic_graph import has_stress

__all__ = [
    "EMT_CONFIG_TYPES",
    "EMT_ELEMENTS",
    "PAIR_CONFIG_TYPES",
    "generate_emt",
    "generate_emt_alloy",
    "generate_lennard_jones",
    "generate_morse",
    "read_dataset",
    "write_dataset",
]

#: The metals ASE's EMT is parametrized for (all fcc).
EMT_ELEMENTS: tuple[str, ...] = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")

#: Fraction of EMT structures of each ``config_type``.
EMT_CONFIG_TYPES: Mapping[str, float] = MappingProxyType(
    {"bulk": 0.2, "strained": 0.2, "md": 0.3, "vacancy": 0.15, "surface": 0.15}
)
#: Fraction of Lennard-Jones and Morse structures of each ``config_type``.
PAIR_CONFIG_TYPES: Mapping[str, float] = MappingProxyType(
    {"bulk": 0.25, "md": 0.35, "random": 0.2, "cluster": 0.2}
)


# --------------------------------------------------------------------------------------------
# public API


def generate_emt(
    element: str = "Cu", num_structures: int = 300, seed: int = 0, progress: bool = True
) -> list[Atoms]:
    """Generate EMT-labelled structures of one fcc metal.

    The mix (:data:`EMT_CONFIG_TYPES`) is: rattled bulk supercells (32 or 27 atoms, Gaussian rattle
    of 0.02-0.1 Å), strained bulk (isotropic, anisotropic and pure shear strain up to ±4 %, plus a
    0.02 Å rattle), snapshots of short Langevin or velocity-Verlet MD at 300, 600 and 1200 K,
    rattled 31-atom cells with one vacancy, and rattled fcc(100)/fcc(111) slabs of 12-27 atoms with
    a 5-8 Å vacuum on each side and ``pbc=(True, True, False)``. Every structure has at most 32
    atoms. The list is shuffled, so any slice mixes the types.

    Parameters
    ----------
    element
        One of :data:`EMT_ELEMENTS`. The reference fcc lattice constant from ``ase.data`` is used.
    num_structures
        Number of structures. Every config type is present once ``num_structures >= 5``.
    seed
        Seed of ``numpy.random.default_rng``; the same seed gives identical structures and labels.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of ase.Atoms
        ``num_structures`` structures, labels in a ``SinglePointCalculator`` (energy, free_energy
        and energies in eV, forces [N, 3] in eV/Å, stress [6] in eV/Å³ for periodic cells) and
        ``info["config_type"]``.

    Raises
    ------
    ValueError
        If ``element`` is not one of :data:`EMT_ELEMENTS` or ``num_structures < 0``.

    Examples
    --------
    >>> data = generate_emt("Cu", num_structures=5, progress=False)
    >>> sorted(atoms.info["config_type"] for atoms in data)
    ['bulk', 'md', 'strained', 'surface', 'vacancy']

    References
    ----------
    K. W. Jacobsen, P. Stoltze and J. K. Nørskov, Surf. Sci. 366, 394 (1996).
    """
    return _generate_emt((element,), num_structures, seed, progress)


def generate_emt_alloy(
    elements: Sequence[str] = ("Cu", "Au"),
    num_structures: int = 300,
    seed: int = 0,
    progress: bool = True,
) -> list[Atoms]:
    """Generate EMT-labelled structures of random substitutional fcc alloys.

    The same structure types as :func:`generate_emt`. Each structure draws its own composition
    from a flat Dirichlet distribution over ``elements``, takes the composition-weighted mean of
    the elements' lattice constants (Vegard's law) and assigns each atom a species at random.

    Parameters
    ----------
    elements
        Two or more distinct elements of :data:`EMT_ELEMENTS`.
    num_structures
        Number of structures.
    seed
        Seed of ``numpy.random.default_rng``.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of ase.Atoms
        Labelled structures as described in :func:`generate_emt`.

    Raises
    ------
    ValueError
        If an element is not one of :data:`EMT_ELEMENTS`, or fewer than two distinct elements
        are given.
    """
    if len(set(elements)) < 2 or len(set(elements)) != len(elements):
        raise ValueError(f"elements must be two or more distinct symbols, got {list(elements)}")
    return _generate_emt(tuple(elements), num_structures, seed, progress)


def generate_lennard_jones(
    num_structures: int = 100,
    seed: int = 0,
    *,
    element: str = "Ar",
    sigma: float = 3.4,
    epsilon: float = 0.0104,
    cutoff: float = 5.0,
    cutoff_onset: float = 4.0,
    temperatures_K: Sequence[float] = (30.0, 60.0, 120.0),
    min_distance: float | None = None,
    progress: bool = True,
) -> list[Atoms]:
    """Generate structures labelled with a smoothly truncated Lennard-Jones pair potential.

    ``ase.calculators.lj.LennardJones(sigma, epsilon, rc=cutoff, ro=cutoff_onset, smooth=True)``.
    The defaults are argon (σ = 3.4 Å, ε = 0.0104 eV ≈ 120 K·k_B), but the potential is cut at
    5 Å rather than the textbook 3σ = 10.2 Å, so that a GNN with a 5 Å cutoff sees every pair
    that contributes: the energy is exactly a sum over pairs closer than ``cutoff``, which makes
    these data a ground truth for pair-energy attributions. The switching function goes from 1 at
    ``cutoff_onset`` to 0 at ``cutoff``, so energy and forces are continuous; the onset lies past
    the pair minimum 2^(1/6)σ = 3.82 Å, so the well itself is unchanged. Pass ``cutoff=3 * sigma``
    and ``cutoff_onset=2.5 * sigma`` for a longer-ranged argon.

    The mix (:data:`PAIR_CONFIG_TYPES`): rattled fcc crystals at nearest-neighbor distances of
    0.96-1.08 times the equilibrium one, MD snapshots at ``temperatures_K``, random periodic boxes
    of 8-32 atoms (random sequential addition at lower densities), and clusters of 4-30 atoms
    (cut from a crystal, or random). No two atoms are closer than ``min_distance``.

    Parameters
    ----------
    num_structures
        Number of structures.
    seed
        Seed of ``numpy.random.default_rng``.
    element
        Chemical symbol given to the atoms (sets their mass for MD).
    sigma
        Zero-crossing distance σ of the pair potential, in Å.
    epsilon
        Well depth ε, in eV.
    cutoff
        Distance in Å beyond which the pair energy is exactly zero.
    cutoff_onset
        Distance in Å where the smooth switch-off starts.
    temperatures_K
        MD temperatures in K.
    min_distance
        Smallest interatomic distance allowed, in Å; defaults to 0.75 · 2^(1/6)σ (2.86 Å for Ar).
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of ase.Atoms
        Labelled structures as in :func:`generate_emt`; ``config_type`` from
        :data:`PAIR_CONFIG_TYPES`.
    """
    _check_cutoffs(cutoff_onset, cutoff)

    def factory() -> Calculator:
        return LennardJones(sigma=sigma, epsilon=epsilon, rc=cutoff, ro=cutoff_onset, smooth=True)

    pair_minimum = 2.0 ** (1.0 / 6.0) * sigma
    return _generate_pair(
        factory, element, pair_minimum, num_structures, seed, temperatures_K,
        0.75 * pair_minimum if min_distance is None else min_distance,
        timestep=10.0 * units.fs, description=f"Lennard-Jones {element}", progress=progress,
    )  # fmt: skip


def generate_morse(
    num_structures: int = 100,
    seed: int = 0,
    *,
    element: str = "Cu",
    epsilon: float = 0.3429,
    r0: float = 2.866,
    alpha: float = 1.3588,
    cutoff: float = 5.0,
    cutoff_onset: float = 4.0,
    temperatures_K: Sequence[float] = (300.0, 600.0, 1200.0),
    min_distance: float | None = None,
    progress: bool = True,
) -> list[Atoms]:
    """Generate structures labelled with a smoothly truncated Morse pair potential.

    ``V(r) = ε [exp(-2α(r - r0)) - 2 exp(-α(r - r0))]`` times a quintic switch from 1 at
    ``cutoff_onset`` to 0 at ``cutoff`` (``ase.calculators.morse.MorsePotential`` with
    ``rho0 = α r0``). Defaults are Girifalco and Weizer's copper, cut at 5 Å (covering the first
    three fcc neighbor shells) so that a 5 Å GNN sees every contributing pair. Structure types
    are those of :func:`generate_lennard_jones`.

    Parameters
    ----------
    num_structures
        Number of structures.
    seed
        Seed of ``numpy.random.default_rng``.
    element
        Chemical symbol given to the atoms (sets their mass for MD).
    epsilon
        Well depth ε, in eV.
    r0
        Pair equilibrium distance, in Å.
    alpha
        Inverse width α of the well, in 1/Å.
    cutoff
        Distance in Å beyond which the pair energy is exactly zero.
    cutoff_onset
        Distance in Å where the smooth switch-off starts.
    temperatures_K
        MD temperatures in K.
    min_distance
        Smallest interatomic distance allowed, in Å; defaults to 0.7 r0 (2.0 Å for Cu, where the
        pair energy is about 4ε; EMT copper at 1200 K comes as close as 2.1 Å).
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of ase.Atoms
        Labelled structures; ``config_type`` from :data:`PAIR_CONFIG_TYPES`.

    References
    ----------
    L. A. Girifalco and V. G. Weizer, Phys. Rev. 114, 687 (1959).
    """
    _check_cutoffs(cutoff_onset, cutoff)

    # ASE's MorsePotential measures both cutoffs in units of r0.
    parameters = {
        "epsilon": epsilon, "r0": r0, "rho0": alpha * r0,
        "rcut1": cutoff_onset / r0, "rcut2": cutoff / r0,
    }  # fmt: skip

    def factory() -> Calculator:
        return MorsePotential(**parameters)

    def dynamics_factory() -> Calculator:
        # Same potential, 50x faster neighbor list; used to move atoms, never for labels.
        return MorsePotential(neighbor_list=vesin.ase_neighbor_list, **parameters)

    return _generate_pair(
        factory, element, r0, num_structures, seed, temperatures_K,
        0.7 * r0 if min_distance is None else min_distance,
        timestep=5.0 * units.fs, description=f"Morse {element}", progress=progress,
        dynamics_factory=dynamics_factory,
    )  # fmt: skip


def write_dataset(structures: Sequence[Atoms], path: str | os.PathLike[str]) -> None:
    """Write labelled structures to an extended XYZ file.

    Parameters
    ----------
    structures
        Structures whose labels sit in their calculators (as returned by the generators).
    path
        Output file; overwritten if it exists.

    Raises
    ------
    ValueError
        If ``structures`` is empty.
    """
    if len(structures) == 0:
        raise ValueError("structures is empty; there is nothing to write")
    ase.io.write(os.fspath(path), list(structures), format="extxyz")


def read_dataset(path: str | os.PathLike[str]) -> list[Atoms]:
    """Read every structure of an extended XYZ file, labels in a ``SinglePointCalculator``.

    Parameters
    ----------
    path
        File written by :func:`write_dataset` (or any extxyz file).

    Returns
    -------
    list of ase.Atoms
        All frames, with energy, free_energy, forces, energies and stress where the file has them.
    """
    return list(ase.io.read(os.fspath(path), index=":", format="extxyz"))


# --------------------------------------------------------------------------------------------
# private drivers


def _allocate(num_structures: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Split ``num_structures`` over config types, giving every type one if there are enough."""
    if num_structures < 0:
        raise ValueError(f"num_structures must be >= 0, got {num_structures}")
    names = list(fractions)
    exact = np.array([fractions[name] for name in names]) * num_structures
    counts = np.floor(exact).astype(int)
    # Largest remainder first, ties in table order, so the split is deterministic.
    for index in np.argsort(-(exact - counts), kind="stable")[: num_structures - counts.sum()]:
        counts[index] += 1
    if num_structures >= len(names):
        for index in np.flatnonzero(counts == 0):
            counts[np.argmax(counts)] -= 1
            counts[index] += 1
    return dict(zip(names, counts.tolist(), strict=True))


def _labelled(atoms: Atoms, factory: CalculatorFactory, config_type: str) -> Atoms:
    """A clean copy of ``atoms`` (no momenta, tags or info) labelled by a fresh calculator."""
    structure = Atoms(
        numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc
    )
    properties = ["energy", "free_energy", "forces", "energies"]
    # EMT, LennardJones and MorsePotential all return a stress for any rank-3 cell, even a
    # non-periodic one, where it is meaningless; keep it only where the structure has one.
    if has_stress(structure):
        properties.append("stress")
    calculator = factory()
    results = {name: calculator.get_property(name, structure) for name in properties}
    structure.calc = SinglePointCalculator(structure, **results)
    structure.info["config_type"] = config_type
    return structure


def _static_jobs(
    counts: Mapping[str, int],
    rng: np.random.Generator,
    builders: Mapping[str, Callable[[np.random.Generator, int], Atoms]],
    label: Callable[[Atoms, str], Atoms],
) -> dict[str, Callable[[], Iterator[Atoms]]]:
    """For each config type of ``counts`` that ``builders`` can build, a job that builds
    ``counts[type]`` structures (``builder(rng, index)``) and labels each
    (``label(atoms, type)``)."""

    def job(config_type: str) -> Callable[[], Iterator[Atoms]]:
        def make() -> Iterator[Atoms]:
            for index in range(counts[config_type]):
                yield label(builders[config_type](rng, index), config_type)

        return make

    return {name: job(name) for name in counts if name in builders}


def _collect(
    jobs: Mapping[str, Callable[[], Iterator[Atoms]]],
    rng: np.random.Generator,
    total: int,
    description: str,
    progress: bool,
) -> list[Atoms]:
    """Run every config type's job behind one progress bar, then shuffle the structures."""
    structures: list[Atoms] = []
    with tqdm(total=total, desc=description, unit="structure", disable=not progress) as bar:
        for make in jobs.values():
            for atoms in make():
                structures.append(atoms)
                bar.update(1)
    return [structures[index] for index in rng.permutation(len(structures))]


def _generate_emt(
    elements: tuple[str, ...], num_structures: int, seed: int, progress: bool
) -> list[Atoms]:
    unknown = [symbol for symbol in elements if symbol not in EMT_ELEMENTS]
    if unknown:
        raise ValueError(
            f"EMT has no parameters for {', '.join(map(repr, unknown))}; "
            f"allowed elements are {', '.join(EMT_ELEMENTS)}"
        )
    counts = _allocate(num_structures, EMT_CONFIG_TYPES)
    rng = np.random.default_rng(seed)
    host = elements[0]

    def static(config_type: str) -> Callable[[], Iterator[Atoms]]:
        def make() -> Iterator[Atoms]:
            for index in range(counts[config_type]):
                lattice_constant, composition = _structures.alloy_lattice(rng, elements)
                atoms = _structures.EMT_BUILDERS[config_type](rng, index, host, lattice_constant)
                _structures.substitute(atoms, rng, elements, composition)
                yield _labelled(atoms, EMT, config_type)

        return make

    def md_start(generator: np.random.Generator) -> Atoms:
        lattice_constant, composition = _structures.alloy_lattice(generator, elements)
        # ±1 % in lattice constant so that trajectories sample several densities.
        lattice_constant *= generator.uniform(0.99, 1.01)
        atoms = bulk(host, "fcc", a=lattice_constant, cubic=True).repeat((2, 2, 2))
        _structures.substitute(atoms, generator, elements, composition)
        _structures.rattle(atoms, generator, 0.03)
        return atoms

    def md() -> Iterator[Atoms]:
        snapshots = _structures.md_snapshots(
            rng, counts["md"], md_start, EMT, (300.0, 600.0, 1200.0), 5.0 * units.fs,
            accept=lambda atoms: True,
        )  # fmt: skip
        return (_labelled(atoms, EMT, "md") for atoms in snapshots)

    jobs = {name: md if name == "md" else static(name) for name in EMT_CONFIG_TYPES}
    return _collect(jobs, rng, num_structures, f"EMT {'-'.join(elements)}", progress)


def _check_cutoffs(cutoff_onset: float, cutoff: float) -> None:
    if not 0.0 < cutoff_onset < cutoff:
        raise ValueError(
            f"need 0 < cutoff_onset < cutoff (in Å), got cutoff_onset={cutoff_onset}, "
            f"cutoff={cutoff}"
        )


def _generate_pair(
    factory: CalculatorFactory,
    element: str,
    pair_minimum: float,
    num_structures: int,
    seed: int,
    temperatures_K: Sequence[float],
    min_distance: float,
    *,
    timestep: float,
    description: str,
    progress: bool,
    dynamics_factory: CalculatorFactory | None = None,
) -> list[Atoms]:
    """Pair-potential data: ``factory`` labels, ``dynamics_factory`` (default ``factory``) moves."""
    dynamics_factory = factory if dynamics_factory is None else dynamics_factory
    if element not in atomic_numbers:
        raise ValueError(f"unknown chemical symbol {element!r}")
    if not 0.0 < min_distance < pair_minimum:
        raise ValueError(f"min_distance must lie in (0, {pair_minimum:.3f}) Å, got {min_distance}")
    if len(temperatures_K) == 0 or min(temperatures_K) <= 0:
        raise ValueError(f"temperatures_K must be positive, got {list(temperatures_K)}")
    counts = _allocate(num_structures, PAIR_CONFIG_TYPES)
    rng = np.random.default_rng(seed)
    spacing = _structures.fcc_nearest_neighbor_distance(dynamics_factory, element, pair_minimum)
    builders = _structures.pair_builders(element, spacing, min_distance)

    def accept(atoms: Atoms) -> bool:
        return _structures.min_distance_at_least(atoms, min_distance)

    def static(config_type: str) -> Callable[[], Iterator[Atoms]]:
        def make() -> Iterator[Atoms]:
            for _ in range(counts[config_type]):
                for _ in range(1000):  # rarely more than one: a rattle pushed two atoms together
                    atoms = builders[config_type](rng)
                    if accept(atoms):
                        break
                else:
                    raise RuntimeError(
                        f"no {config_type} structure met min_distance={min_distance}"
                    )
                yield _labelled(atoms, factory, config_type)

        return make

    def md_start(generator: np.random.Generator) -> Atoms:
        lattice_constant = float(np.sqrt(2.0) * spacing * generator.uniform(0.98, 1.06))
        atoms = bulk(element, "fcc", a=lattice_constant, cubic=True).repeat((2, 2, 2))
        _structures.rattle(atoms, generator, 0.02 * spacing)
        return atoms

    def md() -> Iterator[Atoms]:
        snapshots = _structures.md_snapshots(
            rng, counts["md"], md_start, dynamics_factory, temperatures_K, timestep, accept
        )
        return (_labelled(atoms, factory, "md") for atoms in snapshots)

    jobs = {name: md if name == "md" else static(name) for name in PAIR_CONFIG_TYPES}
    return _collect(jobs, rng, num_structures, description, progress)
