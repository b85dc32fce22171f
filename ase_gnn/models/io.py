"""Model files: one ``.safetensors`` file, weights plus a JSON metadata header. No pickle anywhere.

Header metadata (all values are strings, as safetensors requires):

``format``          ``"ase-gnn-model"``
``format_version``  ``"2"`` (version 1, still read, lacks the heads' ``class``)
``architecture``    a name from :data:`ase_gnn.models.ARCHITECTURES` (the allow-list)
``config``          JSON of the constructor arguments (species, cutoff, readout, sizes, ...)
``atomic_energies`` JSON ``{symbol: E0 in eV}`` (also a tensor; this copy is for readers)
``units``           JSON ``{"energy": "eV", "length": "Angstrom"}``
``dtype``           dtype the weights were saved in
``versions``        JSON of ase-gnn, torch, e3nn, ase versions
``training_config`` (optional) JSON of the resolved training configuration
``heads``           (optional) JSON list of the output heads' configs (:mod:`ase_gnn.models.heads`),
                    class names of classifiers included; their weights are ``heads.<name>.*``.
                    Each names its head's ``class``, a key of :data:`ase_gnn.models.heads.HEADS`; a
                    head of format version 1 names only its ``level`` and is built-in.

Files of every version ever written are kept as fixtures in ``tests/ase_gnn/model_files``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from ase_gnn.models.base import ARCHITECTURES, EnergyModel
from ase_gnn.models.heads import Head, build_head

FORMAT = "ase-gnn-model"
FORMAT_VERSION = "2"
SUPPORTED_VERSIONS = ("1", "2")
UNITS = {"energy": "eV", "length": "Angstrom"}
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("ase-gnn", "torch", "e3nn", "ase"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found


def save_model(
    model: EnergyModel,
    path: str | os.PathLike[str],
    training_config: dict[str, Any] | None = None,
) -> None:
    """Write ``model`` to a safetensors file with its config in the metadata header.

    The file is written to a temporary name and renamed, so an interrupted save never leaves a
    truncated model file behind.

    Parameters
    ----------
    model
        Any registered architecture.
    path
        Destination, conventionally ``*.safetensors``.
    training_config
        The resolved training configuration, stored as JSON under ``training_config``.
    """
    if model.architecture not in ARCHITECTURES:
        raise ValueError(f"architecture {model.architecture!r} is not registered")
    dtype = check_model_dtype(model)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture,
        "config": json.dumps(model.config()),
        "atomic_energies": json.dumps(
            dict(zip(model.species_symbols, model.atomic_energies.tolist()))
        ),
        "units": json.dumps(UNITS),
        "dtype": _dtype_name(dtype),
        "versions": json.dumps(_versions()),
    }
    if training_config is not None:
        metadata["training_config"] = json.dumps(training_config)
    if len(model.heads):
        heads = [head.config() for head in model.heads.values() if isinstance(head, Head)]
        metadata["heads"] = json.dumps(heads)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a model file's header without building the model.

    Returns
    -------
    dict
        The metadata with JSON fields decoded.

    Raises
    ------
    ValueError
        If the file is not an ase-gnn safetensors model (pickle, ``torch.save`` archive, truncated
        or corrupt file), or has an unknown format version or architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    with open(path, "rb") as handle:
        head = handle.read(9)
    # A safetensors file starts with its JSON header's length (u64, little endian), then "{".
    # That length can itself begin with the bytes of a pickle (0x80) or zip ("PK") signature,
    # so those are only looked for in files that do not have this layout.
    header_length = int.from_bytes(head[:8], "little")
    is_safetensors = head[8:9] == b"{" and header_length <= path.stat().st_size - 8
    if not is_safetensors and head[:2] == b"PK":
        raise ValueError(
            f"{path} is a zip archive (a torch.save / TorchScript file), not an ase-gnn "
            "safetensors model; such files can run code when loaded and are refused"
        )
    if not is_safetensors and head[:1] == b"\x80":
        raise ValueError(f"{path} is a pickle file, not an ase-gnn safetensors model; refused")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path} is not a readable safetensors model file: {error}") from error
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"{path} is a safetensors file but not an ase-gnn model "
            f"(format={metadata.get('format')!r}, expected {FORMAT!r})"
        )
    if metadata.get("format_version") not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"{path} has model format version {metadata.get('format_version')!r}; this ase-gnn "
            f"reads versions {SUPPORTED_VERSIONS}. Upgrade ase-gnn to load it."
        )
    if metadata.get("architecture") not in ARCHITECTURES:
        raise ValueError(
            f"{path} names architecture {metadata.get('architecture')!r}, which is not one of the "
            f"known architectures {sorted(ARCHITECTURES)}"
        )
    decoded: dict[str, Any] = dict(metadata)
    try:
        for key in ("config", "atomic_energies", "units", "versions"):
            decoded[key] = json.loads(metadata[key])
        for key in ("training_config", "heads"):
            if key in metadata:
                decoded[key] = json.loads(metadata[key])
    except (KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} has a corrupt metadata header: {error}") from error
    if not isinstance(decoded["config"], dict) or not isinstance(decoded["atomic_energies"], dict):
        raise ValueError(
            f"{path} has a corrupt metadata header: config and atomic_energies must be JSON objects"
        )
    if not isinstance(decoded["config"].get("species"), list):
        raise ValueError(f"{path} has a corrupt metadata header: config.species must be a list")
    return decoded


def load_model(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
) -> EnergyModel:
    """Load a model saved by :func:`save_model`. Nothing is unpickled.

    Parameters
    ----------
    path
        The ``.safetensors`` model file.
    device
        Device to put the model on.
    dtype
        ``torch.float32`` / ``torch.float64`` (or their names); the saved dtype if None.

    Returns
    -------
    EnergyModel
        The model, in eval mode.

    Raises
    ------
    ValueError
        For files that are not ase-gnn models or whose weights do not match the header: every
        tensor must exist in the model the config builds, with its shape and the header's dtype,
        and hold finite values; the reference energies must equal the header's copy.
    """
    device = resolve_device(device)
    metadata = read_metadata(path)
    saved_dtype = _DTYPES.get(metadata["dtype"])
    if saved_dtype is None:
        raise ValueError(f"{path} has unsupported weight dtype {metadata['dtype']!r}")
    try:
        model = ARCHITECTURES[metadata["architecture"]](**metadata["config"])
        for head in metadata.get("heads", []):
            model.add_head(build_head(head))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} has an invalid model config: {error}") from error
    model = model.to(saved_dtype)  # load weights at full saved precision before any cast
    state = _read_weights(path, model.state_dict(), metadata["dtype"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:  # pragma: no cover - _read_weights checks names and shapes
        raise ValueError(f"{path}: weights do not match the stored config: {error}") from error
    _check_reference_energies(path, model, metadata["atomic_energies"])
    target = resolve_dtype(dtype) if dtype is not None else saved_dtype
    return model.to(device=device, dtype=target).eval()


def _read_weights(
    path: str | os.PathLike[str], expected: Mapping[str, Tensor], header_dtype: str
) -> dict[str, Tensor]:
    """The file's tensors, each checked against ``expected`` (the state the config builds).

    ``load_state_dict`` would cast an integer, boolean or float16 tensor into a float32 buffer
    without a word (E0 = 1e9 eV from an int64 tensor): names, dtypes, shapes and finiteness are
    checked here, with a ``ValueError`` that names the tensor.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except SafetensorError as error:
        raise ValueError(f"{path} is not a readable safetensors model file: {error}") from error
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing:
        raise ValueError(f"{path} lacks tensor(s) {missing} that the model its config builds has")
    if unexpected:
        raise ValueError(
            f"{path} has unexpected tensor(s) {unexpected} that the model its config builds lacks"
        )
    for key, tensor in state.items():
        want = expected[key]
        if tensor.dtype != want.dtype:
            raise ValueError(
                f"{path}: tensor {key!r} is {_dtype_name(tensor.dtype)}, but the header says the "
                f"weights are {header_dtype} (the model needs {_dtype_name(want.dtype)})"
            )
        if tensor.shape != want.shape:
            raise ValueError(
                f"{path}: tensor {key!r} has shape {tuple(tensor.shape)}; the model its config "
                f"builds needs {tuple(want.shape)}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"{path}: tensor {key!r} has non-finite values (NaN or inf); the file is corrupt "
                "or was saved from a diverged training run"
            )
    return state


def _check_reference_energies(
    path: str | os.PathLike[str], model: EnergyModel, header: Mapping[str, Any]
) -> None:
    """``ValueError`` unless the E0 tensor equals the header's ``{symbol: E0}`` copy."""
    symbols = model.species_symbols
    if sorted(header) != sorted(symbols):
        raise ValueError(
            f"{path}: the header lists E0 for {sorted(header)}, the model's species are {symbols}"
        )
    for symbol, value in zip(symbols, model.atomic_energies.tolist()):
        stored = header[symbol]
        if not isinstance(stored, (int, float)) or not math.isclose(
            value, stored, rel_tol=1e-6, abs_tol=1e-9
        ):
            raise ValueError(
                f"{path}: E0 of {symbol!r} is {value} eV in the weights but {stored!r} in the "
                "header; the file has been edited or is corrupt"
            )


def check_model_dtype(model: nn.Module) -> torch.dtype:
    """The float dtype of ``model``, which must be float32 or float64 throughout.

    Half precision (``model.half()``, ``model.bfloat16()``) is refused: float16 cannot hold
    total energies of hundreds of eV to the meV, and torch's neighbor and autograd code fails
    on it deep inside. Calculators and :func:`save_model` call this.

    Returns
    -------
    torch.dtype
        ``torch.float32`` or ``torch.float64``, the dtype of every float parameter and buffer.

    Raises
    ------
    ValueError
        Naming the first tensor of another float dtype, or of a second one.
    """
    found: dict[torch.dtype, str] = {}
    for name, tensor in itertools.chain(model.named_parameters(), model.named_buffers()):
        if tensor.is_floating_point():
            found.setdefault(tensor.dtype, name)
    for dtype, name in found.items():
        if dtype not in _DTYPES.values():
            raise ValueError(
                f"the model's tensor {name!r} is {_dtype_name(dtype)}; ase-gnn evaluates and saves "
                "models in float32 or float64 only: convert with model.float() or model.double()"
            )
    if len(found) > 1:
        raise ValueError(
            f"the model mixes float32 and float64 tensors ({found[torch.float32]!r} is float32, "
            f"{found[torch.float64]!r} float64): convert with model.float() or model.double()"
        )
    return next(iter(found), torch.float32)


def _dtype_name(dtype: torch.dtype) -> str:
    """``"float32"`` for ``torch.float32``."""
    return str(dtype).removeprefix("torch.")


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, or ``ValueError`` for a malformed name or an absent accelerator.

    Torch itself fails late and unclearly (an ``AssertionError`` "Torch not compiled with CUDA
    enabled" at the first tensor); this fails where the device is chosen.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}: {error}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but this torch has no usable CUDA")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} was requested but only {torch.cuda.device_count()} GPUs are visible"
        )
    return resolved


def resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """Accept ``torch.float32``/``torch.float64`` or ``"float32"``/``"float64"``."""
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
