"""``largest-component``: each kept mask keeps only its largest connected piece (stray specks
and far-off fragments a segmenter attached go)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from avseg.components import ComponentConfig, Refiner
from avseg.types import BoolArray, Image, Proposals
from avseg_refiners._base import with_masks


class LargestComponentConfig(ComponentConfig):
    connectivity: Literal[4, 8] = Field(8, description="pixel neighbourhood of a connected piece")


def largest_component(mask: BoolArray, connectivity: int = 8) -> BoolArray:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=connectivity)
    if n <= 2:  # background plus at most one piece
        return np.asarray(mask, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return np.asarray(labels == 1 + int(np.argmax(areas)))  # the first of equal largest pieces


class LargestComponent(Refiner):
    name: ClassVar[str] = "largest-component"
    description: ClassVar[str] = "Keep each mask's largest connected piece."
    Config = LargestComponentConfig
    config: LargestComponentConfig

    def refine(self, frame: Image, kept: Proposals) -> Proposals:
        if kept.masks is None or len(kept) == 0:
            return kept
        return with_masks(kept, np.stack([largest_component(m, self.config.connectivity) for m in kept.masks]))
