"""``merge-parts``: masks that together fill one proposer box become one object.

CMSF's over-segmentation failure (b): SAM splits a piano into its white keys and its black
keys, AVSBench wants one piano. For each kept object's box (largest first), the other kept
masks lying mostly inside it (``inside`` of their area) are candidate parts; when the union of
the parts covers the box at least ``gain`` better than the best single part, and covers at
least ``min_coverage`` of it, the parts become one object: the union mask, the box's own
score, label and box. Each object is merged at most once.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from avseg.components import ComponentConfig, Refiner
from avseg.types import BoolArray, Image, Proposals


class MergePartsConfig(ComponentConfig):
    inside: float = Field(0.8, gt=0.0, le=1.0, description="a part lies in a box when this fraction of it is inside")
    gain: float = Field(0.15, ge=0.0, le=1.0, description="box coverage the union must add over the best part")
    min_coverage: float = Field(0.5, ge=0.0, le=1.0, description="box coverage the union must reach")


def _box_mask(box: np.ndarray, h: int, w: int) -> BoolArray:
    m = np.zeros((h, w), bool)
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    m[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return m


def merge_groups(kept: Proposals, cfg: MergePartsConfig) -> list[list[int]]:
    """Index groups: each merged group (the box owner first), then every other object alone."""
    assert kept.masks is not None
    n = len(kept)
    if n == 0:
        return []
    h, w = kept.masks.shape[1:]
    area = (kept.boxes[:, 2] - kept.boxes[:, 0]) * (kept.boxes[:, 3] - kept.boxes[:, 1])
    used: set[int] = set()
    groups: list[list[int]] = []
    for b in sorted(range(n), key=lambda i: (-float(area[i]), i)):
        if b in used:
            continue
        box = _box_mask(kept.boxes[b], h, w)
        if not box.any():
            continue
        parts = [j for j in range(n) if j not in used and kept.masks[j].any()
                 and (kept.masks[j] & box).sum() >= cfg.inside * kept.masks[j].sum()]
        if len(parts) < 2:
            continue
        cover = {j: float((kept.masks[j] & box).sum() / box.sum()) for j in parts}
        union = np.logical_or.reduce([kept.masks[j] for j in parts])
        together = float((union & box).sum() / box.sum())
        if together >= cfg.min_coverage and together >= max(cover.values()) + cfg.gain:
            group = [b] + [j for j in parts if j != b] if b in parts else [b, *parts]
            groups.append(group)
            used.update(group)
    groups += [[i] for i in range(n) if i not in used]
    return groups


class MergeParts(Refiner):
    name: ClassVar[str] = "merge-parts"
    description: ClassVar[str] = ("Masks whose union covers one proposer box much better than each alone become one "
                                  "object (SAM's piano keys as one piano).")
    Config = MergePartsConfig
    config: MergePartsConfig

    def refine(self, frame: Image, kept: Proposals) -> Proposals:
        if len(kept) < 2 or kept.masks is None:
            return kept
        groups = merge_groups(kept, self.config)
        masks = np.stack([np.logical_or.reduce([kept.masks[j] for j in g]) for g in groups])
        first = [g[0] for g in groups]
        out = kept.subset(first)
        return Proposals(out.boxes, out.scores, out.labels, masks, out.mask_scores)
