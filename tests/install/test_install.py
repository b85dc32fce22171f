"""ase-gnn as users install it: a built wheel in a fresh venv, and the declared minimum versions.

Both run ``install_smoke.py`` in a subprocess from outside the source tree. They are slow (a
wheel build, package installs) and run in CI.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = Path(__file__).with_name("install_smoke.py")
CONSTRAINTS = ROOT / "constraints.txt"
#: Installed only as the version constraints.txt pins, so its floor cannot be tried here.
PINNED = {"torch"}

pytestmark = pytest.mark.slow


def _pip(python: Path | str, *args: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS), *args],
        check=True,
    )


def declared_floors() -> dict[str, str]:
    """``{name: minimum version}`` of every core dependency in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)", requirement)
        assert match, f"dependency {requirement!r} has no plain '>=' floor"
        floors[match[1].lower()] = match[2]
    return floors


def test_declared_dependency_floors_work(tmp_path: Path) -> None:
    """The oldest versions pyproject.toml allows import and pass the physics battery.

    Each floor ``name>=X.Y`` is installed as the newest ``X.Y.*`` release (bug-fix releases of the
    declared minor version) into a folder that shadows the test environment's copies.
    """
    floors = {name: v for name, v in declared_floors().items() if name not in PINNED}
    target = tmp_path / "floors"
    _pip(
        sys.executable,
        "--no-deps",
        "--target",
        str(target),
        *(f"{name}=={version}.*" for name, version in floors.items()),
    )
    installed = {
        dist.metadata["Name"].lower(): dist.version
        for dist in importlib.metadata.distributions(path=[str(target)])
    }
    for name, version in floors.items():
        assert installed[name].startswith(f"{version}."), (name, installed[name])
    expected = [f"{name}=={installed[name]}" for name in floors]
    subprocess.run(
        [sys.executable, str(SMOKE), *(f"--expect-version={pin}" for pin in expected)],
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )


def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path: Path) -> None:
    """``python -m build`` makes a wheel and an sdist; the wheel works in a fresh venv."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("ase_gnn-*.whl"))
    assert next(dist.glob("ase_gnn-*.tar.gz"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _pip(python, "torch==2.13.0")
    _pip(python, str(wheel))
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        [str(python), str(SMOKE), f"--expect-prefix={site}", "--scripts"],
        check=True,
        cwd=tmp_path,
        env={"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
