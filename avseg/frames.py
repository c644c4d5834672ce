"""The spec-level ``frames:`` setting: the size every model sees, and masks back at the input's.

``frames: {size: [224, 224]}`` resizes each decoded frame to 224 (height) x 224 (width) before
any step runs, as the CMSF paper does ("all frames are resized to 224x224", section 3); the
frame's mask, label map, kept boxes and kept masks are then mapped back to the input's own
resolution (nearest neighbour for masks), so outputs and metrics stay at the input's size.
``size: null`` (the default) feeds frames at their own size. On AVSBench, whose frames are
already 224x224, the resize is a no-op; on a user's 1280x720 video it is not (see
docs/reproducing.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from avseg.errors import ConfigError
from avseg.trace import ObjectTrace
from avseg.types import FrameResult, Image, Proposals

Interpolation = Literal["bilinear", "bicubic", "area", "nearest"]


class FramesSpec(BaseModel):
    """``size``: ``[height, width]`` every model sees (null = the input's own size);
    ``interpolation``: how frames are resized (masks always come back by nearest neighbour)."""

    model_config = ConfigDict(extra="forbid")

    size: tuple[int, int] | None = Field(default=None, description="[height, width] in pixels; null = unchanged")
    interpolation: Interpolation = Field(
        default="bilinear", description="frame resize filter (bilinear: torchvision's Resize default)"
    )

    def model_post_init(self, __context: Any) -> None:
        if self.size is not None and min(self.size) < 1:
            raise ValueError(f"size must be two positive integers [height, width], got {list(self.size)}")

    def describe(self) -> str:
        return "native" if self.size is None else f"{self.size[0]}x{self.size[1]} ({self.interpolation})"


def frames_spec(raw: Any) -> FramesSpec:
    """The ``frames:`` entry of a spec, or a one-line :class:`ConfigError`."""
    if raw is None:
        return FramesSpec()
    if not isinstance(raw, dict):
        raise ConfigError("frames: expected a mapping such as {size: [224, 224]}")
    try:
        return FramesSpec(**raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "size"
        msg = err["msg"] if key != "size" or err["type"] == "value_error" else "expected [height, width] in pixels"
        raise ConfigError(f"frames: invalid {key}={raw.get(key)!r}: {msg}") from None


_CV2_FLAGS = {"bilinear": "INTER_LINEAR", "bicubic": "INTER_CUBIC", "area": "INTER_AREA", "nearest": "INTER_NEAREST"}


def resize_frame(frame: Image, spec: FramesSpec) -> Image:
    """``frame`` (H, W, 3) uint8 at ``spec.size``; the same array when no resize is needed."""
    if spec.size is None or tuple(frame.shape[:2]) == tuple(spec.size):
        return frame
    import cv2

    h, w = spec.size
    out = cv2.resize(np.ascontiguousarray(frame), (w, h), interpolation=getattr(cv2, _CV2_FLAGS[spec.interpolation]))
    return np.ascontiguousarray(out.astype(frame.dtype, copy=False))


def _nearest(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``a`` (..., h, w) resized to ``size`` = (H, W) by nearest neighbour (pixel centres)."""
    h, w = a.shape[-2:]
    ys = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.int64), h - 1)
    xs = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.int64), w - 1)
    return a[..., ys[:, None], xs[None, :]]


def resize_nearest(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask or label map (..., h, w) at ``size`` = (H, W), nearest neighbour; unchanged when equal."""
    return a if tuple(a.shape[-2:]) == tuple(size) else np.ascontiguousarray(_nearest(a, size))


def restore(result: FrameResult, seen: tuple[int, int], size: tuple[int, int]) -> FrameResult:
    """``result`` computed on a frame of ``seen`` = (h, w), mapped back to the input's ``size`` = (H, W)."""
    if tuple(seen) == tuple(size):
        return result
    sy, sx = size[0] / seen[0], size[1] / seen[1]
    kept = result.kept
    if len(kept) or kept.masks is not None:
        boxes = (kept.boxes * np.asarray([sx, sy, sx, sy], np.float32)).astype(np.float32)
        masks = resize_nearest(kept.masks, size) if kept.masks is not None else None
        kept = Proposals(boxes, kept.scores, kept.labels, masks, kept.mask_scores, kept.drops)
    label_map = resize_nearest(result.label_map, size) if result.label_map is not None else None
    scale = (sx, sy, sx, sy)
    trace = [replace(r, box=[round(float(v) * f, 1) for v, f in zip(r.box, scale)]) if isinstance(r, ObjectTrace)
             else r for r in result.trace]  # the debug trace draws its boxes on the input frame
    return replace(result, mask=resize_nearest(result.mask, size), kept=kept, label_map=label_map, trace=trace)
