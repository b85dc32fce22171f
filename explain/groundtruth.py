"""Checks of attributions against known decompositions of the energy.

For a pair potential (Lennard-Jones, Morse) the energy is exactly a sum of bond energies V(r_ij),
and ASE's per-atom ``energies`` give each atom half of its bonds; for EMT the per-atom energies
are the method's own decomposition. A model trained on such data has no obligation to split its
energy the same way (per-atom energies are not unique), but a faithful attribution of a good
model should follow them closely, much better than chance.

The bond energies are computed with the reference calculator itself, on isolated dimers:
V(r) = E(dimer at r) − E(atom i) − E(atom j), so no formula is re-typed here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator
from scipy.stats import pearsonr, spearmanr

from explain.result import Attribution


def correlation(predicted: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation of two ``[M]`` arrays (NaN for fewer than 3 values)."""
    predicted, reference = np.ravel(predicted), np.ravel(reference)
    if len(predicted) < 3 or np.ptp(predicted) == 0 or np.ptp(reference) == 0:
        return {"pearson": float("nan"), "spearman": float("nan")}
    return {
        "pearson": float(pearsonr(predicted, reference).statistic),
        "spearman": float(spearmanr(predicted, reference).statistic),
    }


def dimer_energies(
    calculator: BaseCalculator | Callable[[], BaseCalculator],
    numbers: tuple[int, int],
    distances: np.ndarray,
) -> np.ndarray:
    """Bond energies V(r) = E(dimer) − E(atom) − E(atom), eV, of one pair of species.

    Parameters
    ----------
    calculator
        An ASE calculator (or a factory of one) of a pair potential or any other method.
    numbers
        Atomic numbers of the two atoms.
    distances
        ``[M]`` separations, Å.

    Returns
    -------
    ndarray
        ``[M]`` energies, eV.
    """
    calc = calculator() if callable(calculator) else calculator

    def energy(atoms: Atoms) -> float:
        atoms.calc = calc
        return float(atoms.get_potential_energy())

    isolated = sum(energy(Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]])) for z in numbers)
    return np.array(
        [
            energy(Atoms(numbers=list(numbers), positions=[[0.0, 0.0, 0.0], [r, 0.0, 0.0]]))
            - isolated
            for r in np.asarray(distances, dtype=float)
        ]
    )


def bond_energies(
    attribution: Attribution, calculator: BaseCalculator | Callable[[], BaseCalculator]
) -> tuple[np.ndarray, np.ndarray]:
    """Attributed and true energies of the bonds of an edge-level attribution.

    Returns
    -------
    attributed : ndarray
        ``[P]`` bond scores (both directions summed), eV.
    true : ndarray
        ``[P]`` pair energies V(r) from ``calculator``, eV.
    """
    edges, attributed, lengths = attribution.bonds()
    numbers = attribution.atoms.numbers[attribution.edge_index[:, edges]]  # [2, P]
    true = np.empty(len(edges))
    pairs = {tuple(sorted(pair)) for pair in numbers.T.tolist()}
    for pair in pairs:
        chosen = (np.sort(numbers, axis=0) == np.array(pair)[:, None]).all(axis=0)
        true[chosen] = dimer_energies(calculator, (int(pair[0]), int(pair[1])), lengths[chosen])
    return attributed, true


def pair_potential_check(
    attribution: Attribution, calculator: BaseCalculator | Callable[[], BaseCalculator]
) -> dict[str, float]:
    """Correlation of bond scores with the true pair energies (see :func:`bond_energies`)."""
    return correlation(*bond_energies(attribution, calculator))


def local_energy_check(attribution: Attribution, true_energies: np.ndarray) -> dict[str, float]:
    """Correlation of atom scores ``[N]`` with true per-atom energies ``[N]`` (e.g. EMT's)."""
    return correlation(attribution.node, np.asarray(true_energies))
