"""Registers :class:`~ase_gnn.calculator.GNNCalculator` with ASE's plugin system.

``ase info --plugins`` then lists it.

Loaded through the ``ase.plugins`` entry point. It imports nothing heavy: the calculator class is
named by string and imported only when ASE asks for it. On an ASE without the (experimental)
plugin module the set is empty and nothing is registered.
"""

from __future__ import annotations

try:
    from ase._4.plugins.plugin import CalculatorPlugin
except ImportError:  # ASE without the plugin system
    __ase_plugins__: set[object] = set()
else:
    __ase_plugins__ = {
        CalculatorPlugin(
            name="ase_gnn",
            citation="ase-gnn: message-passing neural network potentials for ASE",
            implementation="ase_gnn.calculator.GNNCalculator",
        )
    }
