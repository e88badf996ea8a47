"""The package's imports point down the layers and close no cycle.

Layers, lowest first (docs/architecture.md): errors/io/schema/secrets -> graph -> spaces, estimators,
data, tflm, frontend -> config -> rundir -> export -> search -> report -> cli (``mcunas.cli``,
``mcunas.run`` and every ``command*`` module). Every import of a mcunas module is read from the
source (also the ones inside functions and under ``TYPE_CHECKING``): a module may import its own
package and lower layers; packages of one layer may import each other only without a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mcunas"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("mcunas.errors", "mcunas.io", "mcunas.schema", "mcunas.secrets"),
    ("mcunas.graph",),
    ("mcunas.spaces", "mcunas.estimators", "mcunas.data", "mcunas.tflm", "mcunas.frontend"),
    ("mcunas.config",),
    ("mcunas.rundir",),
    ("mcunas.export",),
    ("mcunas.search",),
    ("mcunas.report",),
    ("mcunas.run", "mcunas.cli"),
)
CLI_LAYER = len(LAYERS) - 1


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """The layered unit of a module: its entry of :data:`LAYERS` (a package or a module)."""
    for units in LAYERS:
        for name in units:
            if module == name or module.startswith(name + "."):
                return name
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__} and docs/architecture.md")


def layer(module: str) -> int:
    if module.rsplit(".", 1)[-1].startswith("command"):
        return CLI_LAYER
    name = unit(module)
    return next(index for index, units in enumerate(LAYERS) if name in units)


def imports(path: Path, root: Path) -> set[str]:
    """The mcunas modules imported anywhere in ``path`` (absolute and relative imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{alias.name}" if base == "mcunas" else base for alias in node.names}
    return {item for item in found if item.startswith("mcunas.")}


def edges(root: Path) -> list[tuple[str, str]]:
    """(importing module, imported module) for every mcunas import under ``root``."""
    return [(module_name(path, root), target) for path in sorted(root.rglob("*.py")) for target in imports(path, root)]


def upward_imports(root: Path) -> list[str]:
    return [
        f"{source} (layer {layer(source)}) imports {target} (layer {layer(target)})"
        for source, target in edges(root)
        if unit(source) != unit(target) and layer(target) > layer(source)
    ]


def package_cycles(root: Path) -> list[str]:
    graph: dict[str, set[str]] = {}
    for source, target in edges(root):
        a, b = unit(source), unit(target)
        if a != b and layer(source) != CLI_LAYER:
            graph.setdefault(a, set()).add(b)
    cycles: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for successor in sorted(graph.get(node, ())):
            if successor in path:
                cycles.add(" -> ".join(path[path.index(successor):] + [successor]))
            else:
                visit(successor, path + [successor])

    for start in sorted(graph):
        visit(start, [start])
    return sorted(cycles)


def test_every_import_points_down_or_within_its_package() -> None:
    upward = upward_imports(PACKAGE)
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_import_cycle_between_packages() -> None:
    cycles = package_cycles(PACKAGE)
    assert not cycles, "import cycles between packages:\n" + "\n".join(cycles)


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    """The checks above can fail: a package tree with one upward import and one cycle."""
    root = tmp_path / "mcunas"
    files = {
        "graph/ir.py": "def f():\n    from mcunas.search.search import run_search\n",
        "spaces/base.py": "from mcunas.estimators import cost\n",
        "estimators/cost.py": "from ..spaces import base\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "search").mkdir()
    (root / "search" / "search.py").write_text("x = 1\n", encoding="utf-8")
    assert upward_imports(root) == ["mcunas.graph.ir (layer 1) imports mcunas.search.search (layer 6)"]
    assert package_cycles(root) == [
        "mcunas.estimators -> mcunas.spaces -> mcunas.estimators",
        "mcunas.spaces -> mcunas.estimators -> mcunas.spaces",
    ]
