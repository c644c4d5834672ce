"""Shared by the mask refiners (``refine(frame, kept) -> Proposals`` per frame)."""

from __future__ import annotations

import numpy as np

from avseg.types import BoolArray, Proposals


def with_masks(kept: Proposals, masks: BoolArray) -> Proposals:
    """``kept`` with its masks replaced (boxes, scores and labels kept)."""
    return Proposals(kept.boxes, kept.scores, kept.labels, np.asarray(masks, bool), kept.mask_scores)

