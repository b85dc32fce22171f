"""``GNNCalculator``: an ASE calculator around any ase-gnn model. Conversion only."""

from __future__ import annotations

import copy
import os
from typing import Any, cast

import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from ase_gnn.calculators.checks import check_distinct_positions, check_extensive, check_finite
from ase_gnn.graph.atomic_graph import has_stress
from ase_gnn.graph.neighbors import graph_from_atoms
from ase_gnn.graph.skin import SkinNeighborList
from ase_gnn.models.base import EnergyModel
from ase_gnn.models.forces import Prediction, predict
from ase_gnn.models.io import check_model_dtype, load_model, resolve_device, resolve_dtype
from ase_gnn.models.nn.embedding import check_species


def to_ase_results(prediction: Prediction) -> dict[str, Any]:
    """Convert a one-structure :class:`Prediction` to ASE ``results`` (float64 numpy, Voigt stress).

    Parameters
    ----------
    prediction
        Output of :func:`ase_gnn.predict` for a batch of one structure.

    Returns
    -------
    dict
        ``energy`` and ``free_energy`` (Python floats, eV), ``energies`` ``(N,)`` eV, ``forces``
        ``(N, 3)`` eV/Å, ``stress`` ``(6,)`` eV/Å³ in Voigt order xx, yy, zz, yz, xz, xy, and for
        long-range models ``charges`` ``(N,)`` e.
    """
    energy = float(prediction.energy[0])
    results: dict[str, Any] = {
        "energy": energy,
        "free_energy": energy,
        "energies": prediction.local_energies.cpu().double().numpy(),
    }
    if prediction.forces is not None:
        results["forces"] = prediction.forces.cpu().double().numpy()
    if prediction.stress is not None:
        results["stress"] = full_3x3_to_voigt_6_stress(prediction.stress[0].cpu().double().numpy())
    if prediction.charges is not None:
        results["charges"] = prediction.charges.cpu().double().numpy()
    return results


class GNNCalculator(Calculator):
    """ASE calculator for ase-gnn potentials.

    All properties come from one model call (energy, free energy, per-atom energies, forces and,
    for periodic 3-D cells, stress), so ASE's caching makes one call per MD step. Per-atom
    ``energies`` include the reference energies E0 and sum to ``energy``. A structure with no
    periodic axis has no stress (``PropertyNotImplementedError``, as for ASE's EMT). Models with
    a ``"mean"`` readout (intensive energy) and atoms at the same position are a ``ValueError``.
    Long-range models (``long_range``) also give ``charges`` (``atoms.get_charges()``), e; the
    total charge of a structure is ``atoms.info["charge"]`` (default 0).

    Parameters
    ----------
    model
        A model, or the path of a model file (see :func:`ase_gnn.load_model`).
    device
        Torch device to evaluate on.
    dtype
        ``"float32"`` / ``"float64"``; the model's own dtype if None. A model that needs a
        different device or dtype is copied, never changed in place.
    compile
        Run the model through ``torch.compile(model, dynamic=True)``; the first call compiles
        (seconds to a minute). Worth it for equivariant models on small and medium systems.
    skin
        If positive, search pairs only when an atom moved more than ``skin / 2`` Å
        (:class:`ase_gnn.graph.skin.SkinNeighborList`): for MD.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from ase_gnn import GNNCalculator, SchNet
    >>> atoms = bulk("Cu", cubic=True)
    >>> atoms.calc = GNNCalculator(SchNet(["Cu"], hidden_channels=8), dtype="float64")
    >>> atoms.get_forces().shape
    (4, 3)
    """

    # A tuple, unlike ASE's list: no instance can ever extend the class-wide value.
    implemented_properties = ("energy", "free_energy", "energies", "forces", "stress")  # type: ignore[assignment]

    def __init__(
        self,
        model: EnergyModel | str | os.PathLike[str],
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        compile: bool = False,
        skin: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(model, (str, os.PathLike)):
            model = load_model(model, device=device, dtype=dtype)
        if not isinstance(model, EnergyModel):
            raise TypeError(f"model must be an EnergyModel or a path, got {type(model).__name__}")
        check_extensive(model)  # a mean readout: a ValueError, not energies per atom
        target_dtype = model.dtype if dtype is None else resolve_dtype(dtype)
        target_device = resolve_device(device)
        if model.dtype != target_dtype or model.device != target_device:
            model = copy.deepcopy(model).to(device=target_device, dtype=target_dtype)
        check_model_dtype(model)  # half precision or mixed dtypes: a clear ValueError
        self.model = model
        if model.electrostatics is not None:
            self.implemented_properties = (*type(self).implemented_properties, "charges")  # type: ignore[assignment]
        compiled = torch.compile(model, dynamic=True) if compile else model  # an OptimizedModule
        self._forward = cast(torch.nn.Module, compiled)
        self._neighbors = SkinNeighborList(model.cutoff, skin) if skin > 0 else None

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        **kwargs: Any,
    ) -> GNNCalculator:
        """Build a calculator from a model file (arguments as for the constructor)."""
        return cls(load_model(path, device=device, dtype=dtype), device=device, **kwargs)

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Compute every implemented property in one model call and store them in ``results``."""
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        check_species(self.atoms.numbers, self.model.species)
        dtype, device = self.model.dtype, self.model.device
        if self._neighbors is None:
            graph = graph_from_atoms(self.atoms, self.model.cutoff, dtype, device)
        else:
            graph = self._neighbors.graph(self.atoms, dtype, device)
        check_distinct_positions(graph, self.atoms)
        prediction = predict(self._forward, graph, forces=True, stress=has_stress(self.atoms))
        self.results = check_finite(to_ase_results(prediction))
