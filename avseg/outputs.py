"""What a run leaves for a person to look at: mask PNGs, overlays, debug views, run.json."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from avseg.errors import OutputError, UsageError, one_line
from avseg.palette import PALETTE, _font
from avseg.trace import to_json as trace_json
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


#: box colours of kept objects (dropped ones are grey); the legend repeats each colour
DROPPED = (160, 160, 160)
LEGEND_ROWS = 24  # at most this many proposals are drawn and listed; all are in debug/*.json


def _short(text: str | None, n: int = 14) -> str:
    text = (text or "").strip()
    return text if len(text) <= n else text[: n - 1] + "~"


def _legend_lines(result: FrameResult, rows: Sequence[Mapping[str, Any]], colours: dict[int, tuple[int, int, int]],
                  n_boxes: int) -> list[tuple[str, tuple[int, int, int]]]:
    lines: list[tuple[str, tuple[int, int, int]]] = []
    white, soft = (235, 235, 235), (180, 180, 180)
    if result.tags is not None:
        top = ", ".join(f"{_short(n, 12)} {p:.2f}" for n, p in list(result.tags.as_dict().items())[:3])
        lines.append(("audio: " + (top or "(no tag kept)"), white))
    kept = sum(1 for r in result.trace if "box" in r and r["kept"])
    lines.append((f"kept {kept} of {n_boxes} proposals", white))
    for r in rows:
        label = _short(r.get("label")) or "object"
        head = f"#{r['id']} {label} {float(r['score']):.2f}"
        head += "  kept" if r["kept"] else f"  drop:{_short(r.get('dropped_by'), 16)}"
        colour = colours[r["id"]] if r["kept"] else DROPPED
        scores = ", ".join(f"{_short(k, 12)} {v:.2f}" for k, v in list(r.get("scores", {}).items())[:3]
                           if isinstance(v, (int, float)))
        lines.append((f"{head}  {scores}" if scores else head, colour))  # one line per proposal
    if n_boxes > len(rows):
        lines.append((f"+{n_boxes - len(rows)} more in the debug JSON", soft))
    return lines


def debug_view(frame: Image, result: FrameResult) -> Image:
    """Every proposal numbered on the frame (kept in colour, dropped in grey) and, beside the
    frame, a legend: the audio tags, and per number its short label, score, fate and filter scores.

    Small frames are enlarged so that numbers stay readable; at most ``LEGEND_ROWS`` proposals (fewer on short frames)
    (kept first, then the best dropped) are drawn, the rest are in the debug JSON.
    """
    h, w = frame.shape[:2]
    scale = max(1, int(np.ceil(320 / max(1, min(h, w)))))
    img = PILImage.fromarray(frame)
    if scale > 1:
        img = img.resize((w * scale, h * scale), PILImage.Resampling.NEAREST)
    fs = max(13, img.height // 28)
    font = _font(fs)
    pad, step = fs // 2, int(fs * 1.35)
    boxes = [r for r in result.trace if "box" in r]
    n_rows = min(LEGEND_ROWS, max(8, (img.height - 2 * pad) // step - 3))  # about the frame's height
    rows = sorted(boxes, key=lambda r: (not r["kept"], -float(r["score"])))[:n_rows]
    kept_ids = [r["id"] for r in rows if r["kept"]]
    colours = {i: PALETTE[k % len(PALETTE)] for k, i in enumerate(kept_ids)}
    draw = ImageDraw.Draw(img)
    line = max(2, fs // 6)
    for r in reversed(rows):  # kept boxes drawn last, on top
        colour = colours.get(r["id"], DROPPED)
        x0, y0, x1, y1 = (float(v) * scale for v in r["box"])
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=line if r["kept"] else 1)
        tag = str(r["id"])
        tw, th = draw.textbbox((0, 0), tag, font=font)[2:]
        tx = min(max(0.0, x0), img.width - tw - 4)
        ty = min(max(0.0, y0), img.height - th - 4)
        draw.rectangle([tx, ty, tx + tw + 4, ty + th + 4], fill=colour)
        draw.text((tx + 2, ty + 1), tag, fill=(0, 0, 0), font=font)
    lines = _legend_lines(result, rows, colours, len(boxes))
    measure = ImageDraw.Draw(PILImage.new("RGB", (1, 1)))
    width = max(16 * fs, *(int(measure.textlength(t, font=font)) for t, _ in lines)) + 2 * pad
    height = max(img.height, 2 * pad + step * len(lines))
    canvas = PILImage.new("RGB", (img.width + width, height), (28, 28, 28))
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, (text, colour) in enumerate(lines):
        draw.text((img.width + pad, pad + k * step), text, fill=colour, font=font)
    return np.asarray(canvas)


def write_frame_outputs(out_dir: Path, stem: str, frame: Image, result: FrameResult, debug: bool = False) -> None:
    save_png(out_dir / "masks" / f"{stem}.png", mask_png(result.mask))
    save_png(out_dir / "overlays" / f"{stem}.png", overlay(frame, result))
    if debug:
        atomic_write_json(out_dir / "debug" / f"{stem}.json", {
            "frame": result.index,
            "tags": result.tags.as_dict() if result.tags is not None else None,
            "items": trace_json(result.trace),
        })
        save_png(out_dir / "debug" / f"{stem}.png", debug_view(frame, result))
        from avseg.curves import curves_view

        plot = curves_view(result.trace)  # a clip filter's per-object curves (av-sync), when traced
        if plot is not None:
            save_png(out_dir / "debug" / f"{stem}_curves.png", plot)
