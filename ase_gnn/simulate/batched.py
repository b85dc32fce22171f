"""Many structures in few model calls: ``evaluate(model, structures)`` and ``relax(model, ...)``.

Structures are grouped into batches (one graph of B structures per model call, see
:func:`ase_gnn.batch_graphs`) and every result is split back per structure in ASE's units and
conventions, exactly as :class:`ase_gnn.GNNCalculator` would report it one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.optimize.optimize import Optimizer
from tqdm.auto import tqdm

from ase_gnn.calculators.calculator import GNNCalculator, to_ase_results
from ase_gnn.calculators.checks import check_distinct_positions, check_extensive
from ase_gnn.graph.atomic_graph import batch_graphs, has_stress
from ase_gnn.graph.neighbors import graph_from_atoms
from ase_gnn.models.base import EnergyModel
from ase_gnn.models.forces import Prediction, predict
from ase_gnn.models.nn.embedding import check_species

PROPERTIES = GNNCalculator.implemented_properties


def evaluate(
    model: EnergyModel,
    structures: Iterable[Atoms],
    batch_size: int = 32,
    properties: Sequence[str] = ("energy", "forces", "stress"),
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Energies, forces, stresses and per-atom energies of many structures, batched.

    Parameters
    ----------
    model
        The potential (evaluated on its own device and dtype).
    structures
        Any number of ``ase.Atoms``, of any sizes and boundary conditions.
    batch_size
        Structures per model call (memory grows with it).
    properties
        Which of ``energy``, ``free_energy``, ``energies``, ``forces``, ``stress`` to return;
        energies are always computed (they cost nothing extra), forces and stress only if asked.
        Stress is returned for structures with a periodic axis and a 3-D cell, as by
        :class:`ase_gnn.GNNCalculator`.
    progress
        Show a tqdm progress bar over structures.

    Returns
    -------
    list of dict
        One ASE-style result dictionary per structure, in order: ``energy`` (eV, float),
        ``energies`` ``(N,)`` eV, ``forces`` ``(N, 3)`` eV/Å, ``stress`` ``(6,)`` eV/Å³ (Voigt).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from ase_gnn import SchNet, evaluate
    >>> model = SchNet(["Cu"], hidden_channels=8, num_interactions=1)
    >>> results = evaluate(model, [bulk("Cu") * k for k in (1, 2, 3)], batch_size=2)
    >>> [r["forces"].shape for r in results]
    [(1, 3), (8, 3), (27, 3)]
    """
    unknown = sorted(set(properties) - set(PROPERTIES))
    if unknown:
        raise ValueError(f"unknown properties {unknown}; choose from {list(PROPERTIES)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    check_extensive(model)
    structures = list(structures)
    return _evaluate(model, structures, range(len(structures)), batch_size, properties, progress)


def _evaluate(
    model: EnergyModel,
    structures: Sequence[Atoms],
    numbers: Sequence[int],
    batch_size: int,
    properties: Sequence[str],
    progress: bool = False,
) -> list[dict[str, Any]]:
    """:func:`evaluate` without argument checks; ``numbers`` name the structures in errors."""
    results: list[dict[str, Any]] = [{} for _ in structures]
    # Structures with and without stress go in separate batches (stress needs a 3-D cell).
    for wants_stress in (True, False):
        chosen = [k for k, a in enumerate(structures) if has_stress(a) == wants_stress]
        for start in tqdm(
            range(0, len(chosen), batch_size),
            disable=not progress,
            unit="batch",
            desc=f"evaluate ({'periodic' if wants_stress else 'non-periodic'})",
        ):
            indices = chosen[start : start + batch_size]
            predictions = _predict_batch(
                model,
                {numbers[k]: structures[k] for k in indices},
                forces="forces" in properties,
                stress=wants_stress and "stress" in properties,
            )
            for k, prediction in zip(indices, predictions):
                full = to_ase_results(prediction)
                results[k] = {name: full[name] for name in (*properties, "energy") if name in full}
    return results


def _predict_batch(
    model: EnergyModel, structures: dict[int, Atoms], forces: bool, stress: bool
) -> list[Prediction]:
    """One model call for ``structures`` (by number), split into one-structure predictions."""
    graphs = []
    for number, atoms in structures.items():
        check_species(atoms.numbers, model.species)
        graph = graph_from_atoms(atoms, model.cutoff, dtype=model.dtype, device=model.device)
        check_distinct_positions(graph, atoms, where=f"structure {number}: ")
        graphs.append(graph)
    graph = batch_graphs(graphs)
    batch = predict(model, graph, forces=forces, stress=stress)
    ptr = graph.ptr.tolist()
    return [
        Prediction(
            energy=batch.energy[b : b + 1],
            local_energies=batch.local_energies[ptr[b] : ptr[b + 1]],
            forces=None if batch.forces is None else batch.forces[ptr[b] : ptr[b + 1]],
            stress=None if batch.stress is None else batch.stress[b : b + 1],
        )
        for b in range(len(structures))
    ]


@dataclass
class Relaxation:
    """What :func:`relax` did to every structure.

    Attributes
    ----------
    converged
        ``[S]`` whether the optimizer judged the structure converged (largest constrained
        atomic force below ``fmax``).
    steps
        ``[S]`` optimizer steps taken.
    fmax
        ``[S]`` largest atomic force at the end, eV/Å, after the constraints are applied (a
        fixed atom counts as force-free), as the optimizer sees it.
    energy
        ``[S]`` energy at the end, eV.
    """

    converged: np.ndarray
    steps: np.ndarray
    fmax: np.ndarray
    energy: np.ndarray


def relax(
    model: EnergyModel,
    structures: Sequence[Atoms],
    fmax: float = 0.05,
    max_steps: int = 500,
    optimizer: type[Optimizer] | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> Relaxation:
    """Relax the positions of many structures together, each converging on its own.

    Every optimizer step evaluates the forces of all structures not yet converged in batched
    model calls (:func:`evaluate`); every structure keeps its own ASE optimizer and stops as soon
    as that optimizer judges it converged (its largest force below ``fmax``, after constraints
    such as ``FixAtoms``, ``FixCartesian`` or ``FixBondLength`` are applied). The result, step by
    step, equals relaxing the structures one by one with :class:`ase_gnn.GNNCalculator` and the
    same optimizer (``opt.run(fmax, steps=max_steps)``). Cells are kept fixed.

    Parameters
    ----------
    model
        The potential.
    structures
        ``ase.Atoms`` relaxed in place, constraints honoured; each ends with a
        ``SinglePointCalculator`` holding its final energy and (unconstrained) forces.
    fmax
        Convergence threshold on the largest constrained atomic force, eV/Å.
    max_steps
        Most optimizer steps per structure.
    optimizer
        An ASE optimizer class taking forces from ``atoms.get_forces()`` (default
        :class:`ase.optimize.FIRE`; ``BFGS`` and ``LBFGS`` work too).
    batch_size
        Structures per model call.
    progress
        Show a tqdm progress bar over steps.

    Returns
    -------
    Relaxation
        Per structure: converged, steps, final largest force (eV/Å) and energy (eV).
    """
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.optimize import FIRE

    check_extensive(model)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    optimizers = [(optimizer or FIRE)(atoms, logfile=None) for atoms in structures]
    for opt in optimizers:
        opt.fmax = fmax  # what Optimizer.run(fmax) sets, read by opt.converged()
    steps = np.zeros(len(structures), dtype=int)
    converged = np.zeros(len(structures), dtype=bool)
    largest = np.full(len(structures), np.inf)
    energy = np.zeros(len(structures))
    active = list(range(len(structures)))
    for _ in tqdm(range(max_steps + 1), disable=not progress, desc="relax", unit="step"):
        results = _evaluate(
            model, [structures[k] for k in active], active, batch_size, ("forces", "free_energy")
        )
        still_active = []
        for k, result in zip(active, results):
            atoms = structures[k]
            atoms.calc = SinglePointCalculator(atoms, **result)
            energy[k] = result["energy"]
            # The forces the optimizer sees: atoms.get_forces() applies the constraints (a fixed
            # atom's force is removed), and the optimizer judges convergence on them itself.
            constrained = atoms.get_forces()
            largest[k] = np.linalg.norm(constrained, axis=1).max() if len(atoms) else 0.0
            # ASE's own test takes a maximum over atoms, which fails for an empty structure.
            converged[k] = len(atoms) == 0 or bool(optimizers[k].converged())
            if not converged[k] and steps[k] < max_steps:
                optimizers[k].step()  # reads the forces just stored, moves the atoms
                steps[k] += 1
                still_active.append(k)
        active = still_active
        if not active:
            break
    return Relaxation(converged, steps, largest, energy)
