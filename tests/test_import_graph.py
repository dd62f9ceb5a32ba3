"""The package's shape, read from its source with ``ast``: no import cycle between modules, no
module over the size limit, and no torch where startup must stay fast.

Only imports that run when a module is imported count (its top level, including class bodies,
``try`` and ``if`` blocks, but not ``if TYPE_CHECKING:``); an import inside a function is lazy and
may close a loop (:func:`lazy_cycles` lists those, for information).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import nasbench_harness

PACKAGE = "nasbench_harness"
ROOT = Path(nasbench_harness.__file__).parent
MAX_LINES = 400
ALLOWED_LONG: dict[str, int] = {}
"""Modules allowed over :data:`MAX_LINES` for now (module -> its line count when allowed)."""
NO_TORCH = ("analysis", "report", "tabular", "spaces")
"""Subpackages that never import torch, so ``nbh query/report/compare/figures`` start fast."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(node: ast.AST) -> Iterator[ast.stmt]:
    """The statements directly inside ``node`` (also those of its except and case clauses)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt):
            yield child
        elif isinstance(child, ast.excepthandler | ast.match_case):
            yield from child.body


def _imports(statements: Iterator[ast.stmt] | list[ast.stmt], lazy: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements run on import (``lazy``: also those in function bodies)."""
    for node in statements:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if lazy:
                yield from _imports(_statements(node), lazy)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(node.orelse, lazy)
        else:
            yield from _imports(_statements(node), lazy)


def imported_names(module: str, lazy: bool = False) -> set[str]:
    """Dotted names a module imports: ``import a.b`` gives a.b; ``from a import b`` gives a and,
    when a.b is a module of the package, a.b too. Relative imports are resolved."""
    path = modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _imports(tree.body, lazy):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        names.add(base)
        names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def graph(lazy: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at import time; ``lazy``: anywhere)."""
    known = modules()
    return {m: {n for n in imported_names(m, lazy) if n in known and n != m} for m in known}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def lazy_cycles() -> list[list[str]]:
    """Cycles that only close through imports inside functions (allowed; listed for information)."""
    eager = cycles(graph())
    return [c for c in cycles(graph(lazy=True)) if c not in eager]


def reachable(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for w in edges[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


# -- the tests --------------------------------------------------------------------------------


def test_the_walk_sees_imports() -> None:
    """The graph is not vacuous: known edges are found, lazy ones only with ``lazy``."""
    eager, lazy = graph(), graph(lazy=True)
    assert "nasbench_harness.tabular.nb201_columns" in eager["nasbench_harness.tabular.nb201_pth"]
    assert "nasbench_harness.analysis.aggregate" in eager["nasbench_harness.analysis.panels"]
    # import_nb201 reads a .pth through nb201_pth, imported inside the function
    assert "nasbench_harness.tabular.nb201_pth" not in eager["nasbench_harness.tabular.nb201_import"]
    assert "nasbench_harness.tabular.nb201_pth" in lazy["nasbench_harness.tabular.nb201_import"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    found = cycles(graph())
    assert not found, "modules that import each other at import time: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_module_over_the_line_limit() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in modules().items()}
    over = {m: n for m, n in sizes.items() if n > MAX_LINES and n > ALLOWED_LONG.get(m, 0)}
    assert not over, f"modules over {MAX_LINES} lines (split them): {over}"
    stale = [m for m in ALLOWED_LONG if sizes.get(m, 0) <= MAX_LINES]
    assert not stale, f"remove from ALLOWED_LONG, now within the limit: {stale}"


@pytest.mark.parametrize("subpackage", NO_TORCH)
def test_no_torch_at_import_time(subpackage: str) -> None:
    """Neither the subpackage nor anything it imports at import time imports torch."""
    edges = graph()
    prefix = f"{PACKAGE}.{subpackage}"
    start = {m for m in modules() if m == prefix or m.startswith(prefix + ".")}
    assert start
    offenders = {
        m: sorted(n for n in imported_names(m) if n == "torch" or n.startswith("torch."))
        for m in reachable(start, edges)
    }
    offenders = {m: names for m, names in offenders.items() if names}
    assert not offenders, f"{prefix} reaches torch at import time through {offenders}"


def test_no_torch_module_loaded_by_importing_them() -> None:
    """The same, by importing every module of those subpackages in a fresh interpreter."""
    names = sorted(m for m in modules() if any(m.startswith(f"{PACKAGE}.{s}") for s in NO_TORCH))
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not loaded, loaded[:5]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
