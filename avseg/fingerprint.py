"""The source fingerprint of a component: a hash of the code that defines it, and nothing else.

It covers the component's own module and every module that module imports (at module level or
lazily inside a function, found statically), transitively, as long as the imported module belongs
to the component's own distribution or to avseg. Each module enters the hash as its *dotted name*
and the *content* of its file, never a path, so the same code gives the same fingerprint installed
editable or from a wheel, at any path, on any machine; editing a module the component never
imports (a plugin's CLI command, say) leaves it unchanged, while editing an avseg helper it does
import (:mod:`avseg.regions`) changes it.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from importlib.machinery import PathFinder
from pathlib import Path

CORE = "avseg"

_StatKey = tuple[int, int, int]
_PARSED: dict[str, tuple[_StatKey, str, frozenset[str]]] = {}  # file -> (stat, sha256, imports)
_LOCATED: dict[str, tuple[Path, bool] | None] = {}


def _stat_key(path: Path) -> _StatKey | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def locate(name: str) -> tuple[Path, bool] | None:
    """The ``.py`` file of module ``name`` and whether it is a package, found without importing it
    (an imported module's ``__file__`` first). None for a built-in, compiled or missing module."""
    mod = sys.modules.get(name)
    file = getattr(mod, "__file__", None)
    if isinstance(file, str) and file.endswith(".py"):
        return Path(file), hasattr(mod, "__path__")
    if name in _LOCATED:
        return _LOCATED[name]
    parent, _, _ = name.rpartition(".")
    search: list[str] | None = None
    if parent:
        pmod = sys.modules.get(parent)
        if pmod is not None and hasattr(pmod, "__path__"):
            search = list(pmod.__path__)
        else:
            found = locate(parent)
            if found is None or not found[1]:
                _LOCATED[name] = None
                return None
            search = [str(found[0].parent)]
    try:
        spec = PathFinder.find_spec(name, search)
    except (ImportError, ValueError, OSError, KeyError):  # KeyError: a namespace subfolder of an unimported package
        spec = None
    origin = getattr(spec, "origin", None)
    result = (Path(origin), spec.submodule_search_locations is not None) \
        if spec is not None and isinstance(origin, str) and origin.endswith(".py") else None
    _LOCATED[name] = result
    return result


def _walk(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (never run)."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def _imports(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Dotted names of the modules a module's code may import (absolute and relative imports,
    ``importlib.import_module("constant")``); ``from pkg import x`` gives ``pkg.x`` when that is a
    module, else ``pkg`` (the name is defined, or re-exported, there)."""
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 >= len(parts):  # beyond the top-level package: Python refuses it
                    continue
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module and base else (node.module or base)
            else:
                base = node.module or ""  # never empty: only a relative import may omit the module
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if a.name != "*" and locate(sub) is not None else base)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"):
            out.add(node.args[0].value)
    return out


def _parsed(path: Path, name: str, is_package: bool) -> tuple[str, frozenset[str]] | None:
    """(content hash, imported module names) of a file, re-read only when its stat changes."""
    key = _stat_key(path)
    if key is None:
        return None
    cached = _PARSED.get(str(path))
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    try:
        data = path.read_bytes()
        tree = ast.parse(data)
    except (OSError, SyntaxError, ValueError):
        return None
    entry = (key, hashlib.sha256(data).hexdigest(), frozenset(_imports(tree, name, is_package)))
    _PARSED[str(path)] = entry
    return entry[1], entry[2]


def source_modules(cls: type | str) -> dict[str, Path]:
    """The modules whose code defines ``cls`` (a class, or a module name), by dotted name: its own
    module and what that imports, transitively, from its own top-level package and from avseg.

    The component's distribution is its top-level package: which other top-level names a
    distribution installs is known only from install metadata, which an editable install records
    differently from a wheel, and the fingerprint must not depend on how the code was installed."""
    module = cls if isinstance(cls, str) else cls.__module__
    ours = {module.split(".")[0], CORE}
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or name.split(".")[0] not in ours:
            continue
        found = locate(name)
        if found is None:
            continue
        parsed = _parsed(found[0], name, found[1])
        if parsed is None:
            continue
        seen[name] = found[0]
        todo.extend(parsed[1])
    return dict(sorted(seen.items()))


def source_files(cls: type | str) -> list[Path]:
    """The files of :func:`source_modules` (for tests and ``--debug``)."""
    return list(source_modules(cls).values())


def source_fingerprint(cls: type | str) -> str:
    """A hash over (dotted module name, file content) of :func:`source_modules` of ``cls``;
    ``no-source`` when its source is not on disk."""
    h = hashlib.sha256()
    modules = source_modules(cls)
    for name, path in modules.items():
        parsed = _parsed(path, name, path.name == "__init__.py")
        if parsed is not None:
            h.update(name.encode() + b"\0" + parsed[0].encode() + b"\0")
    return h.hexdigest()[:16] if modules else "no-source"


def clear_caches() -> None:
    """Forget located modules (after ``sys.path`` changed, say)."""
    _LOCATED.clear()


__all__ = ["source_fingerprint", "source_files", "source_modules", "locate", "clear_caches"]
