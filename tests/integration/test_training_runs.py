"""Whole training runs in subprocesses: exact resume after SIGKILL, and 2-process DDP."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ase_gnn.data.generate import generate_emt, write_dataset

pytestmark = pytest.mark.slow

CONFIG = """
[model]
cutoff = 4.0
[model.hyperparameters]
hidden_channels = 16
num_interactions = 2
[data]
train = "cu.extxyz"
valid_fraction = 0.125  # 42 training structures: the last batch of 2 splits over 2 ranks
test_fraction = 0.0
[run]
epochs = {epochs}
batch_size = 4
dtype = "float64"
progress = false
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    write_dataset(generate_emt("Cu", 48, seed=7, progress=False), folder / "cu.extxyz")
    return folder


def _env() -> dict[str, str]:
    # one thread: CPU kernels are then deterministic run to run, the basis of "bit-identical"
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(workdir: Path, out: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ase_gnn",
        "train",
        str(workdir / "config.toml"),
        "--set",
        f"run.out_dir='{workdir / out}'",
        *extra,
    ]


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path) as handle:
        return list(csv.DictReader(handle))


def _without_time(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_resume_after_sigkill_reaches_bit_identical_weights(workdir: Path) -> None:
    (workdir / "config.toml").write_text(CONFIG.format(epochs=6))
    subprocess.run(_train(workdir, "straight"), env=_env(), check=True, capture_output=True)

    process = subprocess.Popen(
        _train(workdir, "killed"), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    metrics = workdir / "killed" / "metrics.csv"
    deadline = time.monotonic() + 300
    while len(_rows(metrics)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    first, second = (float(r["seconds"]) for r in _rows(metrics)[:2])
    time.sleep(0.4 * (second - first))  # well inside the third epoch
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert len(_rows(metrics)) < 6, "the run finished before it could be killed"

    subprocess.run(
        _train(workdir, "killed", "--resume"), env=_env(), check=True, capture_output=True
    )
    straight, resumed = (
        load_file(str(workdir / d / "model.safetensors")) for d in ("straight", "killed")
    )
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    assert _without_time(_rows(workdir / "straight" / "metrics.csv")) == _without_time(
        _rows(metrics)
    )


HEADS = """
[[heads]]
name = "energies"
level = "node"
[[heads]]
name = "config_type"
level = "graph"
task = "classification"
classes = ["bulk", "strained", "md", "vacancy", "surface"]
"""


@pytest.mark.parametrize("heads", [False, True], ids=["energy", "energy+heads"])
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(
    workdir: Path, heads: bool
) -> None:
    (workdir / "config.toml").write_text(CONFIG.format(epochs=3) + (HEADS if heads else ""))
    subprocess.run(_train(workdir, "single"), env=_env(), check=True, capture_output=True)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "ase_gnn",
        "train",
        str(workdir / "config.toml"),
        "--set",
        f"run.out_dir='{workdir / 'ddp'}'",
    ]
    result = subprocess.run(torchrun, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    single, parallel = (
        load_file(str(workdir / d / "model.safetensors")) for d in ("single", "ddp")
    )
    # Summation order differs (gradients averaged over ranks); Adam turns the last-digit noise
    # of gradients of parameters near zero into differences of order 1e-10 after three epochs.
    for name in single:
        torch.testing.assert_close(parallel[name], single[name], rtol=1e-9, atol=1e-9, msg=name)
    rows_single, rows_ddp = (
        _rows(workdir / "single" / "metrics.csv"),
        _rows(workdir / "ddp" / "metrics.csv"),
    )
    assert len(rows_single) == len(rows_ddp) == 3
    for a, b in zip(rows_single, rows_ddp):
        assert float(a["valid_forces_mae"]) == pytest.approx(float(b["valid_forces_mae"]), rel=1e-8)
        if heads:
            for key in ("valid_energies_mae", "valid_config_type_accuracy", "train_loss"):
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-8), key
    # only rank 0 wrote files: one model, one metrics file, no per-rank leftovers
    assert sorted(p.name for p in (workdir / "ddp").iterdir()) == sorted(
        p.name for p in (workdir / "single").iterdir()
    )
