"""The chemiscope export: the dataset carries the scores, and the page renders in Chromium.

The rendering test needs Debian's ``chromium`` (``.ci/run`` installs it); it is skipped where
the browser is missing, except under CI, where a missing browser fails.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from ase_gnn.testing import tiny_model
from explain import Explainer, many_body
from explain.many_body import triplet_interactions

pytest.importorskip("chemiscope")
from explain.viewer import chemiscope_input, write_chemiscope  # noqa: E402


@pytest.fixture(scope="module")
def trajectory():
    """Three rattled frames of Si8 with edge-level Integrated Hessians and their expansions."""
    model = tiny_model("SchNet", ["Si"], cutoff=3.0).double()
    explainer = Explainer(model, "integrated_hessians", level="edge")
    frames = []
    for seed in range(3):
        atoms = bulk("Si", "diamond", 5.43, cubic=True)
        atoms.rattle(0.1, seed=seed)
        frames.append(atoms)
    attributions = [explainer.explain(atoms) for atoms in frames]
    expansions = [many_body(model, atoms, cutoff=3.0) for atoms in frames]
    return attributions, expansions


def _property(data, name):
    return np.asarray(data["properties"][name]["values"])


def test_the_dataset_carries_the_atom_bond_and_triplet_scores_of_every_frame(trajectory):
    attributions, expansions = trajectory
    interactions = [triplet_interactions(a, m) for a, m in zip(attributions, expansions)]
    data = chemiscope_input(attributions, expansions, interactions, top_bonds=5, top_triplets=3)
    assert len(data["structures"]) == 3
    scores = np.concatenate([a.node for a in attributions])
    np.testing.assert_allclose(_property(data, "score"), scores)
    np.testing.assert_allclose(_property(data, "target"), [a.target_value for a in attributions])
    # per atom: half of each pair term, and the triplets centred on it, sum to the totals
    pair = _property(data, "pair energy").reshape(3, 8).sum(axis=1)
    np.testing.assert_allclose(pair, [m.sums[2] for m in expansions], atol=1e-12)
    triplet = _property(data, "triplet energy").reshape(3, 8).sum(axis=1)
    np.testing.assert_allclose(triplet, [v.sum() for v in interactions], atol=1e-12)
    bonds = data["shapes"]["bonds"]["parameters"]["structure"]
    for frame, attribution in zip(bonds, attributions):
        _, scores, lengths = attribution.bonds()
        strongest = np.argsort(-np.abs(scores))[:5]
        assert len(frame["vectors"]) == 5
        np.testing.assert_allclose(np.linalg.norm(frame["vectors"], axis=1), lengths[strongest],
                                   atol=1e-3)  # fmt: skip
        # the colour is the sign of the score: red for positive, blue for negative
        reds = [int(c[1:3], 16) for c in frame["colors"]]
        blues = [int(c[5:7], 16) for c in frame["colors"]]
        assert all((r > b) == (s > 0) for r, b, s in zip(reds, blues, scores[strongest]))
    arcs = data["shapes"]["triplets"]["parameters"]["structure"]
    assert all(len(frame["vectors"]) == 3 * 8 for frame in arcs)  # 8 segments per arc
    settings = data["settings"]["structure"][0]
    assert settings["shape"] == "bonds,triplets" and settings["color"]["property"] == "score"


def test_expansions_alone_colour_by_pair_energy_and_draw_the_pair_terms(trajectory):
    _, expansions = trajectory
    data = chemiscope_input(expansions=expansions[0], top_bonds=1000)
    frame = data["shapes"]["bonds"]["parameters"]["structure"][0]
    assert len(frame["vectors"]) == len(expansions[0].pair_energy)
    assert data["settings"]["structure"][0]["color"]["property"] == "pair energy"
    assert "score" not in data["properties"]


def test_json_and_gzip_files_hold_the_dataset_and_bad_input_is_refused(trajectory, tmp_path):
    attributions, expansions = trajectory
    expected = chemiscope_input(attributions[0])
    plain = write_chemiscope(tmp_path / "a.json", attributions[0])
    packed = write_chemiscope(tmp_path / "a.json.gz", attributions[0])
    assert json.loads(plain.read_text()) == json.loads(json.dumps(expected))
    assert json.loads(gzip.decompress(packed.read_bytes())) == json.loads(plain.read_text())
    with pytest.raises(ValueError, match="as .html, .json or .json.gz"):
        write_chemiscope(tmp_path / "a.png", attributions[0])
    with pytest.raises(ValueError, match="different structures"):
        chemiscope_input(attributions[:2], expansions[1:])
    with pytest.raises(ValueError, match="2 attributions but 3 expansions"):
        chemiscope_input(attributions[:2], expansions)
    with pytest.raises(ValueError, match="triplet values"):
        chemiscope_input(attributions[0], expansions[0], np.zeros(3))
    with pytest.raises(ValueError, match="give attributions"):
        chemiscope_input()


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("CI") == "true":
        pytest.fail("CI needs Debian's chromium for the viewer test (.ci/run installs it)")
    return found


def _browse(browser: str, page: Path, folder: Path) -> tuple[str, Path]:
    """Load ``page`` in headless Chromium (software WebGL); its DOM and a screenshot."""
    shot = folder / "shot.png"
    flags = ["--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
             "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             f"--user-data-dir={folder / 'profile'}", "--window-size=800,500",
             "--virtual-time-budget=1000", "--dump-dom", f"--screenshot={shot}"]  # fmt: skip
    run = subprocess.run([browser, *flags, page.as_uri()], capture_output=True, text=True,
                         timeout=300, check=True)  # fmt: skip
    return run.stdout, shot


def test_the_standalone_page_renders_the_structure_in_headless_chromium(trajectory, tmp_path):
    from matplotlib.image import imread

    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    attributions, expansions = trajectory
    page = write_chemiscope(tmp_path / "view.html", attributions, expansions)
    dom, shot = _browse(browser, page, tmp_path)
    assert 'data-status="loaded"' in dom, dom[dom.find("<body") :][:400]
    image = imread(shot)[..., :3]  # [H, W, 3] in [0, 1]
    height, width = image.shape[:2]
    structure = image[height // 10 : 4 * height // 5, width // 40 : width // 2]  # left panel
    blank = np.all(structure > 0.97, axis=-1).mean()
    assert blank < 0.95, f"the structure panel is {blank:.0%} white"
    # atoms and bonds drawn in the score palette: saturated blue or red pixels, not only grey
    blue = (structure[..., 2] - structure[..., 0] > 0.3).mean()
    red = (structure[..., 0] - structure[..., 2] > 0.3).mean()
    assert blue + red > 0.005, f"no scored atoms or bonds drawn (blue {blue:.2%}, red {red:.2%})"


def test_a_broken_dataset_reports_its_error_on_the_page(trajectory, tmp_path):
    """The status the rendering test reads is real: chemiscope's own error reaches it."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    page = write_chemiscope(tmp_path / "view.html", trajectory[0][0])
    text = page.read_text()
    page.write_text(text.replace('"x": {"property": "frame"}', '"x": {"property": "nothing"}'))
    dom, _ = _browse(browser, page, tmp_path)
    assert 'data-status="error"' in dom and "nothing" in dom
