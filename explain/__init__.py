"""explain: attributions on atoms and bonds for ase-gnn models (through Captum).

Placeholder package for now; it ships in the same ``ase-gnn`` distribution as ``ase_gnn`` (an
unrelated PyPI package is also called ``explain``). It imports only ``ase_gnn``'s public API.
"""
