"""Training checkpoints: one file written by ``torch.save`` and read with ``weights_only=True``.

A checkpoint holds everything needed to continue a run bit for bit: model weights, the optimiser
state (moments, step counts), the weight average (EMA), the learning-rate schedule, the run's own
random-number generator state, the epoch and the history so far, and the model's config (so a
resume with another cutoff or other layer sizes is refused by name, not by a shape error deep in
``load_state_dict``).

``torch.load(weights_only=True)`` rebuilds only tensors and plain containers (dicts, lists,
numbers, strings), never arbitrary objects, so reading a checkpoint is as safe as reading a
safetensors file, and the nested optimiser and scheduler states need no flattening. Files are
written to a temporary name and renamed, so a crash (even ``SIGKILL``) never leaves a truncated
checkpoint.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FORMAT = "ase-gnn-checkpoint"
CHECKPOINT_VERSION = 2


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """Atomically write a checkpoint.

    Parameters
    ----------
    path
        Destination file.
    state
        Tensors, state dicts and JSON-like values (``{"model": model.state_dict(), ...}``).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, tensors on the CPU.

    Raises
    ------
    ValueError
        If the file is unreadable, not an ase-gnn checkpoint, or of another version (version 1
        files, safetensors written before 0.2, are refused: start the run again).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise ValueError(f"{path} is not a readable ase-gnn checkpoint: {error}") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an ase-gnn checkpoint")
    if state.get("format_version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path} has checkpoint version {state.get('format_version')!r}; this ase-gnn "
            f"resumes from version {CHECKPOINT_VERSION} only: start the run again"
        )
    return state


def check_same_model(
    path: str | os.PathLike[str], saved: Mapping[str, Any], current: Mapping[str, Any]
) -> None:
    """``ValueError`` naming every model setting that differs between a checkpoint and the run.

    Parameters
    ----------
    path
        The checkpoint (for the message).
    saved, current
        ``EnergyModel.config()`` plus ``architecture`` of the checkpoint's model and the run's.
    """
    differences = [
        f"{key}: {saved.get(key)!r} in the checkpoint, {current.get(key)!r} now"
        for key in sorted(set(saved) | set(current))
        if saved.get(key) != current.get(key)
    ]
    if differences:
        raise ValueError(
            f"cannot resume from {path}: the model differs ({'; '.join(differences)}); "
            "use another run.out_dir or drop --resume"
        )
