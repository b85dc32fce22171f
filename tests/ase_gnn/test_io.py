"""Model files: safetensors only, clear errors for everything else, no code ever executed."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
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


def test_calculator_accepts_a_model_path(tmp_path: Path) -> None:
    model = tiny_model("SchNet", ["Cu", "Ag"]).double()
    path = tmp_path / "model.safetensors"
    save_model(model, path)
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=2)
    atoms.symbols[1] = "Ag"
    atoms.calc = GNNCalculator(model)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    assert abs(energy) > 1e-3  # the model predicts something the file must reproduce
    for calc in (GNNCalculator(path), GNNCalculator.from_file(path)):
        atoms.calc = calc
        assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-12)
        np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-12)


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
    with pytest.raises(
        ValueError, match=r"'embedding.embedding.weight' has shape.*needs \(2, 32\)"
    ):
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
    from ase_gnn.models.heads import EdgeHead, GraphHead, NodeHead

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


# -- tensors that disagree with the header -------------------------------------------------------


def _tensors_and_metadata(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        return tensors, dict(handle.metadata())


def _crafted(saved: Path, tmp_path: Path, edit) -> Path:
    """A copy of ``saved`` whose tensors and metadata ``edit(tensors, metadata)`` changed."""
    tensors, metadata = _tensors_and_metadata(saved)
    edit(tensors, metadata)
    path = tmp_path / "crafted.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    return path


def _retype(key: str, dtype: torch.dtype):
    def edit(tensors, metadata) -> None:
        tensors[key] = tensors[key].to(dtype)

    return edit


@pytest.mark.parametrize(
    "dtype", [torch.int64, torch.int32, torch.bool, torch.float16, torch.float32]
)
def test_a_tensor_of_another_dtype_than_the_header_is_refused(saved, tmp_path, dtype) -> None:
    def edit(tensors, metadata) -> None:
        tensors["atomic_energies"] = torch.full_like(tensors["atomic_energies"], 1e9).to(dtype)

    name = str(dtype).removeprefix("torch.")
    with pytest.raises(ValueError, match=rf"'atomic_energies' is {name}, but the header.*float64"):
        load_model(_crafted(saved, tmp_path, edit))


def test_a_weight_of_another_dtype_is_refused_by_name(saved, tmp_path) -> None:
    key = next(k for k in _tensors_and_metadata(saved)[0] if k.endswith(".weight"))
    with pytest.raises(ValueError, match=rf"'{key}' is int64"):
        load_model(_crafted(saved, tmp_path, _retype(key, torch.int64)))


def test_a_tensor_of_the_wrong_shape_is_refused(saved, tmp_path) -> None:
    def edit(tensors, metadata) -> None:
        tensors["scale"] = torch.ones(3, dtype=torch.float64)

    with pytest.raises(ValueError, match=r"tensor 'scale' has shape \(3,\); the model.*\(\)"):
        load_model(_crafted(saved, tmp_path, edit))


def test_a_missing_tensor_is_refused(saved, tmp_path) -> None:
    def edit(tensors, metadata) -> None:
        del tensors["atomic_energies"]

    with pytest.raises(ValueError, match=r"lacks tensor\(s\) \['atomic_energies'\]"):
        load_model(_crafted(saved, tmp_path, edit))


def test_an_extra_tensor_is_refused(saved, tmp_path) -> None:
    def edit(tensors, metadata) -> None:
        tensors["backdoor.weight"] = torch.zeros(2, dtype=torch.float64)

    with pytest.raises(ValueError, match=r"unexpected tensor\(s\) \['backdoor.weight'\]"):
        load_model(_crafted(saved, tmp_path, edit))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_weight_is_refused(saved, tmp_path, value) -> None:
    def edit(tensors, metadata) -> None:
        tensors["scale"] = torch.tensor(value, dtype=torch.float64)

    with pytest.raises(ValueError, match="tensor 'scale' has non-finite values"):
        load_model(_crafted(saved, tmp_path, edit))


def test_reference_energies_that_disagree_with_the_header_copy_are_refused(saved, tmp_path) -> None:
    def edit(tensors, metadata) -> None:
        tensors["atomic_energies"] = tensors["atomic_energies"] + 1.0

    with pytest.raises(ValueError, match="E0 of 'Cu' is .* in the header"):
        load_model(_crafted(saved, tmp_path, edit))


@pytest.mark.parametrize("species", [[29.5, "Ag"], [True, "Ag"], [29.0, 47], ["Cu", None]])
def test_a_species_that_is_not_an_integer_atomic_number_is_refused(
    saved, tmp_path, species
) -> None:
    def edit(tensors, metadata) -> None:
        config = json.loads(metadata["config"])
        config["species"] = species
        metadata["config"] = json.dumps(config)

    with pytest.raises(ValueError, match="element symbols or integer atomic numbers"):
        load_model(_crafted(saved, tmp_path, edit))


def test_a_float64_model_loads_as_float32_on_request_after_its_checks(saved) -> None:
    assert load_model(saved, dtype="float32").dtype == torch.float32


# -- half precision ------------------------------------------------------------------------------


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_models_are_refused_by_calculators_and_save(tmp_path, half) -> None:
    from ase_gnn import CommitteeCalculator

    model = tiny_model("SchNet", ["Cu"]).to(half)
    name = str(half).removeprefix("torch.")
    with pytest.raises(ValueError, match=rf"{name}.*float32 or float64"):
        GNNCalculator(model)
    with pytest.raises(ValueError, match=rf"{name}.*float32 or float64"):
        CommitteeCalculator([tiny_model("SchNet", ["Cu"]), model])
    with pytest.raises(ValueError, match=rf"{name}.*float32 or float64"):
        save_model(model, tmp_path / "half.safetensors")
    assert not list(tmp_path.iterdir())


def test_a_model_with_one_half_precision_part_is_refused_by_name(tmp_path) -> None:
    model = tiny_model("SchNet", ["Cu"])
    model.heads["q"] = __import__("ase_gnn").NodeHead("q", model.num_features).half()
    with pytest.raises(ValueError, match=r"'heads\.q\.mlp\.0\.weight' is float16"):
        GNNCalculator(model)
    with pytest.raises(ValueError, match=r"'heads\.q\.mlp\.0\.weight' is float16"):
        save_model(model, tmp_path / "mixed.safetensors")


def test_a_half_precision_model_converted_by_the_calculator_gives_its_float32_energy() -> None:
    model = tiny_model("SchNet", ["Cu"]).half()
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=0)
    atoms.calc = GNNCalculator(model, dtype="float32")
    converted = atoms.get_potential_energy()
    atoms.calc = GNNCalculator(model.float())
    assert converted == atoms.get_potential_energy()
