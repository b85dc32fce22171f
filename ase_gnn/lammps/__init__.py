"""Running ase-gnn models inside LAMMPS, split over MPI ranks (see :mod:`ase_gnn.lammps.halo`)."""

from ase_gnn.lammps.fix import ModelFix, attach
from ase_gnn.lammps.halo import Halo, SplitPrediction, halo_graph, predict_split
from ase_gnn.lammps.script import run_script

__all__ = [
    "Halo",
    "ModelFix",
    "attach",
    "SplitPrediction",
    "halo_graph",
    "predict_split",
    "run_script",
]
