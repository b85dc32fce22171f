"""Static checks stay clean: mypy --strict (STYLE: strict typing from day one) and ruff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "mypy"],
        [str(BIN / "ruff"), "check", "ase_gnn", "explain", "tests", "bench"],
        [str(BIN / "ruff"), "format", "--check", "ase_gnn", "explain", "tests", "bench"],
    ],
    ids=["mypy", "ruff-check", "ruff-format"],
)
def test_static_check_passes(command: list[str]) -> None:
    tool = command[2] if command[0] == sys.executable else command[0]
    if tool != "mypy" and not Path(tool).exists():
        pytest.skip(f"{tool} is not installed beside this interpreter")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
