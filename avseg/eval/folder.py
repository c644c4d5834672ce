"""An eval output folder's own files: the lock, ``config.json`` and the per-clip progress files.

- ``OUT/.lock`` is an OS file lock (``filelock``) held by the eval using the folder, and
  ``OUT/.lock.holder`` says who that is (host, pid): a second eval on the same folder, from this
  machine or another one sharing it, stops with one line naming them; the OS releases the lock
  of a process that ended, however it ended.
- ``OUT/config.json`` says which pipeline made the results; a different one is refused (or, with
  ``--overwrite``, the old progress is discarded).
- ``OUT/clips/<id>.json`` marks a finished clip and holds its scores.

A progress or config file that cannot be read (truncated by a full disk, edited by hand) is
never guessed about: the eval stops and names the file together with the command that repairs
it, ``--repair``. Repair recomputes exactly the clips whose progress files are unreadable and
rewrites an unreadable ``config.json``; every readable finished clip is kept. Each progress
file records a hash of the config that made it: a clip made by another config (``config.json``
was lost, or files were copied in) is refused the same way, and recomputed by a repair.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from avseg import command
from avseg.errors import UsageError, one_line
from avseg.eval.metrics import PR_NUM, ClipScores, SemanticClipScores
from avseg.outputs import atomic_write_json

STATE_DIR = "clips"
LOCK = ".lock"
HOLDER = ".lock.holder"


def config_id(ident: dict[str, Any]) -> str:
    """A short hash of a config identity, stored in each progress file."""
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


class FolderLock:
    """``with FolderLock(out):`` holds ``out/.lock`` for the duration of an eval.

    The lock is an OS file lock taken through ``filelock`` (released by the OS when the process
    ends, however it ends, so no lock is ever stale); ``out/.lock.holder`` records who holds it
    (host, pid, start time), so that a second eval, on this machine or another one sharing the
    folder, can say who is using it.
    """

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / LOCK
        self.holder_path = Path(out) / HOLDER
        self._lock: Any = None

    def __enter__(self) -> FolderLock:
        from filelock import FileLock, Timeout

        for p in (self.path, self.holder_path):  # the lock truncates its file: never through a link
            if p.is_symlink() or (p.exists() and not p.is_file()):
                raise UsageError(f"{p} is a link or not a file; avseg writes it to lock the folder: remove it")
        lock = FileLock(str(self.path), timeout=0)
        try:
            lock.acquire(blocking=False)
        except Timeout:
            raise UsageError(
                f"{self.path.parent} is in use by another avseg eval ({self._holder()}; lock file {self.path}); "
                "wait for it to finish or use another --out") from None
        except OSError as exc:
            raise UsageError(f"cannot take the lock {self.path}: {exc.strerror or exc}") from None
        self._lock = lock
        atomic_write_json(self.holder_path, {"host": socket.gethostname(), "pid": os.getpid(),
                                             "since": time.strftime("%Y-%m-%d %H:%M:%S %z")})
        return self

    def _holder(self) -> str:
        try:
            h = json.loads(self.holder_path.read_text(encoding="utf-8"))
            return f"pid {int(h['pid'])} on host {str(h['host'])[:100]}, since {str(h['since'])[:40]}"
        except (OSError, ValueError, KeyError, TypeError):
            return "holder unknown"

    def __exit__(self, *exc: Any) -> None:
        if self._lock is None:
            return
        try:
            h = json.loads(self.holder_path.read_text(encoding="utf-8"))
            if h.get("pid") == os.getpid() and h.get("host") == socket.gethostname():
                self.holder_path.unlink(missing_ok=True)
        except (OSError, ValueError, AttributeError):
            pass
        self._lock.release()
        self._lock = None


def _repair_hint() -> str:
    return f"repair it with: {command.shown(['--repair'])}"


def component_change(old: Any, new: dict[str, dict[str, str]]) -> str | None:
    """The first difference in provider, version or fingerprint, as words; None when equal."""
    if not isinstance(old, dict):
        return "it records no component versions"
    for name, now in new.items():
        was = old.get(name)
        if not isinstance(was, dict):
            continue
        for field in ("provider", "version", "fingerprint"):
            if was.get(field) != now.get(field):
                return f"{name} {field} changed from {was.get(field)!r} to {now.get(field)!r}"
    return None


def check_config(out: Path, ident: dict[str, Any], overwrite: bool, repair: bool) -> None:
    """Refuse a folder holding another config's results; write ``config.json``."""
    cfg = out / "config.json"
    if cfg.exists() and not overwrite:
        try:
            old = json.loads(cfg.read_text(encoding="utf-8"))
            if not isinstance(old, dict):
                raise ValueError(f"expected a JSON object, got {type(old).__name__}")
        except (OSError, ValueError) as exc:
            if not repair:
                raise UsageError(f"{cfg} is unreadable ({one_line(exc, 80)}); finished clips are kept when you "
                                 f"{_repair_hint()}") from None
            old = ident  # progress files carry the config hash: another config's clips are redone
        if old != ident and _legacy_config(old.get("pipeline")):
            raise UsageError(f"{cfg} records its pipeline in the form avseg wrote before steps (tagger/proposer/"
                             "filters keys); its results cannot be resumed: choose another --out or pass --overwrite")
        if old != ident:
            changed = None
            if "components" in ident and {k: v for k, v in old.items() if k != "components"} == {
                    k: v for k, v in ident.items() if k != "components"}:
                changed = component_change(old.get("components"), ident["components"])
            if changed:
                raise UsageError(f"{out} holds results made by other code: {changed}; "
                                 "choose another --out or pass --overwrite")
            raise UsageError(
                f"{out} holds results of a different pipeline config; choose another --out or pass --overwrite"
            )
    if overwrite and (out / STATE_DIR).exists():
        for f in (out / STATE_DIR).glob("*.json"):
            f.unlink()
    atomic_write_json(cfg, ident)


def _legacy_config(pipeline: Any) -> bool:
    """Whether a config.json's (untrusted) ``pipeline`` is the previous version's record: the
    legacy stage keys, with ``steps`` as "kind:name" strings (today's steps are mappings)."""
    if not isinstance(pipeline, dict):
        return False
    steps = pipeline.get("steps")
    return any(k in pipeline for k in ("tagger", "proposer", "embedder", "segmenter", "filters")) or (
        isinstance(steps, list) and any(isinstance(x, str) for x in steps))


def _unit(x: float) -> bool:
    return -1e-9 <= x <= 1.0 + 1e-9  # False for NaN


def _check_state(s: Any, stem: str, semantic: bool) -> None:
    """Everything a resumed eval reads from a progress file, so that a damaged one is reported
    (and repaired) instead of crashing the summary or skewing the scores."""
    if not isinstance(s, dict):
        raise ValueError(f"expected a JSON object, got {type(s).__name__}")
    if s.get("clip_id") != stem:
        raise ValueError(f"clip_id {s.get('clip_id')!r} does not match the file name")
    b = ClipScores.from_dict(s["binary"])
    n = len(b.frames)
    if b.clip_id != stem:
        raise ValueError(f"binary.clip_id {b.clip_id!r} does not match the file name")
    if len(b.iou) != n or len(b.fcurves) != n:
        raise ValueError(f"{len(b.iou)} IoUs and {len(b.fcurves)} F curves for {n} frames")
    if not all(_unit(x) for x in b.iou):
        raise ValueError("an IoU outside [0, 1]")
    if not all(c is None or (len(c) == PR_NUM and all(_unit(x) for x in c)) for c in b.fcurves):
        raise ValueError(f"an F curve that is not {PR_NUM} values in [0, 1]")
    warnings = s.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise ValueError("warnings: expected a list of strings")
    if not isinstance(s.get("category"), str | None):
        raise ValueError("category: expected a string")
    pm, pe = s.get("plugin_metrics", {}), s.get("plugin_metric_errors", {})
    if not isinstance(pm, dict) or not all(
            isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) and math.isfinite(x) for x in v)
            for v in pm.values()):
        raise ValueError("plugin_metrics: expected a mapping of [sum, count] pairs")
    if not isinstance(pe, dict) or not all(isinstance(v, str) for v in pe.values()):
        raise ValueError("plugin_metric_errors: expected a mapping of strings")
    if semantic:
        sem = SemanticClipScores.from_dict(s["semantic"])
        rows = [*sem.inter, *sem.pred, *sem.label]
        if not len(sem.inter) == len(sem.pred) == len(sem.label) == len(sem.frames):
            raise ValueError("semantic: the per-frame area lists differ in length")
        if rows and (len({len(r) for r in rows}) != 1 or min(min(r, default=0) for r in rows) < 0):
            raise ValueError("semantic: per-class areas of unequal length or negative")
        _ = sem.j


def load_states(out: Path, ident: dict[str, Any] | None = None, semantic: bool = False,
                repair: bool = False, wanted: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """The finished clips' states. Unreadable files stop the eval with the ``--repair`` command;
    with ``repair`` they are deleted (and so recomputed), as are states made by another config."""
    states: dict[str, dict[str, Any]] = {}
    bad: list[tuple[Path, str]] = []
    other: list[Path] = []
    cid = config_id(ident) if ident is not None else None
    for f in sorted((out / STATE_DIR).glob("*.json")):
        if wanted is not None and f.stem not in wanted:
            continue
        try:
            s = json.loads(f.read_text(encoding="utf-8"))
            _check_state(s, f.stem, semantic)
        except Exception as exc:  # any malformed content: JSON, keys, types, shapes
            bad.append((f, one_line(exc, 80)))
            continue
        if cid is not None and s.get("config_id", cid) != cid:  # config.json was lost, or files were copied in
            bad.append((f, "made by another config"))
            other.append(f)
            continue
        states[s["clip_id"]] = s
    if bad and not repair:
        first, why = next(((f, w) for f, w in bad if f not in other), bad[0])
        more = f" and {len(bad) - 1} more progress files" if len(bad) > 1 else ""
        if first in other:
            raise UsageError(f"progress file {first} was made by a different pipeline config{more}; choose another "
                             f"--out, or recompute just those clips with: {command.shown(['--repair'])}")
        raise UsageError(f"progress file {first} is unreadable ({why}){more}; recompute just those clips "
                         f"with: {command.shown(['--repair'])}")
    for f, _ in bad:
        f.unlink(missing_ok=True)
    return states
