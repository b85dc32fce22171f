"""The ``ase-gnn`` command line (main) and the end-to-end demo."""
