"""The import graph of avseg/ and plugins/: no cycle between modules, no plugin importing another.

What counts as an import (parsed with :mod:`ast`, nothing is imported):

- every ``import`` / ``from ... import`` statement, at module level or inside a function, class,
  ``try`` or ``if``: a lazy import inside a function still makes the two modules depend on each
  other, and a cycle of lazy imports is a design circle that only import order keeps working;
- except those under ``if TYPE_CHECKING:`` (annotations only, never run);
- ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``; the
  parent packages Python executes on the way (``pkg/__init__.py``) are not edges, or every package
  whose ``__init__`` registers its submodules would be a cycle with them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for avseg/ and every package under plugins/."""
    out: dict[str, Path] = {}
    bases = [(root, ["avseg"])]
    plugins = root / "plugins"
    if plugins.is_dir():
        bases.append((plugins, sorted(p.name for p in plugins.iterdir() if (p / "__init__.py").is_file())))
    for base, packages in bases:
        for pkg in packages:
            for f in sorted((base / pkg).rglob("*.py")):
                parts = list(f.relative_to(base).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                out[".".join(parts)] = f
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _nearest_module(name: str, files: dict[str, Path]) -> str | None:
    parts = name.split(".")
    while parts and ".".join(parts) not in files:
        parts.pop()
    return ".".join(parts) or None


def imported_modules(module: str, path: Path, files: dict[str, Path]) -> set[str]:
    """The modules of the tree that ``module`` imports (relative imports resolved)."""
    found: set[str | None] = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for stmt in child.orelse:
                    visit_one(stmt)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(_nearest_module(a.name, files) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in files else _nearest_module(base, files))
        else:
            visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return {m for m in found if m is not None and m != module}


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the modules of the tree it imports."""
    files = module_files(root)
    return {module: imported_modules(module, path, files) for module, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a -> ... -> a) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan (recursive: the trees hold a few hundred modules)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return [_cycle_path(graph, set(c), c[0]) for c in components]


def _cycle_path(graph: dict[str, set[str]], members: set[str], start: str) -> list[str]:
    """A shortest path start -> ... -> start inside one strongly connected component (breadth first)."""
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is in no cycle")


def cross_plugin_imports(graph: dict[str, set[str]]) -> list[str]:
    """'plugins/X imports plugins/Y' edges (the core, avseg, is no plugin)."""
    out = []
    for module, deps in sorted(graph.items()):
        top = module.split(".")[0]
        if top == "avseg":
            continue
        for d in sorted(deps):
            other = d.split(".")[0]
            if other not in ("avseg", top):
                out.append(f"{module} imports {d}")
    return out


# ---------------------------------------------------------------------------- the project


def test_no_import_cycles_in_avseg_or_plugins() -> None:
    graph = import_graph(ROOT)
    assert "avseg.session" in graph and "avseg_sam.model" in graph  # the walk found both trees
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_no_plugin_imports_another_plugin() -> None:
    bad = cross_plugin_imports(import_graph(ROOT))
    assert not bad, "; ".join(bad)


# ---------------------------------------------------------------------------- the checker itself


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return tmp_path


def test_checker_reports_a_cycle_made_by_a_lazy_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "avseg/__init__.py": "",
        "avseg/a.py": "from avseg.b import x\n",
        "avseg/b.py": "def f():\n    from avseg import c\n",
        "avseg/c.py": "import avseg.a\n",
        "avseg/d.py": "from avseg.a import y\n",  # imports into the cycle, is not part of it
    })
    assert cycles(import_graph(root)) == [["avseg.a", "avseg.b", "avseg.c", "avseg.a"]]


def test_checker_ignores_type_checking_imports_and_package_parents(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "avseg/__init__.py": "",
        "avseg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from avseg.b import B\n",
        "avseg/b.py": "from avseg.a import A\n",
        "plugins/p/__init__.py": "from p.sub import thing\n",  # a package registering its submodule
        "plugins/p/sub.py": "from p.other import helper\n",
        "plugins/p/other.py": "",
    })
    graph = import_graph(root)
    assert cycles(graph) == []
    assert graph["p.sub"] == {"p.other"}


def test_checker_reports_relative_and_cross_plugin_imports(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "avseg/__init__.py": "",
        "avseg/x.py": "",
        "plugins/p/__init__.py": "",
        "plugins/p/a.py": "from . import b\nfrom avseg import x\n",
        "plugins/p/b.py": "def f():\n    from .a import g\n",
        "plugins/q/__init__.py": "",
        "plugins/q/m.py": "def f():\n    from p.a import thing\n",
    })
    graph = import_graph(root)
    assert graph["p.a"] == {"p.b", "avseg.x"}
    assert cycles(graph) == [["p.a", "p.b", "p.a"]]
    assert cross_plugin_imports(graph) == ["q.m imports p.a"]
