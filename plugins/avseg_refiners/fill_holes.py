"""``fill-holes``: fill the holes of each kept object's mask (background enclosed by the object).

A hole is a 4-connected region of background that does not touch the frame's border; OpenCV's
connected components find them. ``max_hole_area`` keeps larger holes open (a ring around a
real gap, a donut-shaped object); the default fills every hole.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
from pydantic import Field

from avseg.components import ComponentConfig, Refiner
from avseg.types import BoolArray, Image, Proposals


class FillHolesConfig(ComponentConfig):
    max_hole_area: int | None = Field(None, ge=1, description="fill holes of at most this many pixels; "
                                                              "None fills every hole")


def fill_holes(mask: BoolArray, max_hole_area: int | None = None) -> BoolArray:
    """``mask`` with its holes (background components not touching the border) filled."""
    background = (~mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=4)
    if n <= 1:
        return mask.copy()
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    holes = np.ones(n, bool)
    holes[0] = False  # label 0 is the object itself
    holes[border] = False
    if max_hole_area is not None:
        holes &= stats[:, cv2.CC_STAT_AREA] <= max_hole_area
    return mask | holes[labels]


class FillHoles(Refiner):
    name: ClassVar[str] = "fill-holes"
    description: ClassVar[str] = "Fill the holes inside each kept object's mask (OpenCV connected components)."
    Config = FillHolesConfig

    def refine(self, frame: Image, kept: Proposals) -> Proposals:
        cfg = self.config
        assert isinstance(cfg, FillHolesConfig)
        if kept.masks is None or len(kept) == 0:
            return kept
        masks = np.stack([fill_holes(m, cfg.max_hole_area) for m in np.asarray(kept.masks, bool)])
        return Proposals(kept.boxes, kept.scores, kept.labels, masks, kept.mask_scores, kept.drops)
