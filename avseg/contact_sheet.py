"""The report's contact sheets: a clip's frames with the ground truth on top and the prediction
below (true positives green, false positives red, false negatives blue), for avseg/report.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

THUMB = 128  # contact-sheet tile height (px)
TP, FP, FN = (40, 200, 70), (235, 50, 50), (40, 110, 255)


def _tint(frame: np.ndarray, layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]], alpha: float = 0.55) -> np.ndarray:
    out = frame.astype(np.float32) * 0.75  # dimmed so that the colours stand out
    for m, colour in layers:
        out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour, np.float32)
    return out.clip(0, 255).astype(np.uint8)


def _diff_layers(pred: np.ndarray, gt: np.ndarray) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    return [(pred & gt, TP), (pred & ~gt, FP), (~pred & gt, FN)]


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = int((pred | gt).sum())
    return 1.0 if union == 0 else float((pred & gt).sum()) / union


def contact_sheet(columns: Sequence[tuple[str, np.ndarray, np.ndarray | None, np.ndarray | None]]) -> np.ndarray:
    """Per column ``(caption, frame, gt or None, pred or None)``: the frame with its ground truth
    on top and the prediction below (true positives green, false positives red, false negatives
    blue); each tile ``THUMB`` px tall."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from avseg.palette import _font

    font = _font(12)
    tiles = []
    for caption, frame, gt, pred in columns:
        h, w = frame.shape[:2]
        tw = max(1, round(w * THUMB / max(1, h)))
        top = _tint(frame, [(gt, TP)]) if gt is not None else frame
        if pred is None:
            bottom = frame
        elif gt is None:
            bottom = _tint(frame, [(pred, FP)])
        else:
            bottom = _tint(frame, _diff_layers(pred, gt))
        col = PILImage.new("RGB", (tw, 18 + 2 * THUMB + 2), (255, 255, 255))
        ImageDraw.Draw(col).text((2, 2), caption, fill=(30, 30, 30), font=font)
        col.paste(PILImage.fromarray(top).resize((tw, THUMB)), (0, 18))
        col.paste(PILImage.fromarray(bottom).resize((tw, THUMB)), (0, 20 + THUMB))
        tiles.append(col)
    width = sum(t.width for t in tiles) + 4 * max(0, len(tiles) - 1)
    sheet = PILImage.new("RGB", (max(1, width), 20 + 2 * THUMB), (255, 255, 255))
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + 4
    return np.asarray(sheet)


def read_mask(path: Path) -> np.ndarray | None:
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as im:
            return np.asarray(im.convert("L")) > 127
    except (OSError, ValueError):
        return None
