"""The parts of the package import one another in one direction (ingest -> history ->
profitability and features -> models -> training and scoring -> decisions -> delivery -> cli):
no cycle between them, and training and scoring meet only in ``klantwaarde.models``.

A part is a subpackage or a top-level module of ``klantwaarde``. The imports are read from the
source with ``ast``, nothing is imported; an import inside a function counts as well."""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "klantwaarde"
ROOT = "__init__"  # the package's own module, and what it defines (``__version__``)

Graph = dict[str, dict[str, set[str]]]  # part -> imported part -> the modules that import it


def part_of(name: str, package: Path) -> str | None:
    """The part of ``package`` that the module ``name`` lies in; None outside the package."""
    top, _, rest = name.partition(".")
    if top != package.name:
        return None
    first = rest.split(".")[0]
    if first and ((package / first).is_dir() or (package / f"{first}.py").is_file()):
        return first
    return ROOT


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, package: Path) -> Iterator[str]:
    """The absolute names of the modules ``path`` imports, anywhere in it; for ``from P import
    N`` of the package itself, ``P.N``."""
    name = module_name(path, package)
    inside = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(inside[:len(inside) - node.level + 1] + ([base] if base else []))
            if base == package.name:
                yield from (f"{base}.{alias.name}" for alias in node.names)
            else:
                yield base


def import_graph(package: Path) -> Graph:
    """Which part imports which other part, and in which modules."""
    graph: Graph = {}
    for path in sorted(package.rglob("*.py")):
        source = module_name(path, package)
        part = part_of(source, package)
        for name in imported(path, package):
            target = part_of(name, package)
            if target is not None and target != part:
                graph.setdefault(part, {}).setdefault(target, set()).add(source)
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """A cycle as the parts along it, the first repeated at the end; None without one."""
    done: set[str] = set()
    path: list[str] = []

    def visit(part: str) -> list[str] | None:
        if part in path:
            return path[path.index(part):] + [part]
        if part in done:
            return None
        path.append(part)
        for target in sorted(graph.get(part, {})):
            if found := visit(target):
                return found
        path.pop()
        done.add(part)
        return None

    for part in sorted(graph):
        if found := visit(part):
            return found
    return None


def describe(graph: Graph, cycle: list[str]) -> str:
    return "; ".join(f"{a} -> {b} (in {', '.join(sorted(graph[a][b]))})"
                     for a, b in pairwise(cycle))


def crossing(graph: Graph) -> list[str]:
    """Every import between training and scoring, either way."""
    return [f"{a} -> {b} (in {', '.join(sorted(graph[a][b]))})"
            for a, b in (("training", "scoring"), ("scoring", "training"))
            if b in graph.get(a, {})]


def test_the_parts_of_the_package_import_one_another_without_a_cycle() -> None:
    graph = import_graph(SRC)
    assert {"models", "training", "scoring", "cli"} <= set(graph)  # the source was read
    cycle = find_cycle(graph)
    assert cycle is None, f"an import cycle: {describe(graph, cycle)}"


def test_training_and_scoring_do_not_import_each_other() -> None:
    graph = import_graph(SRC)
    assert {"models"} <= set(graph["training"]) & set(graph["scoring"])
    assert crossing(graph) == []


def test_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    """The checks fail on the package with an edge injected inside functions: models imports
    scoring (a cycle, as scoring imports models), and scoring imports training."""
    package = tmp_path / "klantwaarde"
    shutil.copytree(SRC, package)
    with (package / "models" / "drift.py").open("a") as f:
        f.write("\n\ndef injected():\n    from klantwaarde.scoring import score\n")
    with (package / "scoring" / "store.py").open("a") as f:
        f.write("\n\ndef injected():\n    from ..training.train import train\n")
    graph = import_graph(package)
    cycle = find_cycle(graph)
    assert cycle is not None and {"models", "scoring"} <= set(cycle)
    assert "models -> scoring (in klantwaarde.models.drift)" in describe(graph, cycle)
    assert crossing(graph) == ["scoring -> training (in klantwaarde.scoring.store)"]


def test_parts_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "klantwaarde"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "1"\n')
    (package / "top.py").write_text("from klantwaarde import __version__, sub\n")
    (package / "sub" / "__init__.py").write_text("from . import inner\n")
    (package / "sub" / "inner.py").write_text("def f():\n    from ..top import x\n")
    assert import_graph(package) == {"top": {ROOT: {"klantwaarde.top"},
                                             "sub": {"klantwaarde.top"}},
                                     "sub": {"top": {"klantwaarde.sub.inner"}}}
    assert find_cycle(import_graph(package)) == ["sub", "top", "sub"]


def test_only_the_command_line_imports_the_web_page() -> None:
    graph = import_graph(SRC)
    importers = sorted(part for part, targets in graph.items() if "web" in targets)
    assert importers == ["cli"]
    assert "appdb" in graph["web"] and "appdb" in graph["recorded"]
