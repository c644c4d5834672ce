"""Make a pipeline that keeps nothing visible.

Under the official metrics an empty prediction scores J = 1 on empty-GT frames and F > 0 on the
others, so a chain whose filters keep nothing can report plausible numbers. Each clip's state
counts its scored frames, those predicted empty, the GT-positive ones and the GT-positive ones
predicted empty; ``metrics.json`` gives the two shares, and :func:`dead_warning` says, in one
line, when most GT-positive frames were predicted empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

#: more than this share of GT-positive frames predicted empty -> the warning
DEAD_SHARE = 0.5


def is_empty(pred: npt.ArrayLike) -> bool:
    """No foreground pixel (a uint8 mask: above 127 of 255, as the official metrics binarise)."""
    a = np.asarray(pred)
    return not bool((a > (127 if a.dtype == np.uint8 else 0.5)).any())


def clip_counts(preds: Sequence[npt.ArrayLike], gts: Sequence[npt.ArrayLike]) -> list[int]:
    """``[frames, predicted empty, GT-positive, GT-positive predicted empty]`` over a clip's scored frames."""
    empty = [is_empty(p) for p in preds]
    positive = [bool(np.asarray(g).astype(bool).any()) for g in gts]
    return [len(empty), sum(empty), sum(positive), sum(e and p for e, p in zip(empty, positive))]


def _counts(state: Mapping[str, Any]) -> list[int] | None:
    c = state.get("empty")
    if isinstance(c, list) and len(c) == 4 and all(isinstance(x, int) and x >= 0 for x in c):
        return c
    return None  # a state written before the counts existed, or tampered with


def summarise(states: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The shares over every clip whose state has counts (None where there is nothing to divide)."""
    total = [0, 0, 0, 0]
    for s in states:
        c = _counts(s)
        if c is not None:
            total = [a + b for a, b in zip(total, c)]
    n, n_empty, n_pos, n_pos_empty = total
    return {
        "empty_prediction_share": round(n_empty / n, 6) if n else None,
        "gt_positive_predicted_empty_share": round(n_pos_empty / n_pos, 6) if n_pos else None,
        "n_frames_predicted_empty": n_empty,
        "n_gt_positive_frames": n_pos,
    }


def dead_warning(summary: Mapping[str, Any]) -> str | None:
    """One line when most GT-positive frames were predicted empty, else None."""
    share = summary.get("gt_positive_predicted_empty_share")
    if not isinstance(share, (int, float)) or share <= DEAD_SHARE:
        return None
    return (f"{share:.0%} of the frames with a sounding object got an empty prediction: these metrics are "
            "those of an empty prediction (does the pipeline keep anything? see --debug)")
