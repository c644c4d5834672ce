"""The on-disk stage cache: model-stage outputs keyed by component, config and input identity.

An entry is ``<dir>/<namespace>/<key[:2]>/<key>.npz`` (arrays) plus ``.json`` (metadata),
never pickle. Writes go to a temporary file in the same folder and are renamed into place,
so a reader (another process too) sees a whole entry or none.

Entries are read back as untrusted input (a shared folder, a damaged disk, a hand edit): each
``.npz`` holds a ``__avseg__`` record of its arrays (names, dtypes, shapes) and a sha256 of their
content. An entry whose record is missing or does not match, whose members are compressed (a zip
that would inflate beyond its stored size) or that cannot be read is a **miss**: recomputed,
counted as ``cache.invalid`` and warned about once per process, never used and never a traceback.

The folder holds a ``CACHEDIR.TAG`` written by avseg; ``clear`` refuses a folder without it and
removes only files laid out as entries (and the folders they leave empty), nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from avseg.errors import UsageError, one_line
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


#: the standard cache-directory tag (https://bford.info/cachedir/): marks a folder as ours
TAG = "CACHEDIR.TAG"
TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by avseg (the stage cache).\n"
            "# avseg cache clear removes only the entries avseg wrote here.\n")
RECORD = "__avseg__"
_ENTRY = re.compile(r"\.?[0-9a-f]{40}\.(npz|json)([a-z0-9_]{8}\.tmp)?")  # mkstemp: .NAME????????.tmp
_WARNED: set[str] = set()


def content_hash_of(arrays: Arrays) -> str:
    """sha256 over each array's name, dtype, shape and bytes (in name order)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _record(arrays: Arrays) -> dict[str, Any]:
    return {"sha256": content_hash_of(arrays),
            "arrays": {k: [v.dtype.str, list(v.shape)] for k, v in sorted(arrays.items())}}


class InvalidEntry(Exception):
    """A cache entry that must not be used (the message says why)."""


def _checked_load(path: Path) -> Arrays:
    """The arrays of the entry at ``path``, or :class:`InvalidEntry` (FileNotFoundError: no entry)."""
    size = path.stat().st_size
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        for info in infos:  # a member stored uncompressed cannot inflate beyond the file's size
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                raise InvalidEntry(f"member {info.filename!r} is compressed")
        if sum(i.file_size for i in infos) > size:
            raise InvalidEntry("its members are larger than the file")
        names = [i.filename for i in infos]
        if f"{RECORD}.npy" not in names:
            raise InvalidEntry("it has no integrity record (written by another version or another program)")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    try:
        record = json.loads(arrays.pop(RECORD).tobytes().decode())
        layout, digest = record["arrays"], record["sha256"]
        if not isinstance(layout, dict) or not isinstance(digest, str):
            raise TypeError("record fields")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
        raise InvalidEntry("its integrity record is unreadable") from None
    if sorted(layout) != sorted(arrays):
        raise InvalidEntry(f"it holds arrays {sorted(arrays)} but records {sorted(layout)}")
    for k, a in arrays.items():
        if layout[k] != [a.dtype.str, list(a.shape)]:
            raise InvalidEntry(f"array {k!r} is {a.dtype.str} {list(a.shape)} but recorded as {layout[k]}")
    if content_hash_of(arrays) != digest:
        raise InvalidEntry("its content does not match its recorded sha256")
    return arrays


class StageCache:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        #: where rejected entries are counted (``cache.invalid``); the Runtime sets its counters
        self.counters: dict[str, int] | Any = {}
        self.rejected: list[str] = []

    def is_cache(self) -> bool:
        return (self.root / TAG).is_file() and not (self.root / TAG).is_symlink()

    def _mark(self) -> None:
        if not (self.root / TAG).exists():
            atomic_write_bytes(self.root / TAG, TAG_TEXT.encode())

    def _reject(self, path: Path, why: str) -> None:
        self.counters["cache.invalid"] = self.counters.get("cache.invalid", 0) + 1
        self.rejected.append(f"{path}: {why}")
        if str(self.root) not in _WARNED:
            _WARNED.add(str(self.root))
            sys.stderr.write(f"warning: stage cache entry {path} not used ({why}); it is recomputed "
                             "(later ones are counted as cache.invalid)\n")

    def _path(self, namespace: str, key: str, suffix: str) -> Path:
        safe_ns = "/".join(p.replace("..", "_") for p in namespace.split("/") if p)
        return self.root / safe_ns / key[:2] / f"{key}{suffix}"

    def get_arrays(self, namespace: str, key: str) -> Arrays | None:
        path = self._path(namespace, key, ".npz")
        try:
            return _checked_load(path)
        except FileNotFoundError:
            return None
        except InvalidEntry as exc:
            self._reject(path, str(exc))
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
            self._reject(path, f"unreadable: {one_line(exc, 120)}")
        return None  # a miss: recomputed and rewritten

    def put_arrays(self, namespace: str, key: str, arrays: Arrays, meta: dict[str, Any] | None = None) -> None:
        if RECORD in arrays:
            raise ValueError(f"cache: {RECORD!r} is a reserved array name")
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        record = np.frombuffer(json.dumps(_record(arrays)).encode(), np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays, **{RECORD: record})  # type: ignore[arg-type]
        self._mark()
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

    def _entries(self) -> Iterable[tuple[str, Path]]:
        """``(namespace, file)`` of every file laid out as an entry (or its temporary file); never
        follows a symbolic link out of the folder."""
        if not self.root.is_dir():
            return
        for dirpath, _dirs, filenames in os.walk(self.root, followlinks=False):
            rel = Path(dirpath).relative_to(self.root).parts
            if len(rel) < 2 or not re.fullmatch(r"[0-9a-f]{2}", rel[-1]):
                continue
            for name in filenames:
                p = Path(dirpath, name)
                if _ENTRY.fullmatch(name) and name.lstrip(".")[:2] == rel[-1] and not p.is_symlink():
                    yield "/".join(rel[:-1]), p

    def info(self) -> dict[str, dict[str, int]]:
        """Entries and bytes per component namespace (e.g. ``stage/owod``, ``memo/sam.image``)."""
        out: dict[str, dict[str, int]] = {}
        for ns, f in self._entries():
            d = out.setdefault(ns, {"entries": 0, "bytes": 0})
            d["entries"] += f.name.endswith(".npz")
            with contextlib.suppress(OSError):
                d["bytes"] += f.lstat().st_size
        return {k: v for k, v in out.items() if v["entries"] or v["bytes"]}

    def clear(self, components: Iterable[str] | None = None) -> int:
        """Remove every entry, or only the named components' entries; returns entries removed.

        Only files laid out as entries are removed, then the folders left empty; the folder must
        hold avseg's ``CACHEDIR.TAG`` (a folder that is not a cache is refused, and an empty one
        is left alone)."""
        if not self.root.exists():
            return 0
        if not self.root.is_dir():
            raise UsageError(f"cache clear: {self.root} is a file, not a cache folder; nothing removed")
        if not self.is_cache():
            if not any(self.root.iterdir()):
                return 0
            raise UsageError(f"cache clear: {self.root} is not an avseg stage cache (it has no {TAG} written by "
                             "avseg); nothing removed: check --cache-dir and AVSEG_CACHE_DIR")
        names = list(components) if components is not None else None
        n = 0
        dirs: set[Path] = set()
        for ns, f in list(self._entries()):
            parts = ns.split("/")  # stage/<component>, memo/<component-what>/<variant>/.../<dtype>
            comp = parts[1] if len(parts) > 1 else parts[0]
            if names is not None and not any(comp.startswith(c) for c in names):
                continue
            try:
                f.unlink()
            except FileNotFoundError:
                continue
            n += f.name.endswith(".npz") and not f.name.startswith(".")
            dirs.update(p for p in f.parents if self.root in p.parents)
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty: a file we did not write keeps its folder
        return n
