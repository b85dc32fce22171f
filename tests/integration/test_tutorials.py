"""Every tutorial notebook runs top to bottom (the notebooks assert their own physics checks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TUTORIALS = sorted((Path(__file__).parents[2] / "tutorials").glob("*.ipynb"))


def test_all_eight_tutorials_are_present_and_committed_without_outputs():
    assert [path.name[:2] for path in TUTORIALS] == [f"{n:02d}" for n in range(1, 9)]
    for path in TUTORIALS:
        notebook = nbformat.read(path, as_version=4)
        stale = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.outputs]
        assert not stale, f"{path.name} is committed with outputs"


@pytest.mark.slow
@pytest.mark.tutorials
@pytest.mark.parametrize("path", TUTORIALS, ids=[path.stem for path in TUTORIALS])
def test_tutorial_runs(path: Path, tmp_path: Path) -> None:
    shutil.copy(path, tmp_path)
    notebook = nbformat.read(tmp_path / path.name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    images = list(tmp_path.glob("*.png"))
    assert images and all(image.stat().st_size > 5_000 for image in images)
