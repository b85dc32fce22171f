"""``ase-gnn-explain`` end to end: a model and a structure file in, attributions and metrics out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read, write

from ase_gnn import GNNCalculator, save_model
from ase_gnn.testing import tiny_model
from explain.cli import main, parse_target


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain_cli")
    model = tiny_model("SchNet", ["Cu"], cutoff=3.0).double()
    save_model(model, folder / "cu.safetensors")
    atoms = bulk("Cu", cubic=True) * (2, 1, 1)
    atoms.rattle(0.1, seed=2)
    write(folder / "cu.extxyz", atoms)
    return folder, read(folder / "cu.extxyz")  # as the command reads it (8 decimals)


def test_edge_level_energy_attribution_writes_scores_metrics_and_plots(files, tmp_path):
    folder, atoms = files
    out = tmp_path / "out"
    assert main([str(folder / "cu.safetensors"), str(folder / "cu.extxyz"), "--out", str(out)]) == 0
    summary = json.loads((out / "attribution.json").read_text())
    energy = GNNCalculator(str(folder / "cu.safetensors"), dtype="float64").get_potential_energy(
        atoms
    )
    assert summary["method"] == "integrated_gradients" and summary["level"] == "edge"
    assert summary["target_value"] == pytest.approx(energy, rel=1e-10)
    edges = np.loadtxt(out / "edges.csv", delimiter=",", skiprows=1)
    assert edges[:, -1].sum() == pytest.approx(energy - summary["baseline_value"], rel=1e-4)
    np.testing.assert_allclose(edges[:, -1], summary["edge"], rtol=1e-9)
    faithful = summary["faithfulness"]
    assert faithful["curves"]["deletion_auc"] > faithful["curves"]["random_deletion_auc"]
    assert faithful["fidelity"]["k"] == 10 and 0 <= faithful["sparsity"] <= 1
    for name in ("atoms.csv", "structure.png", "curves.png"):
        assert (out / name).stat().st_size > 0


def test_triplet_level_writes_interactions_next_to_the_exact_three_body_terms(files, tmp_path):
    folder, _ = files
    out = tmp_path / "out"
    argv = [str(folder / "cu.safetensors"), str(folder / "cu.extxyz"), "--level", "triplet",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    triplets = np.loadtxt(out / "triplets.csv", delimiter=",", skiprows=1)
    expansion = json.loads((out / "many_body" / "many_body.json").read_text())
    np.testing.assert_allclose(triplets[:, -1], expansion["triplets"]["energy"], rtol=1e-9)
    assert np.corrcoef(triplets[:, -2], triplets[:, -1])[0, 1] > 0.5
    assert json.loads((out / "attribution.json").read_text())["method"] == "integrated_hessians"
    assert (out / "many_body" / "many_body.png").stat().st_size > 0


def test_force_target_and_the_installed_command(files, tmp_path):
    folder, atoms = files
    out = tmp_path / "out"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ase-gnn-explain"), str(folder / "cu.safetensors"),
         str(folder / "cu.extxyz"), "--target", "force:3,z", "--level", "atom", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "attribution.json").read_text())
    force = GNNCalculator(str(folder / "cu.safetensors"), dtype="float64").get_forces(atoms)
    assert summary["target_value"] == pytest.approx(force[3, 2], abs=1e-10)
    assert not (out / "edges.csv").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "magic"], "unknown method 'magic'"),
        (["--target", "force:1"], "unknown target 'force:1'"),
        (["--level", "triplet", "--method", "saliency"], "needs Integrated Hessians"),
    ],
)
def test_bad_arguments_are_one_line_errors(files, tmp_path, capsys, argv, message):
    folder, _ = files
    base = [str(folder / "cu.safetensors"), str(folder / "cu.extxyz"), "--out", str(tmp_path)]
    assert main(base + argv) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_targets_parse_as_documented():
    assert parse_target("force:2,y").direction == 1 and parse_target("force:2,2").atom == 2
    assert (parse_target("stress:0,1").i, parse_target("stress:0,1").j) == (0, 1)
    assert parse_target("local:4").atom == 4 and parse_target("energy").name == "energy"


def test_a_trajectory_gets_a_folder_per_frame_and_one_chemiscope_viewer(files, tmp_path):
    pytest.importorskip("chemiscope")
    folder, atoms = files
    frames = [atoms.copy() for _ in range(3)]
    for seed, frame in enumerate(frames):
        frame.rattle(0.05, seed=seed)
    write(tmp_path / "md.extxyz", frames)
    out = tmp_path / "out"
    argv = [str(folder / "cu.safetensors"), str(tmp_path / "md.extxyz"), "--index", ":",
            "--many-body", "--chemiscope", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    page = (out / "viewer.html").read_text()
    start = page.index('id="chemiscope-data">') + len('id="chemiscope-data">')
    data = json.loads(page[start : page.index("</script>", start)])
    assert len(data["structures"]) == 3
    for n in range(3):
        scores = np.loadtxt(out / f"frame_{n:03d}" / "atoms.csv", delimiter=",", skiprows=1,
                            usecols=5)  # fmt: skip
        np.testing.assert_allclose(data["properties"]["score"]["values"][8 * n : 8 * n + 8],
                                   scores, rtol=1e-8)  # fmt: skip
    assert set(data["shapes"]) == {"bonds", "triplets"}
