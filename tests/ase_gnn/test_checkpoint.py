"""Checkpoints: read with torch.load(weights_only=True) (nothing but tensors and containers is
ever built), and a resume with another model is refused by name (issue 15, items 16 and part 2)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from ase import Atoms

from ase_gnn.data.generate import generate_emt
from ase_gnn.testing import tiny_model
from ase_gnn.training import Trainer, config_from_dict
from ase_gnn.training.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def crystals() -> list[Atoms]:
    return generate_emt("Cu", 6, seed=1, progress=False)


def _trainer(out_dir: Path, epochs: int, **model_arguments) -> Trainer:
    config = config_from_dict(
        {
            "data": {"train": "unused"},
            "model": {"cutoff": model_arguments.get("cutoff", 4.0)},
            "run": {"epochs": epochs, "batch_size": 2, "out_dir": str(out_dir)},
        }
    )
    return Trainer(tiny_model("SchNet", ["Cu"], **model_arguments), config)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"cutoff": 3.5}, "cutoff: 4.0 in the checkpoint, 3.5 now"),
        ({"hidden_channels": 12}, "hidden_channels"),
    ],
)
def test_resume_with_another_model_is_refused_by_name(tmp_path, crystals, arguments, named) -> None:
    _trainer(tmp_path, 1).fit(crystals[:4], crystals[4:])
    with pytest.raises(ValueError, match=f"cannot resume .*{named}"):
        _trainer(tmp_path, 2, **arguments).fit(crystals[:4], crystals[4:], resume=True)


def test_resume_continues_the_same_model(tmp_path, crystals) -> None:
    _trainer(tmp_path, 1).fit(crystals[:4], crystals[4:])
    history = _trainer(tmp_path, 2).fit(crystals[:4], crystals[4:], resume=True)
    assert len(history.rows) == 2


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as handle:
        evil = {"format": "ase-gnn-checkpoint", "format_version": 2, "x": Payload()}
        pickle.dump(evil, handle, protocol=2)
    with pytest.raises(ValueError, match="not a readable ase-gnn checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_other_files_and_versions_are_refused(tmp_path) -> None:
    path = tmp_path / "other.ckpt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not an ase-gnn checkpoint"):
        load_checkpoint(path)
    save_checkpoint(path, {"epoch": 3})
    assert load_checkpoint(path)["epoch"] == 3
    torch.save({"format": "ase-gnn-checkpoint", "format_version": 1}, path)
    with pytest.raises(ValueError, match="version 1.*start the run again"):
        load_checkpoint(path)
