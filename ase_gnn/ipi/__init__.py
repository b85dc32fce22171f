"""Path-integral MD with i-PI: an ase-gnn model as its driver (:mod:`ase_gnn.ipi.driver`)."""

from ase_gnn.ipi.driver import Driver, run_driver

__all__ = ["Driver", "run_driver"]
