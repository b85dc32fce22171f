"""A smoke run of an installed ase-gnn, executed in a subprocess by the install tests.

It runs from outside the source tree, in an environment the test built (a wheel installed into a
fresh venv, or the declared minimum versions of the dependencies), so it checks what an installed
package does rather than the checkout:

- ``ase_gnn`` and ``explain`` are imported from ``--expect-prefix`` (not from a checkout);
- ``--expect-version NAME==VERSION`` checks that the environment holds that version;
- the physics battery (finite-difference forces and stress, symmetries, batching, save/load) for
  both architectures on molecules, crystals and a (T, T, F) slab;
- EMT data generated and two epochs of training from a TOML config, through ``python -m ase_gnn``;
- an attribution with its completeness gap and a deletion curve (explain.metrics);
- the console script and the ASE plugin listing (``--scripts``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import tempfile
from pathlib import Path


def check_environment(prefix: str | None, versions: list[str]) -> None:
    """Packages come from ``prefix`` and have the expected versions."""
    import ase_gnn
    import explain

    for module in (ase_gnn, explain):
        location = Path(module.__file__).resolve()
        if prefix is not None and not location.is_relative_to(Path(prefix).resolve()):
            raise SystemExit(f"{module.__name__} imported from {location}, not from {prefix}")
    for pin in versions:
        name, version = pin.split("==")
        found = importlib.metadata.version(name)
        if found != version:
            raise SystemExit(f"{name} {found} installed where {version} was expected")


def check_physics() -> None:
    """The battery on both architectures, in float64 (finite differences included)."""
    import torch

    from ase_gnn.models import ARCHITECTURES
    from ase_gnn.testing import check_model, tiny_model

    for architecture in ARCHITECTURES:
        check_model(tiny_model(architecture, ["Cu", "Au"]), torch.float64)


def check_training(workdir: Path) -> None:
    """EMT data, two epochs of training from a TOML config (``python -m ase_gnn``), reloaded."""
    import numpy as np
    from ase.build import bulk

    from ase_gnn import GNNCalculator, load_model

    def cli(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "ase_gnn", *args], check=True, cwd=workdir)

    cli("generate", "emt", "--element", "Cu", "--structures", "12", "--out", "data.extxyz")
    (workdir / "config.toml").write_text(
        '[model]\narchitecture = "SchNet"\ncutoff = 4.5\n'
        "[model.hyperparameters]\nhidden_channels = 8\n"
        '[data]\ntrain = "data.extxyz"\nvalid_fraction = 0.25\n'
        '[run]\nepochs = 2\nout_dir = "run"\n'
    )
    cli("train", "config.toml")
    model = load_model(workdir / "run" / "model.safetensors")
    assert model.cutoff == 4.5
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=0)
    atoms.calc = GNNCalculator(model)
    assert np.isfinite(atoms.get_forces()).all()


def check_explain() -> None:
    """Integrated Gradients on bonds sums to E(input) - E(baseline); a deletion curve runs."""
    from ase.build import bulk

    from ase_gnn.testing import tiny_model
    from explain import Energy, Explainer
    from explain.metrics import deletion_insertion

    model = tiny_model("SchNet", ["Cu"]).double()
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=0)
    explainer = Explainer(model, "integrated_gradients", target=Energy(), level="edge")
    attribution = explainer.explain(atoms)
    assert abs(attribution.completeness_gap) < 1e-3, attribution.completeness_gap
    curves = deletion_insertion(explainer, attribution, steps=4)
    assert len(curves.fraction) == 5


def check_scripts() -> None:
    """The console script runs and ASE lists the calculator plugin."""
    bin_dir = Path(sys.executable).parent
    help_text = subprocess.run(
        [bin_dir / "ase-gnn", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "train" in help_text, help_text
    plugins = subprocess.run(
        [bin_dir / "ase", "info", "--plugins"], capture_output=True, text=True, check=True
    ).stdout
    assert "ase_gnn" in plugins, plugins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--expect-prefix")
    parser.add_argument("--expect-version", action="append", default=[])
    parser.add_argument("--scripts", action="store_true")
    args = parser.parse_args()
    check_environment(args.expect_prefix, args.expect_version)
    with tempfile.TemporaryDirectory() as workdir:
        check_training(Path(workdir))
    check_physics()
    check_explain()
    if args.scripts:
        check_scripts()
    print("install smoke run passed")


if __name__ == "__main__":
    main()
