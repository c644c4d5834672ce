"""``clip-to-box``: each kept mask is cut to its own box (grown by ``margin`` px): a segmenter's
leak outside the box that prompted it goes."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from avseg.components import ComponentConfig, Refiner
from avseg.types import Image, Proposals
from avseg_refiners._base import with_masks


class ClipToBoxConfig(ComponentConfig):
    margin: int = Field(0, ge=0, le=10000, description="px the box is grown by before cutting")


class ClipToBox(Refiner):
    name: ClassVar[str] = "clip-to-box"
    description: ClassVar[str] = "Cut each mask to its box (plus a margin)."
    Config = ClipToBoxConfig
    config: ClipToBoxConfig

    def refine(self, frame: Image, kept: Proposals) -> Proposals:
        if kept.masks is None or len(kept) == 0:
            return kept
        h, w = kept.masks.shape[1:]
        m = self.config.margin
        out = np.zeros_like(kept.masks)
        for i, box in enumerate(kept.boxes):
            x0, y0 = max(0, int(np.floor(box[0])) - m), max(0, int(np.floor(box[1])) - m)
            x1, y1 = min(w, int(np.ceil(box[2])) + m), min(h, int(np.ceil(box[3])) + m)
            out[i, y0:y1, x0:x1] = kept.masks[i, y0:y1, x0:x1]
        return with_masks(kept, out)
