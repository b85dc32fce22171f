"""Model files: safetensors only, clear errors for everything else, no code ever executed."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from ase.build import bulk
from safetensors.torch import save_file

from ase_gnn import GNNCalculator, load_model, read_metadata, save_model
from ase_gnn.testing import tiny_model


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    path = tmp_path / "model.safetensors"
    save_model(model, path)
    return path


def test_metadata_records_architecture_config_species_units_and_versions(saved: Path) -> None:
    meta = read_metadata(saved)
    assert meta["format"] == "ase-gnn-model" and meta["format_version"] == "2"
    assert meta["architecture"] == "SchNet"
    assert meta["config"]["species"] == ["Cu", "Ag"] and meta["config"]["cutoff"] == 4.0
    assert meta["units"] == {"energy": "eV", "length": "Angstrom"}
    assert set(meta["atomic_energies"]) == {"Cu", "Ag"}
    assert {"torch", "ase", "ase-gnn"} <= set(meta["versions"])
    assert meta["dtype"] == "float64"


@pytest.mark.parametrize("saved_dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("load_dtype", [torch.float32, torch.float64])
def test_dtype_conversion_on_load(tmp_path: Path, saved_dtype, load_dtype) -> None:
    model = tiny_model("SchNet", ["Cu"]).to(saved_dtype)
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    loaded = load_model(path, dtype=load_dtype)
    assert loaded.dtype == load_dtype
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=0)
    atoms.calc = GNNCalculator(model, dtype="float64")
    reference = atoms.get_potential_energy()
    atoms.calc = GNNCalculator(loaded, dtype=load_dtype)
    tol = 1e-12 if torch.float32 not in (saved_dtype, load_dtype) else 1e-4
    assert abs(atoms.get_potential_energy() - reference) < tol * abs(reference)


def test_calculator_accepts_a_model_path(saved: Path) -> None:
    atoms = bulk("Cu", cubic=True)
    atoms.calc = GNNCalculator(saved)
    from_path = atoms.get_potential_energy()
    atoms.calc = GNNCalculator.from_file(saved)
    assert atoms.get_potential_energy() == from_path


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_refused_and_executes_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"state": _Payload(marker)}))
    with pytest.raises(ValueError, match="pickle"):
        load_model(path)
    with pytest.raises(ValueError, match="pickle"):
        GNNCalculator(path)
    assert not marker.exists()


@pytest.mark.parametrize("signature", [b"\x80", b"PK"], ids=["pickle", "zip"])
def test_header_length_that_looks_like_a_pickle_or_zip_signature_loads(
    saved: Path, tmp_path: Path, signature: bytes
) -> None:
    # The first bytes of a safetensors file are its header length: pad the JSON header (trailing
    # spaces, as safetensors itself pads) until that length starts with the signature's bytes.
    data = saved.read_bytes()
    length = int.from_bytes(data[:8], "little")
    target = int.from_bytes(signature, "little")
    modulus = 256 ** len(signature)
    new_length = length + (target - length) % modulus
    header = data[8 : 8 + length] + b" " * (new_length - length)
    path = tmp_path / "padded.safetensors"
    path.write_bytes(new_length.to_bytes(8, "little") + header + data[8 + length :])
    assert path.read_bytes().startswith(signature)
    assert load_model(path).config() == load_model(saved).config()


def test_torch_save_archive_is_refused_and_executes_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"state": _Payload(marker)}, path)
    with pytest.raises(ValueError, match="torch.save"):
        load_model(path)
    assert not marker.exists()


def test_truncated_file_is_a_clear_error(saved: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(saved.read_bytes()[:-100])
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_model(truncated)


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.safetensors"
    path.write_bytes(b"hello world, not a model at all")
    with pytest.raises(ValueError, match="safetensors"):
        load_model(path)


def _rewrite(saved: Path, tmp_path: Path, **changes: str) -> Path:
    from safetensors import safe_open

    with safe_open(str(saved), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        metadata = dict(handle.metadata())
    metadata.update(changes)
    path = tmp_path / "edited.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_unknown_format_version_is_a_clear_error(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format version '99'"):
        load_model(_rewrite(saved, tmp_path, format_version="99"))


def test_unknown_architecture_is_refused(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'os.system'.*not one of the known"):
        load_model(_rewrite(saved, tmp_path, architecture="os.system"))


def test_foreign_safetensors_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not an ase-gnn model"):
        load_model(path)


def test_weights_that_do_not_match_the_config_are_refused(saved: Path, tmp_path: Path) -> None:
    config = read_metadata(saved)["config"]
    config["hidden_channels"] = 32
    with pytest.raises(ValueError, match="do not match"):
        load_model(_rewrite(saved, tmp_path, config=json.dumps(config)))


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.safetensors")


def test_save_leaves_no_temporary_file(saved: Path) -> None:
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


# -- model files written by every format version ever released ----------------------------------

FIXTURES = Path(__file__).parent / "model_files"


@pytest.mark.parametrize("version", ["1", "2"])
def test_model_files_of_every_format_version_load_with_their_recorded_outputs(version) -> None:
    from ase.build import molecule

    from ase_gnn import graph_from_atoms, predict
    from ase_gnn.heads import EdgeHead, GraphHead, NodeHead

    path = FIXTURES / f"model_v{version}.safetensors"
    reference = json.loads(path.with_suffix(".json").read_text())
    model = load_model(path)
    assert read_metadata(path)["format_version"] == version
    assert [type(head) for head in model.heads.values()] == [NodeHead, EdgeHead, GraphHead]
    graph = graph_from_atoms(molecule("CH3CH2OH"), model.cutoff, dtype=torch.float64)
    prediction = predict(model, graph, forces=True)
    assert prediction.energy.item() == pytest.approx(reference["energy"], rel=1e-12)
    assert prediction.forces is not None
    torch.testing.assert_close(
        prediction.forces, torch.tensor(reference["forces"], dtype=torch.float64)
    )
    for name, value in model.head_outputs(graph).items():
        expected = torch.tensor(reference["heads"][name], dtype=torch.float64)
        torch.testing.assert_close(value.detach(), expected, msg=name)
