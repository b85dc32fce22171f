"""Committees of models: the mean prediction and its spread as an uncertainty.

Members are typically the same architecture trained with different seeds
(``ase-gnn train --committee K``). Where the training data covered a structure well, they agree;
far from it (compressed, melted, a new surface), they extrapolate differently and the spread
grows. Spreads are population standard deviations over the K members.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ase_gnn.calculators.calculator import GNNCalculator, to_ase_results
from ase_gnn.calculators.checks import check_distinct_positions, check_finite
from ase_gnn.graph.atomic_graph import AtomicGraph, has_stress
from ase_gnn.graph.neighbors import graph_from_atoms
from ase_gnn.models.base import EnergyModel
from ase_gnn.models.forces import predict
from ase_gnn.models.nn.embedding import check_species


class CommitteeCalculator(Calculator):
    """ASE calculator averaging several models, with their spread in ``results``.

    ``energy``, ``free_energy``, ``energies``, ``forces`` and ``stress`` are committee means;
    ``energy_std`` (eV), ``forces_std`` ``(N,)`` (eV/Å, the length of the per-component
    standard deviations of each atom's force) and ``stress_std`` ``(6,)`` (eV/Å³, Voigt) are the
    spreads. Everything comes from one pass per member and is cached like any ASE result.

    Parameters
    ----------
    models
        Two or more models, or model files, all for the structures' elements.
    device
        Torch device to evaluate on.
    dtype
        ``"float32"`` / ``"float64"``; each model's own dtype if None. A model that needs
        another device or dtype is copied, never changed in place.
    """

    implemented_properties = (  # type: ignore[assignment]  # a tuple, never mutated
        "energy",
        "free_energy",
        "energies",
        "forces",
        "stress",
        "energy_std",
        "forces_std",
        "stress_std",
    )

    def __init__(
        self,
        models: Sequence[EnergyModel | str | os.PathLike[str]],
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if len(models) < 2:
            raise ValueError(f"a committee needs at least two models, got {len(models)}")
        # GNNCalculator resolves files, devices and dtypes (copying, never changing, a model).
        self.models = [GNNCalculator(model, device=device, dtype=dtype).model for model in models]
        if all(model.electrostatics is not None for model in self.models):
            self.implemented_properties = (*type(self).implemented_properties, "charges")  # type: ignore[assignment]
        elif any(model.electrostatics is not None for model in self.models):
            raise ValueError("a committee's models must all have long range or none")

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Every member once; means and spreads of all properties into ``results``."""
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        graphs: dict[tuple[float, torch.dtype], AtomicGraph] = {}
        members = []
        for model in self.models:
            check_species(self.atoms.numbers, model.species)
            key = (model.cutoff, model.dtype)
            if key not in graphs:  # members sharing cutoff and dtype share the graph
                graphs[key] = graph_from_atoms(
                    self.atoms, model.cutoff, dtype=model.dtype, device=model.device
                )
                check_distinct_positions(graphs[key], self.atoms)
            prediction = predict(model, graphs[key], forces=True, stress=has_stress(self.atoms))
            members.append(to_ase_results(prediction))
        self.results = _mean_and_spread(members)
        check_finite(self.results)


def _mean_and_spread(members: list[dict[str, Any]]) -> dict[str, Any]:
    """Committee means of every result, with ``energy_std``, ``forces_std``, ``stress_std``."""
    results: dict[str, Any] = {}
    for name in members[0]:
        stacked = np.stack([np.asarray(member[name], dtype=float) for member in members])
        results[name] = float(stacked.mean()) if stacked.ndim == 1 else stacked.mean(axis=0)
        if name == "energy":
            results["energy_std"] = float(stacked.std())
        elif name == "forces":
            results["forces_std"] = np.sqrt(stacked.var(axis=0).sum(axis=1))
        elif name == "stress":
            results["stress_std"] = stacked.std(axis=0)
    return results
