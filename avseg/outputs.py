"""What a run leaves for a person to look at: mask PNGs, overlays, debug views, run.json."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from avseg.errors import OutputError, UsageError, one_line
from avseg.types import FrameResult, Image

TINT = np.array([255, 40, 40], np.float32)


#: ``check_out_dir`` refuses a folder whose disk has less free space than this
MIN_FREE_BYTES = 16 * 2**20

_UMASK: list[int] = []


def _umask() -> int:
    """The process umask, read once (``os.umask`` can only be read by setting it)."""
    if not _UMASK:
        try:
            with open("/proc/self/status", encoding="ascii") as f:
                line = next(ln for ln in f if ln.startswith("Umask:"))
            _UMASK.append(int(line.split()[1], 8))
        except (OSError, StopIteration, ValueError, IndexError):
            mask = os.umask(0o022)
            os.umask(mask)
            _UMASK.append(mask)
    return _UMASK[0]


def _write_failed(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or one_line(exc)}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file.

    ``mkstemp`` creates files mode 600; they get ``0o666 & ~umask`` (644 under umask 022) like
    any file written with ``open``. A failure is an :class:`OutputError` naming ``path``.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    except OSError as exc:
        raise _write_failed(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_failed(path, exc) from None
        raise


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf) replaced by None: strict JSON has no NaN."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    return obj


def atomic_write_json(path: Path, obj: Any) -> None:
    text = json.dumps(strict_json(obj), indent=2, default=_json_default, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return strict_json(o.item())
    if isinstance(o, np.ndarray):
        return strict_json(o.tolist())
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def check_out_dir(out: Path, option: str = "--out") -> Path:
    """Make sure ``out`` can take outputs before any work starts: an existing folder this process
    can write to, or a missing one whose nearest existing parent is such a folder (nothing is
    created here). Raises a one-line UsageError naming the option and path."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{option} {out} is a file; give a folder (it is created if missing)")
    probe_dir = out
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise UsageError(f"{option} {out}: {probe_dir} is a file, so the folder cannot be created")
    try:  # access() is not enough (root, ACLs, read-only mounts): really write a file
        fd, probe = tempfile.mkstemp(dir=probe_dir, prefix=".avseg-write-test-")
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        what = "is not writable" if probe_dir == out else f"cannot be created in {probe_dir}"
        raise UsageError(f"{option} {out} {what}: {exc.strerror or one_line(exc)}") from None
    free = shutil.disk_usage(probe_dir).free
    if free < MIN_FREE_BYTES:
        raise UsageError(f"{option} {out}: only {free / 2**20:.1f} MiB free on its disk; free some space first")
    return out


def save_png(path: Path, array: np.ndarray) -> None:
    """Write a PNG atomically (a killed run never leaves a half-written mask)."""
    import io

    buf = io.BytesIO()
    PILImage.fromarray(array).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def mask_png(mask: np.ndarray) -> np.ndarray:
    return (mask.astype(np.uint8) * 255)


def _label_text(label: str | None, score: float) -> str:
    return f"{label} {score:.2f}" if label else f"{score:.2f}"


def overlay(frame: Image, result: FrameResult, alpha: float = 0.5) -> Image:
    """The frame with its mask tinted red and the kept boxes drawn with label and score."""
    out = frame.astype(np.float32).copy()
    m = result.mask
    out[m] = (1 - alpha) * out[m] + alpha * TINT
    img = PILImage.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    kept = result.kept
    for j in range(len(kept)):
        box = [float(x) for x in kept.boxes[j]]
        label = kept.labels[j] if kept.labels is not None else None
        draw.rectangle(box, outline=(255, 255, 0), width=2)
        draw.text((box[0] + 2, box[1] + 1), _label_text(label, float(kept.scores[j])), fill=(255, 255, 0))
    return np.asarray(img)


def debug_view(frame: Image, result: FrameResult) -> Image:
    """Every proposal drawn: kept ones in green, dropped ones in grey, each with its scores."""
    img = PILImage.fromarray(frame)
    draw = ImageDraw.Draw(img)
    for rec in sorted((r for r in result.trace if "box" in r), key=lambda r: r["kept"]):
        colour = (0, 255, 0) if rec["kept"] else (150, 150, 150)
        draw.rectangle(rec["box"], outline=colour, width=2 if rec["kept"] else 1)
        extra = " ".join(f"{k}={v:.2f}" for k, v in rec["scores"].items() if isinstance(v, float))
        draw.text((rec["box"][0] + 2, rec["box"][1] + 1), f"#{rec['id']} {_label_text(rec['label'], rec['score'])} {extra}",
                  fill=colour)
    return np.asarray(img)


def write_frame_outputs(out_dir: Path, stem: str, frame: Image, result: FrameResult, debug: bool = False) -> None:
    save_png(out_dir / "masks" / f"{stem}.png", mask_png(result.mask))
    save_png(out_dir / "overlays" / f"{stem}.png", overlay(frame, result))
    if debug:
        atomic_write_json(out_dir / "debug" / f"{stem}.json", {
            "frame": result.index,
            "tags": result.tags.as_dict() if result.tags is not None else None,
            "items": result.trace,
        })
        save_png(out_dir / "debug" / f"{stem}.png", debug_view(frame, result))
