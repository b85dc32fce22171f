"""From a :class:`TrainConfig` to a trained model file: data, splits, model, E0, run, report."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from ase_gnn.models.base import ARCHITECTURES, EnergyModel
from ase_gnn.models.io import resolve_dtype, save_model
from ase_gnn.models.nn.embedding import check_species
from ase_gnn.training.config import HeadConfig, OptimizerConfig, RunConfig, TrainConfig
from ase_gnn.training.data import (
    GraphDataset,
    LabelKeys,
    fit_atomic_energies,
    isolated_atom_energies,
    label_keys,
    labels_from_atoms,
    read_structures,
    split,
)
from ase_gnn.training.loss import LossWeights, stress_label_mask
from ase_gnn.training.trainer import History, Trainer, _world, evaluate_metrics

logger = logging.getLogger(__name__)


def prepare_model(
    model: EnergyModel,
    train: Sequence[Atoms],
    atomic_energies: str | Mapping[str, float] = "fit",
    keys: LabelKeys | None = None,
) -> None:
    """Set reference energies E0 and the output scale from the training data (in place).

    E0 comes from ``atomic_energies``: ``"fit"`` (least squares on ``train``),
    ``"isolated:<emt|lj|morse>"`` (an isolated atom with that ASE calculator) or a table in eV.
    The scale is the RMS force component of ``train`` (eV/Å), so that the raw network output
    is of order one. Both are stored in the model (and its file).

    Raises
    ------
    ValueError
        For an unknown setting, non-finite E0 values, or labels that
        :func:`~ase_gnn.training.data.labels_from_atoms` rejects (named by structure index).
    """
    for atoms in train:
        check_species(atoms.numbers, model.species)
    energies: Mapping[str, float] | Sequence[float]
    if atomic_energies == "fit":
        energies = fit_atomic_energies(train, model.species, keys)
    elif isinstance(atomic_energies, str) and atomic_energies.startswith("isolated:"):
        energies = isolated_atom_energies(model.species, atomic_energies.split(":", 1)[1])
    elif isinstance(atomic_energies, Mapping):
        energies = atomic_energies
    else:
        raise ValueError(f"unknown atomic_energies setting {atomic_energies!r}")
    named = (
        energies.items()
        if isinstance(energies, Mapping)
        else zip((chemical_symbols[z] for z in model.species), energies)
    )
    bad = {str(element): value for element, value in named if not math.isfinite(float(value))}
    if bad:
        raise ValueError(f"reference energies E0 must be finite, got {bad} (eV)")
    model.set_atomic_energies(energies)
    forces = torch.cat(
        [
            labels_from_atoms(a, keys, where=f"training structure {k}").forces.reshape(-1)
            for k, a in enumerate(train)
        ]
    )
    with torch.no_grad():
        model.scale.fill_(max(float(forces.pow(2).mean().sqrt()), 1e-3))


def load_splits(config: TrainConfig) -> tuple[list[Atoms], list[Atoms], list[Atoms]]:
    """Read the data files and split off validation and test structures as configured.

    Raises
    ------
    ValueError
        For an empty split, or a structure whose labels are missing, misshapen or not finite
        (named by file and index in it, see :func:`~ase_gnn.training.data.labels_from_atoms`).
    """
    data = config.data
    keys = label_keys(data)

    def read(path: str) -> list[Atoms]:
        structures = read_structures(path)
        for k, atoms in enumerate(structures):  # errors name the structure in its file
            labels_from_atoms(atoms, keys, where=f"{path} structure {k}")
        return structures

    fractions = [
        0.0 if data.valid else data.valid_fraction,
        0.0 if data.test else data.test_fraction,
    ]
    train, valid, test = split(read(data.train), fractions, data.split_seed)
    if data.valid:
        valid = read(data.valid)
    if data.test:
        test = read(data.test)
    for name, part in (("training", train), ("validation", valid)):
        if not part:
            raise ValueError(f"the {name} split is empty; adjust [data] fractions or files")
    return train, valid, test


def build_model(config: TrainConfig, structures: Sequence[Atoms]) -> EnergyModel:
    """Construct the configured architecture for the elements of ``structures``.

    Its weights are drawn from a torch stream seeded with ``config.run.seed`` and forked from
    the global one, which is left as it was: the same seed gives the same model.
    """
    species = list(config.model.species) or sorted(
        {s for a in structures for s in a.get_chemical_symbols()},
        key=lambda symbol: atomic_numbers[symbol],
    )
    model = config.model
    arguments = dict(model.hyperparameters)
    if model.long_range:
        arguments["long_range"] = {"width": model.charge_width, "accuracy": model.ewald_accuracy,
                                   "summation": model.summation}  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.run.seed)
        return ARCHITECTURES[model.architecture](
            species=species, cutoff=model.cutoff, readout=model.readout, **arguments
        )


def train_from_config(
    config: TrainConfig, resume: bool = False, log: Any = print
) -> tuple[EnergyModel, History, dict[str, dict[str, float]]]:
    """Run the whole training job described by ``config``.

    Writes to ``config.run.out_dir``: ``model.safetensors`` (best averaged weights, with the
    resolved config in its header), ``best.safetensors``, ``checkpoints/{best,last}.ckpt``,
    ``metrics.csv``, ``config.json``, ``final_metrics.json``, ``learning_curve.png`` and
    ``parity.png``. Only rank 0 writes under ``torchrun``.

    Returns
    -------
    model, history, metrics
        The trained model, its history and the final MAE/RMSE on train/valid/test.
    """
    rank, _ = _world()
    out = Path(config.run.out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        log("resolved configuration:\n" + json.dumps(config.to_dict(), indent=2))
    train, valid, test = load_splits(config)
    model = build_model(config, train)
    keys = label_keys(config.data)
    prepare_model(model, train, config.model.atomic_energies, keys)
    history = Trainer(model, config).fit(train, valid, test or None, resume=resume)
    sets = {"train": train, "valid": valid, "test": test}
    metrics = {
        name: evaluate_metrics(
            model,
            GraphDataset(part, model.cutoff, model.dtype, keys, heads=config.heads),
            config.run.eval_batch_size,
            heads=config.heads,
        )
        for name, part in sets.items()
        if part
    }
    if rank == 0:
        save_model(model, out / "model.safetensors", training_config=config.to_dict())
        (out / "final_metrics.json").write_text(json.dumps(metrics, indent=2))
        from ase_gnn.analysis.plots import learning_curve_plot

        learning_curve_plot(history.train_loss, history.valid, out / "learning_curve.png")
        parity_plots(model, test or valid, out / "parity.png", keys)
        log(format_metrics(metrics))
    return model, history, metrics


def format_metrics(metrics: Mapping[str, Mapping[str, float]]) -> str:
    """A text table of MAE/RMSE per split in meV/atom, meV/Å and meV/Å³."""
    lines = [
        f"{'split':<7}{'E MAE':>10}{'E RMSE':>10}{'F MAE':>10}{'F RMSE':>10}"
        f"{'σ MAE':>10}{'σ RMSE':>10}",
        f"{'':<7}{'meV/atom':>20}{'meV/Å':>20}{'meV/Å³':>20}",
    ]
    for name, values in metrics.items():
        cells = [
            1e3 * values.get(f"{q}_{m}", np.nan)
            for q in ("energy", "forces", "stress")
            for m in ("mae", "rmse")
        ]
        lines.append(f"{name:<7}" + "".join(f"{c:>10.2f}" for c in cells))
    return "\n".join(lines)


def parity_plots(
    model: EnergyModel,
    structures: Sequence[Atoms],
    path: str | Path,
    keys: LabelKeys | None = None,
) -> None:
    """Parity plots of energy per atom, force components and (where labelled) stress."""
    from ase_gnn.analysis.plots import parity_plot
    from ase_gnn.graph.neighbors import graph_from_atoms
    from ase_gnn.models.forces import predict

    columns: dict[str, tuple[list[float], list[float]]] = {
        "energy per atom": ([], []),
        "force components": ([], []),
        "stress components": ([], []),
    }
    for atoms in structures:
        labels = labels_from_atoms(atoms, keys).to(model.device, model.dtype)
        graph = graph_from_atoms(atoms, model.cutoff, dtype=model.dtype, device=model.device)
        stress = bool(stress_label_mask(graph, labels))
        prediction = predict(model, graph, stress=stress)
        n = len(atoms)
        columns["energy per atom"][0].append(float(labels.energy) / n)
        columns["energy per atom"][1].append(float(prediction.energy) / n)
        assert prediction.forces is not None
        columns["force components"][0].extend(labels.forces.cpu().ravel().tolist())
        columns["force components"][1].extend(prediction.forces.cpu().ravel().tolist())
        if stress and prediction.stress is not None:
            columns["stress components"][0].extend(labels.stress.cpu().ravel().tolist())
            columns["stress components"][1].extend(prediction.stress.cpu().ravel().tolist())
    units = {"energy per atom": "eV/atom", "force components": "eV/Å", "stress components": "eV/Å³"}
    panels = {
        name: (np.array(ref), np.array(pred), units[name])
        for name, (ref, pred) in columns.items()
        if ref
    }
    parity_plot(panels, path)


def train_model(
    model: EnergyModel,
    train: Sequence[Atoms],
    valid: Sequence[Atoms],
    epochs: int = 100,
    batch_size: int = 8,
    learning_rate: float = 3e-3,
    weights: LossWeights | None = None,
    fit_reference_energies: bool = True,
    time_budget: float | None = None,
    dtype: torch.dtype | str = "float32",
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool | None = None,
    out_dir: str | Path | None = None,
    heads: Sequence[HeadConfig] = (),
) -> History:
    """Train ``model`` in place with keyword arguments instead of a :class:`TrainConfig`.

    Reference energies are fitted by least squares on ``train`` and the output scale set to the
    RMS force (see :func:`prepare_model`); then :class:`Trainer` runs with Adam, EMA weights and
    a plateau schedule. Files (checkpoints, metrics CSV) go to ``out_dir`` (a temporary folder
    if None). ``heads`` are trained beside the energy (see :class:`HeadConfig`).

    Returns
    -------
    History
        Metrics per epoch.
    """
    weights = weights or LossWeights()
    if fit_reference_energies:
        prepare_model(model, train, "fit")
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            loss=dataclasses.replace(
                TrainConfig().loss,
                energy_weight=weights.energy,
                forces_weight=weights.forces,
                stress_weight=weights.stress,
                charges_weight=weights.charges,
                kind=weights.kind,
                huber_delta=weights.huber_delta,
            ),
            optimizer=OptimizerConfig(learning_rate=learning_rate),
            run=RunConfig(
                epochs=epochs,
                batch_size=batch_size,
                time_budget=time_budget,
                dtype="float64" if resolve_dtype(dtype) == torch.float64 else "float32",
                device=str(device),
                seed=seed,
                progress=progress,
                out_dir=str(out_dir or tmp),
            ),
            heads=tuple(heads),
        )
        return Trainer(model, config).fit(train, valid)
