"""Distribution-level contracts: package locations, one-way imports, no side effects at import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import explain

ROOT = Path(__file__).resolve().parents[2]


def test_explain_is_this_distributions_package_not_the_unrelated_pypi_one() -> None:
    assert Path(explain.__file__).resolve().is_relative_to(ROOT / "explain")


def test_ase_gnn_never_imports_explain_or_captum() -> None:
    offenders = [
        f"{path.name}: {module}"
        for path in (ROOT / "ase_gnn").rglob("*.py")
        for module, _ in _imports(path)
        if module.split(".")[0] in {"explain", "captum"}
    ]
    assert offenders == []


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import statement in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def test_explain_uses_only_the_public_api_of_ase_gnn() -> None:
    import ase_gnn

    offenders = []
    for path in (ROOT / "explain").rglob("*.py"):
        for module, names in _imports(path):
            if module.startswith("ase_gnn."):
                offenders.append(f"{path.name}: imports {module}")
            elif module == "ase_gnn":
                offenders += [f"{path.name}: {n}" for n in names if n not in ase_gnn.__all__]
    assert offenders == []


def test_importing_ase_gnn_changes_no_global_state() -> None:
    code = (
        "import os, sys, torch\n"
        "from ase.calculators.calculator import BaseCalculator\n"
        "env, dtype = dict(os.environ), torch.get_default_dtype()\n"
        "props = list(BaseCalculator.implemented_properties)\n"
        "import ase_gnn, ase_gnn.testing\n"
        "assert dict(os.environ) == env, 'environment changed'\n"
        "assert torch.get_default_dtype() == dtype, 'default dtype changed'\n"
        "assert BaseCalculator.implemented_properties == props, 'ASE patched'\n"
        "assert 'captum' not in sys.modules and 'explain' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ase_gnn", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("generate", "train", "md", "demo"):
        assert command in out.stdout
