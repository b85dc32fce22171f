"""Training output heads beside the energy: labels, losses, metrics and the model file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from ase_gnn import graph_from_atoms, load_model
from ase_gnn.models.heads import NodeHead
from ase_gnn.testing import tiny_model
from ase_gnn.training import config_from_dict
from ase_gnn.training.config import HeadConfig, RunConfig, TrainConfig
from ase_gnn.training.data import GraphDataset, head_labels
from ase_gnn.training.trainer import Trainer, add_heads, evaluate_metrics

PHASES = {"fcc": 3.61, "bcc": 2.87, "sc": 2.40}


def _phases(count: int, seed: int):
    """EMT-labelled Cu in three cubic lattices (coordination 12, 8, 6), strained and rattled."""
    rng = np.random.default_rng(seed)
    structures = []
    for k in range(count):
        phase = list(PHASES)[k % 3]
        atoms = bulk("Cu", phase, a=PHASES[phase], cubic=True).repeat(2)
        atoms.set_cell(atoms.cell * (1 + rng.uniform(-0.03, 0.03)), scale_atoms=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        results = {p: atoms.calc.get_property(p, atoms) for p in ("energy", "forces", "energies")}
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["phase"] = phase
        structures.append(atoms)
    return structures


def test_head_labels_read_nodes_edges_and_graphs():
    atoms = molecule("CH3CH2OH")
    atoms.arrays["charge"] = np.arange(9.0)
    atoms.arrays["distance"] = atoms.get_all_distances()
    atoms.info["kind"] = "alcohol"
    graph = graph_from_atoms(atoms, 3.0)
    heads = [
        HeadConfig("charge", "node"),
        HeadConfig("distance", "edge"),
        HeadConfig("kind", "graph", "classification", classes=("alkane", "alcohol")),
        HeadConfig("gap", "graph"),
    ]
    labels = head_labels(atoms, graph, heads)
    assert torch.equal(labels["charge"], torch.arange(9.0, dtype=torch.float64))
    lengths = graph.positions[graph.edge_index[1]] - graph.positions[graph.edge_index[0]]
    torch.testing.assert_close(labels["distance"], lengths.norm(dim=1))
    assert labels["kind"].tolist() == [1]
    assert torch.isnan(labels["gap"]).all()  # missing: skipped by loss and metrics
    with pytest.raises(ValueError, match="unknown class"):
        head_labels(
            atoms, graph, [HeadConfig("kind", "graph", "classification", classes=("a", "b"))]
        )


def test_heads_train_with_the_energy_and_beat_baselines(tmp_path):
    data = _phases(48, 0)
    train, valid = data[:36], data[36:]
    heads = (
        HeadConfig("phase", "graph", "classification", classes=tuple(PHASES)),
        HeadConfig("energies", "node", weight=10.0),
    )
    config = config_from_dict(
        {
            "data": {"train": "not-read-by-the-trainer.extxyz"},
            "run": {"epochs": 25, "batch_size": 4, "out_dir": str(tmp_path), "progress": False},
            "heads": [
                {
                    "name": "phase",
                    "level": "graph",
                    "task": "classification",
                    "classes": list(PHASES),
                },
                {"name": "energies", "level": "node", "weight": 10.0},
            ],
        }  # fmt: skip
    )
    assert config.heads == heads
    model = tiny_model("SchNet", ["Cu"], cutoff=4.0)
    history = Trainer(model, config).fit(train, valid)
    final = history.rows[-1]
    assert final["valid_phase_accuracy"] > 0.9  # a majority guess gets 1/3 (measured 1.0)
    energies = np.concatenate([a.get_potential_energies() for a in valid])
    mean_predictor = np.abs(energies - energies.mean()).mean()
    assert final["valid_energies_mae"] < 0.5 * mean_predictor
    model_file = tmp_path / "model.safetensors"
    from ase_gnn import save_model

    save_model(model, model_file)
    loaded = load_model(model_file)
    assert loaded.heads["phase"].classes == ("fcc", "bcc", "sc")
    dataset = GraphDataset(valid, loaded.cutoff, loaded.dtype, heads=heads)
    again = evaluate_metrics(loaded, dataset, heads=heads)
    assert again["phase_accuracy"] == pytest.approx(final["valid_phase_accuracy"])


def test_edge_head_learns_bond_lengths(tmp_path):
    rng = np.random.default_rng(1)
    clusters = []
    for _ in range(30):
        atoms = bulk("Cu", cubic=True)
        atoms.pbc = False
        atoms.center(vacuum=5.0)
        atoms.rattle(0.2, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(
            atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces()
        )
        atoms.arrays["distance"] = atoms.get_all_distances()
        clusters.append(atoms)
    config = TrainConfig(
        heads=(HeadConfig("distance", "edge", weight=10.0),),
        run=RunConfig(epochs=30, batch_size=5, out_dir=str(tmp_path), progress=False),
    )
    history = Trainer(tiny_model("SchNet", ["Cu"], cutoff=4.0), config).fit(
        clusters[:24], clusters[24:]
    )
    lengths = np.concatenate([a.get_all_distances()[np.triu_indices(4, 1)] for a in clusters[24:]])
    assert history.rows[-1]["valid_distance_mae"] < 0.3 * np.abs(lengths - lengths.mean()).mean()


def test_heads_tables_are_validated():
    base = {"data": {"train": "x.extxyz"}}
    with pytest.raises(ValueError, match="unknown key 'clases' in heads; did you mean 'classes'"):
        config_from_dict(base | {"heads": [{"name": "p", "clases": ["a", "b"]}]})
    with pytest.raises(ValueError, match="used twice"):
        config_from_dict(base | {"heads": [{"name": "p"}, {"name": "p"}]})
    with pytest.raises(ValueError, match="two or more classes"):
        config_from_dict(base | {"heads": [{"name": "p", "task": "classification"}]})
    with pytest.raises(ValueError, match="other than 'energy'"):
        config_from_dict(base | {"heads": [{"name": "energy"}]})


class UserNodeHead(NodeHead):
    """A user's node head, defined in the same process as the training run."""


def test_heads_tables_build_the_built_in_heads_beside_a_user_subclass():
    model = tiny_model("SchNet", ["Cu"])
    add_heads(model, [HeadConfig("charges", "node")])
    assert type(model.heads["charges"]) is NodeHead
