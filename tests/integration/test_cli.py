"""The command line end to end on small data: generate → train → md, and the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ase_gnn import load_model
from ase_gnn.cli.demo import run_demo
from ase_gnn.cli.main import main


def test_generate_train_md_round_trip(tmp_path: Path, capsys) -> None:
    data = tmp_path / "cu.extxyz"
    assert main(["generate", "emt", "--structures", "12", "--out", str(data)]) == 0
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--set",
                f"data.train='{data}'",
                "--set",
                f"run.out_dir='{run}'",
                "--set",
                "run.epochs=2",
                "--set",
                "model.cutoff=4.0",
                "--set",
                "model.hyperparameters={hidden_channels=8, num_interactions=1}",
            ]
        )
        == 0
    )
    model_path = run / "model.safetensors"
    model = load_model(model_path)
    assert model.species_symbols == ["Cu"] and model.cutoff == 4.0
    trajectory = tmp_path / "md.extxyz"
    assert (
        main(
            [
                "md",
                str(model_path),
                "--repeat",
                "2",
                "--steps",
                "4",
                "--interval",
                "2",
                "--out",
                str(trajectory),
            ]
        )
        == 0
    )
    assert trajectory.exists()
    assert "drift" in capsys.readouterr().out
    assert main(["evaluate", str(model_path), str(data), "--out", str(tmp_path / "eval")]) == 0
    assert "F MAE" in capsys.readouterr().out
    assert (tmp_path / "eval" / "parity_cu.png").stat().st_size > 0


def test_bad_model_file_is_a_clean_cli_error(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04junk")
    assert main(["md", str(bad)]) == 2
    assert "pickle" in capsys.readouterr().err


def test_console_script_lists_its_commands() -> None:
    executable = Path(sys.executable).with_name("ase-gnn")
    if not executable.exists():
        pytest.skip("console script not installed beside this interpreter")
    out = subprocess.run([executable, "--help"], capture_output=True, text=True, check=True)
    commands = ("generate", "train", "evaluate", "md", "demo", "embed", "cluster", "anomaly")
    for command in (*commands, "diagnose"):
        assert command in out.stdout


def test_demo_runs_end_to_end_and_beats_a_constant_model(tmp_path: Path) -> None:
    summary = run_demo(
        tmp_path,
        num_structures=40,
        train_seconds=15,
        md_steps=40,
        progress=False,
        log=lambda line: None,
    )
    for name in (
        "cu_schnet.safetensors",
        "parity.png",
        "learning_curve.png",
        "summary.json",
        "cu_emt.extxyz",
    ):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "summary.json").read_text()) == pytest.approx(summary)
    # a model predicting zero force would have a force MAE near the data's mean |F| (~0.3 eV/Å)
    assert summary["test_forces_mae_meV_per_A"] < 150
    assert abs(summary["nve_drift_meV_per_atom_per_ps"]) < 5


def test_generate_xtb_writes_labelled_molecules(tmp_path: Path) -> None:
    pytest.importorskip("tblite")
    out = tmp_path / "ethanol.extxyz"
    assert (
        main(["generate", "xtb", "--molecule", "H2O", "--structures", "3", "--out", str(out)]) == 0
    )
    from ase.io import read

    frames = read(out, index=":")
    assert len(frames) == 3 and frames[0].get_forces().shape == (3, 3)


def test_embed_cluster_and_anomaly_commands(tmp_path: Path, capsys) -> None:
    import ase.io
    import numpy as np
    from ase.build import bulk, fcc111

    from ase_gnn import save_model
    from ase_gnn.testing import tiny_model

    model_file = tmp_path / "m.safetensors"
    save_model(tiny_model("SchNet", ["Cu"], cutoff=4.0), model_file)
    crystals = []
    for seed in range(12):
        atoms = bulk("Cu", cubic=True).repeat((2, 2, 2))
        atoms.rattle(0.05, seed=seed)
        atoms.info["config_type"] = "bulk"
        crystals.append(atoms)
    ase.io.write(tmp_path / "train.extxyz", crystals[:8])
    ase.io.write(tmp_path / "normal.extxyz", crystals[8:])
    slab = fcc111("Cu", (2, 2, 6), vacuum=6.0)
    layer = np.round(slab.positions[:, 2], 1)
    slab.arrays["site"] = ((layer == layer.min()) | (layer == layer.max())).astype(int)
    slab.info["config_type"] = "surface"
    slab.info.pop("adsorbate_info")  # a dict extxyz cannot store
    ase.io.write(tmp_path / "slab.extxyz", slab)
    mixed = tmp_path / "mixed.extxyz"
    ase.io.write(mixed, crystals[:4] + [slab])

    embeddings = tmp_path / "e.npz"
    argv = ["embed", str(model_file), str(mixed), "--out", str(embeddings)]
    assert main([*argv, "--plot", str(tmp_path / "map.png")]) == 0
    with np.load(embeddings) as saved:
        assert saved["atoms"].shape == (4 * 32 + 24, 16) and saved["structures"].shape == (5, 16)
    assert (tmp_path / "map.png").stat().st_size > 10_000

    out = tmp_path / "clusters.extxyz"
    argv = ["cluster", str(model_file), str(tmp_path / "slab.extxyz"), "--clusters", "2"]
    assert main([*argv, "--label-key", "site", "--out", str(out)]) == 0
    assert "adjusted Rand index vs site: 1.000" in capsys.readouterr().out
    assert set(ase.io.read(out).arrays["cluster"]) == {0, 1}

    scores = tmp_path / "scores.csv"
    argv = [
        "anomaly",
        str(model_file),
        str(tmp_path / "normal.extxyz"),
        str(tmp_path / "slab.extxyz"),
    ]
    assert main([*argv, "--train", str(tmp_path / "train.extxyz"), "--out", str(scores)]) == 0
    rows = [line.split(",") for line in scores.read_text().splitlines()[1:]]
    normal = [float(r[3]) for r in rows if "normal" in r[0]]
    assert float(rows[-1][3]) > max(normal)  # the slab is unlike the bulk training data


def test_train_committee_writes_members_for_the_committee_calculator(tmp_path: Path) -> None:
    from ase.build import bulk

    from ase_gnn import CommitteeCalculator

    data = tmp_path / "cu.extxyz"
    assert main(["generate", "emt", "--structures", "12", "--out", str(data)]) == 0
    run = tmp_path / "committee"
    settings = [
        f"data.train='{data}'",
        f"run.out_dir='{run}'",
        "run.epochs=2",
        "model.cutoff=4.0",
        "model.hyperparameters={hidden_channels=8, num_interactions=1}",
    ]
    argv = ["train", "--committee", "2"] + [x for s in settings for x in ("--set", s)]
    assert main(argv) == 0
    files = sorted(run.glob("member_*/model.safetensors"))
    assert [f.parent.name for f in files] == ["member_0", "member_1"]
    seeds = [load_model(f) for f in files]
    assert not all(
        torch.equal(a, b)
        for a, b in zip(seeds[0].state_dict().values(), seeds[1].state_dict().values())
    )
    atoms = bulk("Cu", cubic=True)
    atoms.calc = CommitteeCalculator(files)
    assert atoms.calc.get_property("energy_std", atoms) > 0


def test_generate_sw_writes_stillinger_weber_silicon(tmp_path: Path) -> None:
    from ase.io import read

    out = tmp_path / "si.extxyz"
    assert main(["generate", "sw", "--structures", "7", "--out", str(out)]) == 0
    frames = read(out, index=":")
    assert len(frames) == 7 and {str(a.symbols.formula).rstrip("0123456789") for a in frames} == {
        "Si"
    }
    assert "cluster" in {a.info["config_type"] for a in frames}
    assert main(["generate", "sw", "--structures", "6", "--no-clusters", "--out", str(out)]) == 0
    assert "cluster" not in {a.info["config_type"] for a in read(out, index=":")}
