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
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from avseg.fingerprint import source_files as source_files  # re-exported: callers key on it here
from avseg.fingerprint import source_fingerprint as source_fingerprint
from avseg.outputs import atomic_write_bytes

Arrays = dict[str, np.ndarray]


def default_cache_dir() -> Path:
    env = os.environ.get("AVSEG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("avseg")) / "stages"



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
