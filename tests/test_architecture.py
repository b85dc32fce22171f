"""The package's layers: no import cycles inside ``ase_gnn`` or ``explain``, and imports that
point only down (``ase_gnn`` never imports ``explain`` or ``captum``; ``explain`` only uses the
public ``ase_gnn`` API).

Every import counts, also one inside a function: a lazy import hides a cycle from Python, not
from a reader. Imports under ``if TYPE_CHECKING:`` are type annotations only and are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ase_gnn

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ase_gnn", "explain")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of this project that ``path`` imports (resolved to existing module names)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_lines(tree)
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            # The longest prefix that is one of our modules (a name imported from a package
            # resolves to its submodule if there is one, else to the package).
            parts = target.split(".")
            for cut in range(len(parts), 0, -1):
                candidate = ".".join(parts[:cut])
                if candidate in modules:
                    if candidate != name:
                        found.add(candidate)
                    break
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    modules = {_module_name(p) for p in files}
    graph = {}
    for path in files:
        imported = _imports(path, modules)
        name = _module_name(path)
        # A package's __init__ re-exports its children; a child importing its own package's
        # __init__ (or a sibling through it) is what Python itself needs, not a layer cycle.
        graph[name] = {m for m in imported if not name.startswith(m + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph.get(node, ())):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_cycle_detector_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


# ase_gnn's subpackages from the bottom up: a module may import its own subpackage and those
# below it, never one above. (ase_gnn/__init__.py and ase_gnn.testing sit on top of everything.)
LAYERS = (
    "graph",  # AtomicGraph, neighbour search
    "models",  # building blocks, architectures, heads, predict (forces), model files
    "analysis",  # diagnostics, embeddings, plots: need a model, not a calculator
    "calculators",  # the ASE converter, committees, results on request
    "simulate",  # batched evaluation and relaxation, MD
    "data",  # labelled data (runs MD with ASE calculators)
    "training",  # configs, trainer, pretraining
    "lammps",  # models inside LAMMPS over MPI ranks (halo exchange, fix external)
    "ipi",  # an i-PI driver (path-integral MD)
    "cli",  # the command line
)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "ase_gnn" or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def test_imports_point_only_down_the_layers() -> None:
    upward = [
        f"{module} -> {imported}"
        for module, imports in sorted(_graph().items())
        for imported in sorted(imports)
        if (low := _layer(module)) is not None
        and (high := _layer(imported)) is not None
        and high > low
    ]
    assert not upward, "imports pointing up: " + "; ".join(upward)


def test_every_subpackage_has_a_layer() -> None:
    packages = {p.parent.name for p in (ROOT / "ase_gnn").glob("*/__init__.py")}
    assert packages == set(LAYERS)


def test_ase_gnn_never_imports_explain_or_captum() -> None:
    for path in (ROOT / "ase_gnn").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top not in ("explain", "captum"), f"{path} imports {name}"


def test_explain_uses_only_the_public_ase_gnn_api() -> None:
    for path in (ROOT / "explain").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ase_gnn"):
                assert node.module == "ase_gnn", f"{path} imports from {node.module}"
                for alias in node.names:
                    assert alias.name in ase_gnn.__all__, f"{path} imports private {alias.name}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_has_a_docstring(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        if path.name == "__main__.py":
            continue
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path} has no docstring"
