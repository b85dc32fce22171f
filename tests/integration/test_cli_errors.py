"""``ase-gnn`` turns user errors into one line and exit code 2, never a traceback (issue 15,
item 16); argument values that cannot work are refused by the parser."""

from __future__ import annotations

from pathlib import Path

import ase.io
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from ase_gnn import SchNet, save_model
from ase_gnn.cli.main import main


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    structures = []
    for k in range(4):
        atoms = bulk("Cu", cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(
            atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces()
        )
        structures.append(atoms)
    data = root / "cu.extxyz"
    ase.io.write(data, structures)
    model = root / "model.safetensors"
    save_model(SchNet(["Cu"], cutoff=3.0, hidden_channels=8, num_interactions=1), model)
    garbage = root / "garbage.xyz"
    garbage.write_text("not a structure\n1 2 3\n")
    blocker = root / "a_file"
    blocker.write_text("x")
    return {"root": root, "data": data, "model": model, "garbage": garbage, "file": blocker}


def _fails_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str], expected: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ase-gnn: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    assert expected in err, err


def test_type_error_in_toml(files, capsys) -> None:
    config = files["root"] / "typed.toml"
    config.write_text(f'[data]\ntrain = "{files["data"]}"\n[run]\nepochs = "ten"\n')
    _fails_in_one_line(["train", str(config)], capsys, "epochs must be int")


def test_config_path_is_a_folder(files, capsys) -> None:
    _fails_in_one_line(["train", str(files["root"])], capsys, str(files["root"]))


def test_output_folder_is_a_file(files, capsys) -> None:
    argv = ["evaluate", str(files["model"]), str(files["data"]), "--out", str(files["file"])]
    _fails_in_one_line(argv, capsys, "a_file")


def test_training_output_folder_is_a_file(files, capsys) -> None:
    argv = [
        "train",
        "--set",
        f"data.train='{files['data']}'",
        "--set",
        f"run.out_dir='{files['file']}'",
        "--set",
        "run.epochs=1",
        "--set",
        "model.hyperparameters={hidden_channels=8, num_interactions=1}",
    ]
    _fails_in_one_line(argv, capsys, "a_file")


def test_unreadable_structure_file(files, capsys) -> None:
    _fails_in_one_line(
        ["diagnose", str(files["garbage"]), "--cutoff", "3"], capsys, "cannot read structures"
    )
    _fails_in_one_line(
        ["md", str(files["model"]), "--structure", str(files["garbage"])], capsys, "garbage.xyz"
    )


def test_index_out_of_range(files, capsys) -> None:
    argv = ["diagnose", str(files["data"]), "--index", "7", "--cutoff", "3"]
    _fails_in_one_line(argv, capsys, "has no frame '7'")


def test_model_file_that_is_not_a_model(files, capsys) -> None:
    _fails_in_one_line(["md", str(files["data"]), "--steps", "2"], capsys, "cu.extxyz")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_requested_without_cuda(files, capsys) -> None:
    argv = ["train", "--set", f"data.train='{files['data']}'", "--set", "run.device='cuda'"]
    _fails_in_one_line(argv, capsys, "no usable CUDA")


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--committee", "0"],
        ["md", "model.safetensors", "--steps", "0"],
        ["md", "model.safetensors", "--steps", "-5"],
        ["md", "model.safetensors", "--timestep", "-1"],
        ["md", "model.safetensors", "--timestep", "nan"],
        ["md", "model.safetensors", "--temperature", "-10"],
        ["md", "model.safetensors", "--interval", "0"],
        ["generate", "emt", "--structures", "0", "--out", "x.extxyz"],
        ["diagnose", "x.xyz", "--cutoff", "0"],
    ],
)
def test_impossible_argument_values_are_refused_by_the_parser(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "must be" in capsys.readouterr().err


def test_md_without_two_frames_prints_no_drift(files, capsys) -> None:
    argv = ["md", str(files["model"]), "--repeat", "1", "--steps", "3", "--interval", "10"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "drift n/a (fewer than two frames)" in out


def test_traceback_flag_shows_the_error_itself(files) -> None:
    with pytest.raises(ValueError, match="has no frame"):
        main(["--traceback", "diagnose", str(files["data"]), "--index", "9", "--cutoff", "3"])
