"""Graph-construction diagnostics: neighbor statistics against known crystal shells, problem
detection, and the cutoff sweep against graphs really built at each cutoff."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.io import write

from ase_gnn import diagnose, graph_from_atoms, predict, save_model
from ase_gnn.cli.main import main
from ase_gnn.testing import tiny_model


def test_fcc_neighbor_shells_and_a_clean_report():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    # shells at 2.553, 3.610, 4.421 and 5.105 Å: 12, 18 and 42 neighbors below 3, 4 and 5 Å
    for cutoff, expected in ((3.0, 12), (4.0, 18), (5.0, 42)):
        report = diagnose(atoms, cutoff)
        assert (report.neighbor_counts == expected).all()
    assert report.problems == [] and "no problems found" in str(report)
    np.testing.assert_allclose(report.widths, 3 * 3.61)
    np.testing.assert_allclose(report.sweep_cutoffs, np.linspace(2.5, 5.0, 11))
    np.testing.assert_allclose(report.sweep_neighbors[[0, 1, 6, -1]], [0, 12, 18, 42])
    assert report.sweep_energies is None


def test_narrow_cell_self_images_isolated_atoms_and_short_pairs_are_named():
    primitive = bulk("Cu", "fcc", a=3.61)
    report = diagnose(primitive, 5.0)
    assert report.narrow_axes == [0, 1, 2]
    assert report.self_images.tolist() == [0]
    assert report.neighbor_counts.tolist() == [42]  # images count as neighbors
    assert any("narrower than the cutoff along a, b, c" in p for p in report.problems)
    assert any("own periodic image" in p for p in report.problems)

    atoms = molecule("CH3CH2OH")
    atoms.positions[2] = atoms.positions[0] + [0.25, 0.0, 0.0]  # atom 2 on top of carbon 0
    atoms += Atoms("O", positions=[[30.0, 0.0, 0.0]])
    report = diagnose(atoms, 4.0)
    assert report.isolated.tolist() == [9]
    assert [(i, j) for i, j, *_ in report.short_pairs] == [(0, 2)]
    assert report.short_pairs[0][2] == pytest.approx(0.25)
    assert report.widths.tolist() == [np.inf] * 3 and report.narrow_axes == []
    text = str(report)
    assert "no neighbor within 4 Å: [9]" in text and "0.250 Å apart" in text


def test_cutoff_sweep_equals_models_on_graphs_built_at_each_cutoff(architecture):
    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    model = tiny_model(architecture, ["Cu"]).double()
    sweep = np.array([1.5, 2.6, 3.3, 3.9, model.cutoff])
    report = diagnose(atoms, model=model, sweep=sweep)
    assert report.cutoff == model.cutoff
    for r, energy in zip(sweep, report.sweep_energies):
        graph = graph_from_atoms(atoms, r, dtype=torch.float64)
        expected = predict(model, graph, forces=False).energy.item() / len(atoms)
        assert energy == pytest.approx(expected, abs=1e-10)
    # no edge below the first shell: every atom contributes its isolated-atom energy
    e0 = model.atomic_energies[model.species_index(torch.tensor([29]))].item()
    assert report.sweep_energies[0] == pytest.approx(e0, abs=1e-10)
    assert report.sweep_neighbors[0] == 0


def test_bad_requests_are_refused_with_the_reason():
    atoms = bulk("Cu", cubic=True)
    model = tiny_model("SchNet", ["Cu"]).double()
    with pytest.raises(ValueError, match="needs a cutoff"):
        diagnose(atoms)
    with pytest.raises(ValueError, match="exceed the model's cutoff"):
        diagnose(atoms, model=model, sweep=np.array([2.0, model.cutoff + 1.0]))
    atoms.positions[1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        diagnose(atoms, 4.0)


def test_plot_and_command_line(tmp_path, capsys):
    atoms = bulk("Cu", cubic=True).repeat(2)
    model = tiny_model("SchNet", ["Cu"])
    save_model(model, tmp_path / "model.safetensors")
    write(tmp_path / "cu.extxyz", atoms)
    image = tmp_path / "diagnose.png"
    argv = ["diagnose", str(tmp_path / "cu.extxyz"), "--model", str(tmp_path / "model.safetensors")]
    assert main([*argv, "--sweep", "2", "3", "3", "--plot", str(image)]) == 0
    out = capsys.readouterr().out
    assert f"at cutoff {model.cutoff:g} Å" in out and "ΔE/atom vs full" in out
    assert image.stat().st_size > 10_000
    assert main(["diagnose", str(tmp_path / "cu.extxyz")]) == 2
    assert "needs a cutoff" in capsys.readouterr().err


def test_energy_change_is_taken_against_the_full_graph_not_the_last_sweep_cutoff():
    # a sweep that stops below the model's cutoff: its last energy is not the full graph's
    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.rattle(0.05, seed=2)
    model = tiny_model("SchNet", ["Cu"]).double()
    report = diagnose(atoms, model=model, sweep=np.array([1.5, 2.6, 3.0]))
    graph = graph_from_atoms(atoms, model.cutoff, dtype=torch.float64)
    full = predict(model, graph, forces=False).energy.item() / len(atoms)
    assert abs(report.sweep_energies[-1] - full) > 1e-4  # the 3.0-3.61 Å shell is missing
    change = 1e3 * (report.sweep_energies - full)
    rows = [line.split() for line in str(report).splitlines() if line.startswith("    ")]
    table = np.array([[float(value) for value in row] for row in rows if len(row) == 4])
    np.testing.assert_allclose(table[:, 0], report.sweep_cutoffs, atol=1e-3)
    np.testing.assert_allclose(table[:, 3], change, atol=0.006)  # printed with 2 decimals
    energy_axis = report.plot().axes[-1]
    assert "vs full graph" in energy_axis.get_ylabel()
    np.testing.assert_allclose(energy_axis.lines[0].get_ydata(), change, rtol=1e-12)
    assert report.full_energy == pytest.approx(full, abs=1e-12)


def test_without_a_model_there_is_no_full_energy():
    assert diagnose(bulk("Cu", cubic=True), 4.0).full_energy is None
