"""Training checkpoints: safetensors for tensors, JSON metadata for the rest. No pickle.

A checkpoint holds everything needed to continue a run bit for bit: model weights, the optimiser
state (moments, step counts), the weight average (EMA), the learning-rate schedule, the
run's own random-number generator state, the epoch and the history so far. Files are written to a
temporary name and renamed, so a crash (even ``SIGKILL``) never leaves a truncated checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

CHECKPOINT_FORMAT = "ase-gnn-checkpoint"
CHECKPOINT_VERSION = "1"


def flatten_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (by flat key) and a JSON-able remainder."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"{param_id}/{name}"] = value
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer_state`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        param_id, name = key.split("/", 1)
        state.setdefault(int(param_id), {})[name] = value
    for param_id, values in rest["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": rest["param_groups"]}


def save_checkpoint(
    path: str | os.PathLike[str], tensors: dict[str, dict[str, Tensor]], metadata: dict[str, Any]
) -> None:
    """Atomically write groups of tensors and JSON metadata to ``path``.

    Parameters
    ----------
    path
        Destination file.
    tensors
        ``{group: {name: tensor}}``, e.g. ``{"model": model.state_dict(), ...}``.
    metadata
        JSON-serialisable values (epoch, history, scheduler state, ...).
    """
    flat = {
        f"{group}::{name}": value.detach().cpu().contiguous().clone()
        for group, values in tensors.items()
        for name, value in values.items()
    }
    header = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "metadata": json.dumps(metadata),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(flat, str(tmp), metadata=header)
    os.replace(tmp, path)


def load_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    tensors, metadata
        Tensor groups and the decoded metadata.

    Raises
    ------
    ValueError
        If the file is not an ase-gnn checkpoint of a known version.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            flat = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{path} is not a readable checkpoint: {error}") from error
    if header.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an ase-gnn checkpoint")
    if header.get("format_version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path} has checkpoint version {header.get('format_version')!r}; "
            f"this ase-gnn reads version {CHECKPOINT_VERSION}"
        )
    tensors: dict[str, dict[str, Tensor]] = {}
    for key, value in flat.items():
        group, name = key.split("::", 1)
        tensors.setdefault(group, {})[name] = value
    return tensors, json.loads(header["metadata"])


def rng_state(generator: torch.Generator) -> dict[str, Tensor]:
    """State of a run's own ``generator`` (never the global one), as a checkpoint tensor group."""
    return {"torch": generator.get_state()}


def set_rng_state(generator: torch.Generator, states: dict[str, Tensor]) -> None:
    """Restore ``generator`` from :func:`rng_state`; the global generators are left alone.

    Checkpoints written before runs had their own generator hold the global CPU state under
    the same key (and CUDA states, which are ignored); it is read into ``generator``.
    """
    generator.set_state(states["torch"])
