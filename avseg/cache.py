"""The on-disk stage cache: model-stage outputs keyed by component, config and input identity.

An entry is ``<dir>/<namespace>/<key[:2]>/<key>.npz`` (arrays) plus ``.json`` (metadata),
never pickle. Writes go to a temporary file in the same folder and are renamed into place,
so a reader (another process too) sees a whole entry or none.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from avseg.outputs import atomic_write_bytes

Arrays = dict[str, np.ndarray]


def default_cache_dir() -> Path:
    env = os.environ.get("AVSEG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("avseg")) / "stages"


_FINGERPRINTS: dict[tuple[str, str], str] = {}
MAX_PACKAGE_FILES = 500
CORE = "avseg"


def _package_files(module: str) -> list[Path]:
    """Every ``.py`` file of the top-level package of ``module`` (a plugin's other modules, e.g. its
    tiny model, change its output too), or the module's own file when it is not in a package."""
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    if not file:
        return []
    path = Path(file).resolve()
    top = sys.modules.get(module.split(".")[0])
    top_file = getattr(top, "__file__", None)
    if top is None or not top_file or Path(top_file).name != "__init__.py":
        return [path]
    root = Path(top_file).resolve().parent
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    # a component inside a very large package: its own folder is enough to notice an edit
    return files if len(files) <= MAX_PACKAGE_FILES else sorted(path.parent.glob("*.py"))


def _core_module_file(core: Path, dotted: str) -> Path | None:
    """The file of core module ``avseg.a.b`` (``a/b.py`` or ``a/b/__init__.py``), or None."""
    parts = dotted.split(".")[1:]
    if not parts:
        return None
    for cand in (core.joinpath(*parts).with_suffix(".py"), core.joinpath(*parts, "__init__.py")):
        if cand.is_file():
            return cand.resolve()
    return None


def _core_imports(file: Path, core: Path, reexports: dict[str, str]) -> set[Path]:
    """The core (``avseg.*``) module files that ``file`` imports anywhere (module level or lazily
    inside a function), found statically so that the result does not depend on what ran."""
    import ast

    try:
        tree = ast.parse(file.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith(CORE + "."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == CORE:  # from avseg import X: a submodule, or a name it re-exports
                names.update(f"{CORE}.{a.name}" if _core_module_file(core, f"{CORE}.{a.name}")
                             else reexports.get(a.name, "") for a in node.names)
            elif node.module.startswith(CORE + "."):
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
    return {f for n in names if n and (f := _core_module_file(core, n)) is not None}


def _core_dependencies(files: list[Path]) -> list[Path]:
    """The avseg core files that ``files`` import, directly or through other core files: a helper
    shared by components (the region crop of avseg.regions) changes their output too."""
    import ast

    core_init = sys.modules.get(CORE)
    init_file = getattr(core_init, "__file__", None)
    if not init_file:
        return []
    core = Path(init_file).resolve().parent
    reexports: dict[str, str] = {}
    try:
        for node in ast.walk(ast.parse(Path(init_file).read_bytes())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(CORE + "."):
                reexports.update({a.asname or a.name: node.module for a in node.names})
    except (OSError, SyntaxError, ValueError):
        pass
    seen: set[Path] = set()
    todo = [f for f in files]
    while todo:
        for dep in _core_imports(todo.pop(), core, reexports):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return sorted(seen - set(files))


def source_files(cls: type | str) -> list[Path]:
    """The files whose content defines ``cls`` (a class, or a module name): the files of its
    top-level package (see :func:`_package_files`) plus the avseg core modules those import,
    transitively. Empty when the source is not on disk."""
    module = cls if isinstance(cls, str) else cls.__module__
    own = _package_files(module)
    return own + _core_dependencies(own)


def source_fingerprint(cls: type | str) -> str:
    """A hash of :func:`source_files` of ``cls`` (a class or a module name): editing the
    component's code, or a core helper it uses (even without a version bump, as in an editable
    install) changes it. Computed once per module per content of the module's own file."""
    module = cls if isinstance(cls, str) else cls.__module__
    own_file = getattr(sys.modules.get(module), "__file__", None)
    try:
        own_hash = hashlib.sha256(Path(own_file).read_bytes()).hexdigest() if own_file else ""
    except OSError:
        own_hash = ""
    fp = _FINGERPRINTS.get((module, own_hash))
    if fp is None:
        h = hashlib.sha256()
        files = source_files(module)
        root = Path(os.path.commonpath(files)) if files else Path()
        for f in files:
            try:
                data = f.read_bytes()
            except OSError:
                continue
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + data + b"\0")
        fp = h.hexdigest()[:16] if files else "no-source"
        _FINGERPRINTS[(module, own_hash)] = fp
    return fp


def make_key(*parts: Any) -> str:
    """A stable hex key from JSON-able parts (component, version, params, input identity)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:40]


class StageCache:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, namespace: str, key: str, suffix: str) -> Path:
        safe_ns = "/".join(p.replace("..", "_") for p in namespace.split("/") if p)
        return self.root / safe_ns / key[:2] / f"{key}{suffix}"

    def get_arrays(self, namespace: str, key: str) -> Arrays | None:
        path = self._path(namespace, key, ".npz")
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, zipfile.BadZipFile):
            return None  # a damaged entry is a miss; it will be rewritten

    def put_arrays(self, namespace: str, key: str, arrays: Arrays, meta: dict[str, Any] | None = None) -> None:
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
        if meta is not None:
            atomic_write_bytes(self._path(namespace, key, ".json"), json.dumps(meta, default=str).encode())
        atomic_write_bytes(self._path(namespace, key, ".npz"), buf.getvalue())

    def get_meta(self, namespace: str, key: str) -> dict[str, Any] | None:
        path = self._path(namespace, key, ".json")
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def info(self) -> dict[str, dict[str, int]]:
        """Entries and bytes per component namespace (the first path part below memo/ or stage/)."""
        out: dict[str, dict[str, int]] = {}
        if not self.root.exists():
            return out
        for f in self.root.rglob("*.npz"):
            rel = f.relative_to(self.root).parts
            comp = "/".join(rel[:2]) if len(rel) > 3 else rel[0]
            d = out.setdefault(comp, {"entries": 0, "bytes": 0})
            d["entries"] += 1
            d["bytes"] += f.stat().st_size + (f.with_suffix(".json").stat().st_size if f.with_suffix(".json").exists() else 0)
        return out

    def clear(self, components: Iterable[str] | None = None) -> int:
        """Remove everything, or only the named components' entries; returns entries removed."""
        if not self.root.exists():
            return 0
        info = self.info()
        targets = [c for c in info if components is None or any(c.split("/")[-1].startswith(n) for n in components)]
        n = sum(info[c]["entries"] for c in targets)
        if components is None:
            shutil.rmtree(self.root)
        else:
            for c in targets:
                shutil.rmtree(self.root / c, ignore_errors=True)
        return n
