"""The ASE plugin entry point: registered where ASE has a plugin system, harmless where not."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Makes ASE's private plugin package unimportable, as if a later ASE had moved it.
HIDE_PLUGIN_MODULE = (
    "import sys, importlib.abc\n"
    "class Hide(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'ase._4.plugins' or name.startswith('ase._4.plugins.'):\n"
    "            raise ModuleNotFoundError(name)\n"
    "sys.meta_path.insert(0, Hide())\n"
)


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_registered_as_an_ase_plugin() -> None:
    pytest.importorskip("ase._4.plugins")
    code = (
        "from ase._4.plugins import plugins\n"
        "names = {p.name: p for p in plugins.calculators}\n"
        "print(names['ase_gnn'].implementation.__name__)"
    )
    assert _run(code) == "GNNCalculator"
    info = subprocess.run(
        [sys.executable, "-m", "ase", "info", "--plugins"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ase_gnn" in info.stdout


def test_without_the_plugin_module_nothing_is_registered_and_the_calculator_works() -> None:
    code = HIDE_PLUGIN_MODULE + (
        "import ase_gnn.calculators.plugin as plugin\n"
        "assert plugin.calculator_plugin_class() is None\n"
        "from ase.build import bulk\n"
        "from ase_gnn import GNNCalculator, SchNet\n"
        "atoms = bulk('Cu', cubic=True)\n"
        "atoms.calc = GNNCalculator(SchNet(['Cu'], hidden_channels=8))\n"
        "print(len(plugin.__ase_plugins__), atoms.get_forces().shape)\n"
    )
    assert _run(code) == "0 (4, 3)"


def test_a_plugin_module_without_the_class_counts_as_missing(monkeypatch) -> None:
    import ase_gnn.calculators.plugin as plugin

    monkeypatch.setattr(plugin, "PLUGIN_MODULES", ("ase.calculators.emt", "no.such.module"))
    assert plugin.calculator_plugin_class() is None
