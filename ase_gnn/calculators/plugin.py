"""Registers :class:`~ase_gnn.calculators.calculator.GNNCalculator` with ASE's plugin system.

``ase info --plugins`` then lists it.

Loaded through the ``ase.plugins`` entry point. It imports nothing heavy: the calculator class is
named by string and imported only when ASE asks for it.

ASE's plugin classes live in a private, experimental module (``ase._4.plugins.plugin`` since
ASE 3.24). All knowledge of where is in :data:`PLUGIN_MODULES` and :func:`calculator_plugin_class`:
if ASE moves or drops the module, the set is empty, nothing is registered, and the calculator
itself works as before (``tests/ase_gnn/test_ase_plugin.py`` checks both).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

#: Where ASE has kept ``CalculatorPlugin``, newest first.
PLUGIN_MODULES: tuple[str, ...] = ("ase._4.plugins.plugin",)

logger = logging.getLogger(__name__)


def calculator_plugin_class() -> Any | None:
    """ASE's ``CalculatorPlugin`` class, or None on an ASE without a plugin system we know."""
    for name in PLUGIN_MODULES:
        try:
            return importlib.import_module(name).CalculatorPlugin
        except (ImportError, AttributeError):
            continue
    logger.debug("no ASE plugin module among %s: ase_gnn is not registered", PLUGIN_MODULES)
    return None


def _plugins() -> set[Any]:
    plugin = calculator_plugin_class()
    if plugin is None:
        return set()
    return {
        plugin(
            name="ase_gnn",
            citation="ase-gnn: message-passing neural network potentials for ASE",
            implementation="ase_gnn.calculators.calculator.GNNCalculator",
        )
    }


__ase_plugins__: set[Any] = _plugins()
