"""The crop helper shared by embedders: the pixels a region embedding is computed from.

Region modes (an embedder's ``regions`` option; see docs/pipelines.md):

- ``box``: the plain box crop;
- ``masked``: the box crop with everything outside the region's mask replaced, by the frame
  Gaussian-blurred (``background: blur``, as the CMSF authors' ``segment_image``), by mid-grey
  (``grey``), or by black (``black``). It needs masks, so a segmenter (or a mask-giving proposer)
  must come before the embedder; resolution checks it.

Boxes are rounded like ``PIL.Image.crop`` (the authors crop with PIL), clamped to the frame and
at least 1 pixel wide and high, so a zero-area or out-of-frame box still gives a crop.
Only numpy at import; ``cv2`` is imported when a blur is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avseg.types import BoolArray, Image

#: the fill of background "grey"
GREY = 128


def box_pixels(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Integer ``x0, y0, x1, y1`` of a box: rounded like ``PIL.Image.crop`` does, clamped to the
    frame, and at least 1 pixel wide and high (so a zero-area box still gives a crop)."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    x0 = min(max(x0, 0), width - 1)
    y0 = min(max(y0, 0), height - 1)
    x1 = min(max(x1, x0 + 1), width)
    y1 = min(max(y1, y0 + 1), height)
    return x0, y0, x1, y1


def region_crop(
    frame: Image,
    box: Sequence[float],
    mask: BoolArray | None = None,
    background: str = "blur",
    blurred: Image | None = None,
) -> Image:
    """The pixels of one region: the box crop, with the area outside ``mask`` replaced by
    ``blurred`` (the whole frame blurred, then cropped: ``"blur"``), mid-grey (``"grey"``),
    black (``"black"``), or left as is (``"keep"``, or no mask)."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = box_pixels(box, w, h)
    crop = frame[y0:y1, x0:x1]
    if mask is None or background == "keep":
        return np.ascontiguousarray(crop)
    inside = np.asarray(mask, dtype=bool)[y0:y1, x0:x1, None]
    if background == "blur":
        if blurred is None:
            raise ValueError("region_crop: background 'blur' needs the blurred frame")
        outside: Any = blurred[y0:y1, x0:x1]
    elif background == "grey":
        outside = np.full_like(crop, GREY)
    else:
        outside = np.zeros_like(crop)
    return np.ascontiguousarray(np.where(inside, crop, outside).astype(np.uint8))


def blur_frame(frame: Image, kernel: int = 21) -> Image:
    """``cv2.GaussianBlur(frame, (kernel, kernel), 0)``, as the authors' ``segment_image``."""
    import cv2

    return np.asarray(cv2.GaussianBlur(np.ascontiguousarray(frame), (kernel, kernel), 0), dtype=np.uint8)


def region_crops(
    frame: Image,
    boxes: Sequence[Sequence[float]],
    masks: BoolArray | None,
    regions: str = "auto",
    background: str = "blur",
    blur_kernel: int = 21,
) -> list[Image]:
    """Every region's crop in one frame under a region mode: ``box`` ignores masks, ``masked``
    requires them, ``auto`` uses them when given. The frame is blurred once, when needed."""
    if regions == "masked" and masks is None and len(boxes):
        raise ValueError("regions 'masked' needs masks: put a segmenter before the embedder")
    use = masks is not None and regions != "box" and background != "keep" and len(boxes) > 0
    blurred = blur_frame(frame, blur_kernel) if use and background == "blur" else None
    return [region_crop(frame, b, masks[i] if use and masks is not None else None, background, blurred)
            for i, b in enumerate(boxes)]
