"""Attributions during simulations: a calculator that adds them on request, and trajectories."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ase import Atoms
from tqdm.auto import tqdm

from ase_gnn import GNNCalculator, OnRequestCalculator
from explain.explainer import Explainer
from explain.result import Attribution
from explain.targets import Target


class ExplainingCalculator(OnRequestCalculator):
    """A :class:`ase_gnn.GNNCalculator` whose results can also hold attributions.

    ``atom_attributions`` ``[N]`` and ``edge_attributions`` ``[E]`` are computed only when asked
    for (``calc.get_property("atom_attributions", atoms)``), so MD with this calculator costs
    what the wrapped one costs. The edges of ``edge_attributions`` are in ``results["edge_index"]``
    and ``results["edge_shift"]``; the full :class:`~explain.Attribution` objects of the last
    structure are in :attr:`attributions` (by level).

    Parameters
    ----------
    calculator
        The wrapped calculator (its model is explained).
    method, target, internal_batch_size, **options
        As for :class:`explain.Explainer` (one explainer per level is made from them).
    """

    extra_properties = ("atom_attributions", "edge_attributions")

    def __init__(
        self,
        calculator: GNNCalculator,
        method: str = "integrated_gradients",
        target: Target | None = None,
        internal_batch_size: int = 32,
        **options: Any,
    ) -> None:
        super().__init__(calculator)
        self.explainers = {
            level: Explainer(
                calculator.model,
                method,
                target,
                level=level,
                internal_batch_size=internal_batch_size,
                **options,
            )
            for level in ("atom", "edge")
        }
        self.attributions: dict[str, Attribution] = {}

    def compute_extra(self, name: str, atoms: Atoms) -> dict[str, Any]:
        """Attributions at the level the property names."""
        level = name.removesuffix("_attributions")
        attribution = self.explainers[level].explain(atoms)
        self.attributions[level] = attribution
        results: dict[str, Any] = {name: attribution.scores}
        if level == "edge":
            results.update(edge_index=attribution.edge_index, edge_shift=attribution.edge_shift)
        return results


def attribute_trajectory(
    explainer: Explainer, frames: Iterable[Atoms], progress: bool = True
) -> list[Attribution]:
    """Attribute every frame of a trajectory (e.g. ``ase.io.read("md.traj", ":")``).

    Parameters
    ----------
    explainer
        What to compute for each frame.
    frames
        Structures (an ASE trajectory, a list of ``Atoms``).
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of Attribution
        One per frame; :func:`explain.visualize.plot_timeseries` plots the largest ones.
    """
    frames = list(frames)
    return [explainer.explain(atoms) for atoms in tqdm(frames, disable=not progress, unit="frame")]
