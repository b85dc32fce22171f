"""Write ``model_v<FORMAT_VERSION>.safetensors`` and its reference outputs with the current code.

Run from the repository root whenever the model-file format changes (the older files stay, so
tests keep checking that every format version ever written still loads with the same numbers)::

    PYTHONPATH=. python tests/ase_gnn/model_files/make_fixture.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from ase.build import molecule

from ase_gnn import graph_from_atoms, predict, save_model
from ase_gnn.models.heads import EdgeHead, GraphHead, NodeHead
from ase_gnn.models.io import FORMAT_VERSION
from ase_gnn.testing import tiny_model

HERE = Path(__file__).parent


def fixture_atoms():  # noqa: ANN201 - ase.Atoms
    """The structure whose outputs the reference file records (ethanol)."""
    return molecule("CH3CH2OH")


def main() -> None:
    torch.manual_seed(15)  # a script, not library code: its own process
    model = tiny_model("SchNet", ["C", "H", "O"], hidden_channels=8).double()
    width = model.num_features
    model.add_head(NodeHead("charges", width, hidden=8))
    model.add_head(
        EdgeHead("bond", width, cutoff=4.0, task="classification", classes=["no", "yes"], hidden=8)
    )
    model.add_head(GraphHead("gap", width, readout="mean", hidden=8))
    path = HERE / f"model_v{FORMAT_VERSION}.safetensors"
    save_model(model, path)
    graph = graph_from_atoms(fixture_atoms(), model.cutoff, dtype=torch.float64)
    prediction = predict(model, graph, forces=True)
    with torch.no_grad():
        heads = {name: value.tolist() for name, value in model.head_outputs(graph).items()}
    reference = {
        "energy": prediction.energy.item(),
        "forces": prediction.forces.tolist() if prediction.forces is not None else None,
        "heads": heads,
    }
    path.with_suffix(".json").write_text(json.dumps(reference, indent=1) + "\n")


if __name__ == "__main__":
    main()
