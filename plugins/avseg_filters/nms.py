"""Non-maximum suppression over a frame's proposals, by box IoU or mask IoU."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from avseg.components import Capabilities, ComponentConfig, Filter, FrameContext
from avseg.types import Drop, FilterResult


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Pairwise IoU of xyxy boxes, (N, M)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    lt = np.maximum(a64[:, None, :2], b64[None, :, :2])
    rb = np.minimum(a64[:, None, 2:], b64[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a64[:, 2:] - a64[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b64[:, 2:] - b64[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def mask_iou(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Pairwise IoU of boolean masks (N, H, W) x (M, H, W) -> (N, M)."""
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    # float32 counts are exact (< 2**24 pixels); the ratio in float64, so that an IoU of exactly
    # the threshold compares equal to it (60/100 in float32 is above 0.6 and was suppressed)
    inter = (fa @ fb.T).astype(np.float64)
    union = fa.sum(1, dtype=np.float64)[:, None] + fb.sum(1, dtype=np.float64)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


class NMSConfig(ComponentConfig):
    iou_threshold: float = Field(0.5, ge=0.0, le=1.0, description="suppress a proposal overlapping a better one by > this")
    use_masks: bool = Field(True, description="mask IoU when proposals carry masks, else box IoU")


class NMS(Filter):
    name: ClassVar[str] = "nms"
    description: ClassVar[str] = "Greedy non-maximum suppression by mask IoU (or box IoU), highest score first."
    Config = NMSConfig

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities()

    def __call__(self, ctx: FrameContext) -> FilterResult:
        cfg = self.config
        assert isinstance(cfg, NMSConfig)
        props = ctx.proposals
        if props is None or len(props) == 0:
            return FilterResult(keep=[])
        by_mask = cfg.use_masks and props.masks is not None
        iou = mask_iou(props.masks, props.masks) if by_mask and props.masks is not None else box_iou(props.boxes, props.boxes)
        order = np.argsort(-props.scores, kind="stable")
        keep: list[int] = []
        drops: dict[int, Drop] = {}
        for i in order:
            hit = next((k for k in keep if iou[i, k] > cfg.iou_threshold), None)
            if hit is None:
                keep.append(int(i))
            else:
                what = "mask" if by_mask else "box"
                drops[int(i)] = Drop(self.name, f"{what} IoU {iou[i, hit]:.2f} > {cfg.iou_threshold:.2f} with #{hit}", float(iou[i, hit]))
        return FilterResult(keep=sorted(keep), drops=drops, scores=[float(s) for s in props.scores])
