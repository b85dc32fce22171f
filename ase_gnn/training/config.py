"""Training configuration: frozen dataclasses whose field docstrings are the documentation.

A TOML file maps one-to-one onto :class:`TrainConfig`; every section is a dataclass below and
every key a field. The command line adds no defaults of its own, and ``--set section.key=value``
overrides a single field. An unknown key is an error that names it and suggests the closest one.

.. code-block:: toml

    [model]
    architecture = "SchNet"
    cutoff = 5.0
    [model.hyperparameters]
    hidden_channels = 64

    [data]
    train = "cu.extxyz"

    [run]
    time_budget = 300
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ase_gnn.models.base import ARCHITECTURES
from ase_gnn.models.io import resolve_device


@dataclass(frozen=True)
class ModelConfig:
    """The potential to train."""

    architecture: str = "SchNet"
    """Registered architecture name (``ase_gnn.ARCHITECTURES``)."""
    cutoff: float = 5.0
    """Neighbor cutoff, Å."""
    readout: Literal["sum", "mean"] = "sum"
    """Graph readout of local energies: ``sum`` (extensive, physical) or ``mean``."""
    species: tuple[str, ...] = ()
    """Element symbols; empty = every element found in the training data."""
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    """Architecture-specific constructor arguments (e.g. ``hidden_channels`` for SchNet)."""
    atomic_energies: str | Mapping[str, float] = "fit"
    """Reference energies E0: ``"fit"`` (least squares on the training set), ``"isolated:emt"``
    (energy of an isolated atom with ASE's EMT, or ``lj``/``morse``), or a table ``{Cu = -3.5}``
    in eV."""
    long_range: bool = False
    """Add the electrostatic energy of learned charges (Ewald/PME for periodic cells, slabs with
    the Yeh-Berkowitz correction, the direct sum for molecules; :mod:`ase_gnn.models.long_range`).
    The total charge of a structure is ``atoms.info["charge"]`` (default 0)."""
    charge_width: float = 1.0
    """Width σ of the Gaussian charges, Å (0: point charges). The Ewald splitting width is
    √2 σ, so no real-space sum is needed."""
    ewald_accuracy: float = 1e-6
    """Relative size of the omitted Ewald/PME terms; with σ it sets the reciprocal cutoff
    k_c = √(2 ln(1/accuracy)) / (√2 σ), from which the number of wave vectors (Ewald) or the
    mesh spacing (PME) of each cell follows."""
    summation: Literal["auto", "ewald", "pme"] = "auto"
    """Ewald or PME for periodic cells; ``auto`` takes PME from 80 atoms, where it becomes the
    faster."""


@dataclass(frozen=True)
class DataConfig:
    """Where the labelled structures come from and how they are split."""

    train: str = ""
    """File with training structures (any ASE-readable format: extxyz, traj, ``.db``)."""
    valid: str = ""
    """Separate validation file; empty = split ``valid_fraction`` off ``train``."""
    test: str = ""
    """Separate test file; empty = split ``test_fraction`` off ``train``."""
    valid_fraction: float = 0.1
    """Fraction of ``train`` used for validation when ``valid`` is empty."""
    test_fraction: float = 0.1
    """Fraction of ``train`` held out for testing when ``test`` is empty."""
    split_seed: int = 0
    """Seed of the train/valid/test split."""
    energy_key: str = "energy"
    """Key of the total energy (eV) in calculator results or ``atoms.info``."""
    forces_key: str = "forces"
    """Key of the forces (eV/Å) in calculator results or ``atoms.arrays``."""
    stress_key: str = "stress"
    """Key of the stress (eV/Å³, Voigt 6 or 3×3) in calculator results or ``atoms.info``;
    structures without it get no stress loss."""
    weight_key: str = "weight"
    """Key in ``atoms.info`` of a per-structure loss weight (default 1)."""
    charges_key: str = "charges"
    """Key of reference atomic charges (e) in calculator results or ``atoms.arrays`` (e.g. the
    GFN2-xTB charges of ``ase-gnn generate xtb``); used with ``[loss] charges_weight``."""


@dataclass(frozen=True)
class LossConfig:
    """Weighted sum of per-structure errors, averaged over structures."""

    energy_weight: float = 1.0
    """Weight of the energy-per-atom term (eV/atom)²."""
    forces_weight: float = 10.0
    """Weight of the mean force-component term (eV/Å)²."""
    stress_weight: float = 0.0
    """Weight of the mean stress-component term (eV/Å³)²."""
    charges_weight: float = 0.0
    """Weight of the mean squared error of the charges of a long-range model against reference
    charges (e²), in both stages; 0 learns latent charges from energies and forces alone."""
    kind: Literal["mse", "huber"] = "mse"
    """Squared error, or Huber (quadratic below ``huber_delta``, linear above)."""
    huber_delta: float = 0.01
    """Huber transition point, in the unit of each term."""
    switch_epoch: int | None = None
    """Epoch at which the second stage starts (as MACE's stage two); none if unset."""
    switch_energy_weight: float = 100.0
    """Energy weight from ``switch_epoch`` on."""
    switch_forces_weight: float = 10.0
    """Forces weight from ``switch_epoch`` on."""
    switch_stress_weight: float = 0.0
    """Stress weight from ``switch_epoch`` on."""
    switch_learning_rate: float = 1e-3
    """Learning rate from ``switch_epoch`` on."""


@dataclass(frozen=True)
class HeadConfig:
    """One output head trained together with the energy (a ``[[heads]]`` table).

    Labels: node heads read ``atoms.arrays[key]`` (``[N]`` or ``[N, C]``), edge heads an
    ``[N, N]`` matrix ``atoms.arrays[key]`` (entry i, j labels every edge i→j), graph heads
    ``atoms.info[key]``. Class labels may be names (from ``classes``) or indices. A structure
    without the key contributes nothing to this head's loss and metrics.
    """

    name: str = ""
    """Name of the head (an identifier); also the label key unless ``key`` is set."""
    level: Literal["node", "edge", "graph"] = "graph"
    """What is predicted: per atom, per edge, or per structure."""
    task: Literal["regression", "classification"] = "regression"
    """Squared error (MAE/RMSE reported) or cross-entropy (accuracy reported)."""
    key: str = ""
    """Label key; defaults to ``name``."""
    classes: tuple[str, ...] = ()
    """Class names, in output order (classification)."""
    weight: float = 1.0
    """Weight of this head's per-structure loss term."""
    num_outputs: int = 1
    """Outputs per item (regression)."""
    hidden: int = 64
    """Width of the head's hidden layers."""
    readout: Literal["sum", "mean"] = "mean"
    """Graph heads: sum (extensive) or mean (intensive) over atoms."""

    @property
    def label_key(self) -> str:
        """``key``, or ``name`` if unset."""
        return self.key or self.name


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimiser, gradient clipping and weight averaging."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    """``adam``, ``adamw`` (decoupled weight decay) or ``sgd``."""
    learning_rate: float = 3e-3
    """Initial learning rate."""
    weight_decay: float = 0.0
    """L2 (Adam, SGD) or decoupled (AdamW) weight decay."""
    momentum: float = 0.9
    """SGD momentum."""
    nesterov: bool = False
    """Nesterov momentum for SGD."""
    gradient_clip: float | None = 10.0
    """Maximum gradient norm; none to disable."""
    ema_decay: float | None = 0.99
    """Exponential moving average of the weights (what is evaluated and saved); none to disable."""


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule, stepped once per epoch."""

    name: Literal["plateau", "cosine", "step", "constant"] = "plateau"
    """``plateau`` (ReduceLROnPlateau on the validation loss), ``cosine`` (linear warm-up then
    cosine decay over ``run.epochs``), ``step`` (multiply by ``factor`` every ``step_size``
    epochs) or ``constant``."""
    factor: float = 0.5
    """Multiplier of the learning rate for ``plateau`` and ``step``."""
    patience: int = 5
    """Epochs without improvement before ``plateau`` reduces the rate."""
    step_size: int = 50
    """Epochs between reductions for ``step``."""
    warmup_epochs: int = 0
    """Linear warm-up epochs for ``cosine``."""
    min_learning_rate: float = 1e-6
    """Floor of the learning rate."""


@dataclass(frozen=True)
class RunConfig:
    """How long, where and in which precision to train, and where to write results."""

    epochs: int = 200
    """Maximum number of epochs."""
    time_budget: float | None = None
    """Stop after this many seconds (checked after every epoch)."""
    batch_size: int = 8
    """Structures per optimiser step (the global batch across all processes)."""
    eval_batch_size: int = 16
    """Structures per evaluation batch."""
    early_stopping_patience: int | None = None
    """Stop when the validation loss has not improved for this many epochs; none to disable."""
    dtype: Literal["float32", "float64"] = "float32"
    """Training precision."""
    device: str = "cpu"
    """Torch device (``cuda`` uses the process's local rank under torchrun)."""
    seed: int = 0
    """Seed of initialisation, shuffling and every random number generator."""
    out_dir: str = "run"
    """Output folder: model, checkpoints, metrics CSV and plots."""
    checkpoint_every: int = 1
    """Write the ``last`` checkpoint every this many epochs."""
    progress: bool | None = None
    """Show progress bars; default: only when stderr is a terminal."""
    tensorboard: bool = False
    """Also log every metric to TensorBoard in ``<out_dir>/tensorboard`` (needs the
    ``tensorboard`` package)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; one TOML section per field."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)
    heads: tuple[HeadConfig, ...] = ()
    """Output heads trained beside the energy (``[[heads]]`` tables, see :class:`HeadConfig`)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dictionaries (JSON/TOML-ready)."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _unknown_key(key: str, valid: Sequence[str], where: str) -> ValueError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {sorted(valid)}"
    return ValueError(f"unknown key {key!r} in {where}{hint}")


def _check_type(value: Any, annotation: Any, where: str) -> Any:
    """Validate (and lightly coerce: int → float, list → tuple) one value against a type hint.

    Why our own ~50 lines and not ``cattrs`` or ``dacite``: errors here name the TOML section and
    key (``[loss] forces_weight must be float, got str 'ten'``) and unknown keys get a did-you-mean
    hint; both libraries report Python paths and exception groups instead, and would be one more
    dependency for the few types the config uses (numbers, strings, literals, tuples, tables).
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _check_type(value, option, where)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"{where} has the wrong type: got {value!r}, expected {annotation}")
    if annotation is type(None):
        if value is not None:
            raise TypeError(f"{where} must be empty")
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where} must be a table, got {value!r}")
        return _build(annotation, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where} must be a list, got {value!r}")
        return tuple(_check_type(v, args[0], where) for v in value)
    if origin in (Mapping, dict) or annotation in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where} must be a table, got {value!r}")
        return dict(value)
    if isinstance(annotation, type):
        if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
            raise TypeError(
                f"{where} must be {annotation.__name__}, got {type(value).__name__} {value!r}"
            )
    return value


def _build(cls: type[Any], values: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise _unknown_key(key, names, where)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise TypeError(f"[{key}] must be a table")
            kwargs[key] = _build(hint, value, f"[{key}]")  # type: ignore[arg-type]  # a dataclass type
        else:
            kwargs[key] = _check_type(value, hint, f"{where}.{key}" if where else key)
    return cls(**kwargs)


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from nested dictionaries (e.g. parsed TOML).

    Raises
    ------
    ValueError
        For an unknown key (naming it and suggesting the closest valid one) or a bad value.
    TypeError
        For a value of the wrong type.
    """
    config: TrainConfig = _build(TrainConfig, values, "")
    _validate(config)
    return config


def _validate(config: TrainConfig) -> None:
    model = config.model
    if model.architecture not in ARCHITECTURES:
        raise _unknown_key(model.architecture, list(ARCHITECTURES), "[model] architecture")
    signature = inspect.signature(ARCHITECTURES[model.architecture].__init__)
    accepted = [
        name
        for name in signature.parameters
        if name not in ("self", "species", "cutoff", "readout", "atomic_energies")
    ]
    for key in model.hyperparameters:
        if key not in accepted:
            raise _unknown_key(key, accepted, f"[model.hyperparameters] of {model.architecture}")
    if isinstance(model.atomic_energies, str) and not (
        model.atomic_energies == "fit" or model.atomic_energies.startswith("isolated:")
    ):
        raise ValueError(
            f"[model] atomic_energies must be 'fit', 'isolated:<calculator>' or a table, "
            f"got {model.atomic_energies!r}"
        )
    if not config.data.train:
        raise ValueError("[data] train must name a data file")
    if config.loss.charges_weight > 0 and not model.long_range:
        raise ValueError(
            "[loss] charges_weight needs [model] long_range = true (a model with charges)"
        )
    check_training_settings(config)
    data = config.data
    if not (data.valid or data.test) and data.valid_fraction + data.test_fraction >= 1:
        raise ValueError("[data] valid_fraction + test_fraction must be below 1 (nothing to train)")
    if isinstance(model.atomic_energies, Mapping):
        for symbol, energy in model.atomic_energies.items():
            if isinstance(energy, bool) or not isinstance(energy, (int, float)):
                raise TypeError(f"[model.atomic_energies] {symbol} must be a number of eV")
            _check_number(f"[model.atomic_energies] {symbol}", energy)
    names = [head.name for head in config.heads]
    for head in config.heads:
        if not head.name.isidentifier() or head.name == "energy":
            raise ValueError(
                f"[[heads]] name must be an identifier other than 'energy', got {head.name!r}"
            )
        if names.count(head.name) > 1:
            raise ValueError(f"[[heads]] name {head.name!r} is used twice")
        _check_number(f"[[heads]] {head.name}: weight", head.weight, "at least 0", lambda v: v >= 0)
        for key in ("num_outputs", "hidden"):
            _check_number(
                f"[[heads]] {head.name}: {key}", getattr(head, key), "at least 1", lambda v: v >= 1
            )
        if head.task == "classification" and len(set(head.classes)) < 2:
            raise ValueError(f"[[heads]] {head.name}: classification needs two or more classes")


# Every numeric setting must be finite (a NaN loss weight or learning rate would train an all-NaN
# model) and lie in its range; "section.key" names below, checked by _check_number.
_POSITIVE = (
    "model.cutoff",
    "loss.huber_delta",
    "optimizer.gradient_clip",
    "schedule.factor",
)
_NON_NEGATIVE = (
    "loss.energy_weight",
    "loss.forces_weight",
    "loss.stress_weight",
    "loss.charges_weight",
    "model.charge_width",
    "loss.switch_epoch",
    "loss.switch_energy_weight",
    "loss.switch_forces_weight",
    "loss.switch_stress_weight",
    "loss.switch_learning_rate",  # 0 freezes the weights (e.g. to time a run)
    "optimizer.learning_rate",
    "optimizer.weight_decay",
    "run.time_budget",  # 0: stop after the first epoch
    "schedule.patience",
    "schedule.warmup_epochs",
    "schedule.min_learning_rate",
)
_BELOW_ONE = (
    "model.ewald_accuracy",
    "data.valid_fraction",
    "data.test_fraction",
    "optimizer.momentum",
    "optimizer.ema_decay",
    "schedule.factor",
)
_COUNTS = (
    "schedule.step_size",
    "run.epochs",
    "run.batch_size",
    "run.eval_batch_size",
    "run.early_stopping_patience",
    "run.checkpoint_every",
)
_RULES: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("greater than 0", lambda v: v > 0, _POSITIVE),
    ("at least 0", lambda v: v >= 0, _NON_NEGATIVE + _BELOW_ONE),
    ("below 1", lambda v: v < 1, _BELOW_ONE),
    ("at least 1", lambda v: v >= 1, _COUNTS),
)


def _check_number(where: str, value: float, requirement: str = "", holds: Any = None) -> None:
    """``ValueError`` naming ``where`` if ``value`` is not finite or ``holds(value)`` is false."""
    if not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value}")
    if holds is not None and not holds(value):
        raise ValueError(f"{where} must be {requirement}, got {value}")


def _check_numbers(config: TrainConfig) -> None:
    """Apply :data:`_RULES` to every setting they name (unset optional settings are skipped)."""
    for requirement, holds, names in _RULES:
        for name in names:
            section, key = name.split(".")
            value = getattr(getattr(config, section), key)
            if value is not None:
                _check_number(f"[{section}] {key}", value, requirement, holds)


def check_training_settings(config: TrainConfig) -> None:
    """Check the numeric settings and the device (what :class:`Trainer` needs; config files
    get the full check of :func:`config_from_dict`, which also covers model and data).

    Raises
    ------
    ValueError
        Naming the first setting that is not finite or out of its range, or an unusable device.
    """
    _check_numbers(config)
    resolve_device(config.run.device)  # a malformed name, or CUDA on a machine without it


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string such as adamw or a path


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as TOML, else taken as strings).

    Returns a new nested dictionary; ``values`` is not changed.
    """
    result = _plain(values)
    for override in overrides:
        if "=" not in override:
            raise ValueError(f"override {override!r} must look like section.key=value")
        path, text = override.split("=", 1)
        keys = path.strip().split(".")
        target = result
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ValueError(f"override {override!r}: {key} is not a section")
        target[keys[-1]] = _parse_value(text.strip())
    return result


def load_config(path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a TOML config (or start from defaults if ``path`` is None) and apply overrides.

    Relative data paths in the file are taken relative to the file's folder.
    """
    values: dict[str, Any] = {}
    if path is not None:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
        base = os.path.dirname(os.path.abspath(path))
        data = values.get("data", {})
        for key in ("train", "valid", "test"):
            if isinstance(data.get(key), str) and data[key] and not os.path.isabs(data[key]):
                data[key] = os.path.join(base, data[key])
    return config_from_dict(apply_overrides(values, overrides))
