"""The package's import graph: no module imports itself back, and the demo library stands alone.

The graph is read from the sources with ``ast`` (nothing is imported): an edge ``a -> b`` for each
``import``/``from ... import`` in ``a`` of a module ``b`` of the package. Imports written inside
functions run later, when the function is called, so they cannot leave a module half-initialized;
the first test counts the imports that run while a module loads, the others every import, wherever
it is written (a deferred import hides a dependency but does not remove it).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "nnimaging"


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (packages by their ``__init__.py``)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(tree: ast.AST, at_load: bool):
    """Import statements of ``tree``; with ``at_load``, not those inside a function."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if at_load and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(node))


def import_graph(at_load: bool) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``."""
    mods = modules()
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8")), at_load):
            if isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                candidates = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                              for a in node.names]
            for target in candidates:
                while target not in mods and "." in target:  # nnimaging.demo.Slider -> nnimaging.demo
                    target = target.rpartition(".")[0]
                if target in mods and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its modules in order, the first repeated at the end), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph(at_load=False)
    assert "nnimaging.demo.core" in graph["nnimaging.demo"]
    assert "nnimaging.demo.parts" in graph["nnimaging.demo.render"]


def test_no_module_of_the_package_imports_itself_back_while_it_loads():
    found = cycle(import_graph(at_load=True))
    assert found is None, f"import cycle: {' -> '.join(found)}"


def test_no_import_cycle_even_through_imports_written_inside_functions():
    # a deferred import hides a dependency, it does not remove it: with them counted, the modules
    # still form layers (checks and data, models, the weights store, training, experiments, ...)
    found = cycle(import_graph(at_load=False))
    assert found is None, f"import cycle through a function-level import: {' -> '.join(found)}"


def test_the_demo_library_imports_no_module_outside_it_even_inside_functions():
    graph = import_graph(at_load=False)
    demo = {m: targets for m, targets in graph.items() if m.split(".")[:2] == ["nnimaging", "demo"]}
    assert len(demo) >= 5
    outside = {m: sorted(t for t in targets if t.split(".")[:2] != ["nnimaging", "demo"])
               for m, targets in demo.items()}
    assert not any(outside.values()), f"nnimaging.demo imports topic modules: {outside}"
    found = cycle(demo)
    assert found is None, f"import cycle inside nnimaging.demo: {' -> '.join(found)}"


def test_importing_the_demo_library_imports_no_topic_module():
    code = ("import sys, nnimaging.demo\n"
            "print(sorted(m for m in sys.modules if m.startswith('nnimaging')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(eval(result.stdout))  # a printed list of names
    allowed = {"nnimaging", "nnimaging.notebook"}  # the package's __init__ and its light setup()
    assert {m for m in loaded if not m.startswith("nnimaging.demo")} <= allowed, loaded
