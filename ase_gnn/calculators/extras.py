"""Calculators that add costly extra results to a :class:`GNNCalculator` only when asked for.

MD and relaxations ask only for energy, forces and stress, so they run at the wrapped
calculator's speed; ``calc.get_property("atom_anomaly", atoms)`` (or any other extra) computes
that property for the current structure, cached while the atoms do not change.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ase_gnn.analysis.unsupervised import AnomalyDetector
from ase_gnn.calculators.calculator import GNNCalculator


class OnRequestCalculator(Calculator):
    """Base: the wrapped calculator's results, plus :attr:`extra_properties` on request.

    Subclasses list their properties in :attr:`extra_properties` and implement
    :meth:`compute_extra`, which returns the results for one of them.

    Parameters
    ----------
    calculator
        The wrapped calculator.
    """

    extra_properties: ClassVar[tuple[str, ...]] = ()

    def __init__(self, calculator: GNNCalculator) -> None:
        super().__init__()
        self.calculator = calculator

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A class-wide tuple, never mutated (as GNNCalculator's).
        cls.implemented_properties = (  # type: ignore[assignment]
            *GNNCalculator.implemented_properties,
            *cls.extra_properties,
        )

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Energy, forces, stress from the wrapped calculator; extras only if requested."""
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        if "energy" not in self.results:  # ASE keeps results while the atoms are unchanged
            self.calculator.calculate(self.atoms, ["energy", "forces"], all_changes)
            self.results.update(self.calculator.results)
        for name in properties or []:
            if name in self.extra_properties and name not in self.results:
                self.results.update(self.compute_extra(name, self.atoms))

    def compute_extra(self, name: str, atoms: Atoms) -> dict[str, Any]:  # pragma: no cover
        """Results (at least ``name``) of one extra property for ``atoms``."""
        raise NotImplementedError


class AnomalyCalculator(OnRequestCalculator):
    """A :class:`GNNCalculator` that also reports out-of-distribution scores, on request.

    ``atom_anomaly`` ``[N]`` and ``anomaly`` (the largest atom score) come from an
    :class:`ase_gnn.AnomalyDetector` fitted on the training data: an uncertainty-like signal
    that flags structures unlike those the model learned from.

    Parameters
    ----------
    calculator
        The wrapped calculator.
    detector
        A fitted detector (on the same model).
    """

    extra_properties = ("anomaly", "atom_anomaly")

    def __init__(self, calculator: GNNCalculator, detector: AnomalyDetector) -> None:
        super().__init__(calculator)
        self.detector = detector

    def compute_extra(self, name: str, atoms: Atoms) -> dict[str, Any]:
        """Both scores in one pass."""
        scores = self.detector.score_atoms(atoms)
        return {"atom_anomaly": scores, "anomaly": float(scores.max(initial=0.0))}
