"""Bundled combiners: how a frame's kept objects become the frame's mask and label map.

- ``union`` (the default): the mask is the union of the kept masks; labelled objects also give a
  label map, painted by ascending score so that the best object wins where masks overlap.
- ``top1``: only the highest-scoring kept object (ties: the first), for single-source benchmarks.
- ``label-map``: the union mask and always a label map; unlabelled objects get instance labels
  ``object-1``, ``object-2``, ... (in the order they were kept).

They are registered through the ``register_combiners`` hook by the bundled ``avseg_filters``
plugin, like a third party's; a spec without ``combiner:`` uses :class:`Union` directly.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from avseg.components import Combiner
from avseg.types import Combined, Image, Proposals


def paint_labels(kept: Proposals, labels: list[str], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int32: ``labels.index(label) + 1`` of each object, best score painted last."""
    label_map = np.zeros(shape, np.int32)
    if kept.masks is None or kept.labels is None:
        return label_map
    for j in np.argsort(kept.scores, kind="stable"):
        label_map[kept.masks[j]] = labels.index(kept.labels[j]) + 1
    return label_map


def union(frame: Image, kept: Proposals) -> Combined:
    """The ``union`` combiner's output (what the pipeline always did before combiners)."""
    h, w = frame.shape[:2]
    mask = np.zeros((h, w), bool)
    label_map = None
    labels: list[str] = []
    if len(kept) and kept.masks is not None:
        mask = np.asarray(kept.masks.any(axis=0), dtype=bool)
        if kept.labels is not None:
            labels = sorted(set(kept.labels))
            label_map = paint_labels(kept, labels, (h, w))
    elif kept.labels is not None:
        label_map = np.zeros((h, w), np.int32)
    return Combined(mask, label_map, labels)


class Union(Combiner):
    name: ClassVar[str] = "union"
    description: ClassVar[str] = "The union of the kept masks (and a label map when objects are labelled)."

    def combine(self, frame: Image, kept: Proposals) -> Combined:
        return union(frame, kept)


class Top1(Combiner):
    name: ClassVar[str] = "top1"
    description: ClassVar[str] = "Only the highest-scoring kept object's mask (and label)."

    def combine(self, frame: Image, kept: Proposals) -> Combined:
        if len(kept) == 0:
            return union(frame, kept)
        return union(frame, kept.subset([int(np.argmax(kept.scores))]))


class LabelMap(Combiner):
    name: ClassVar[str] = "label-map"
    description: ClassVar[str] = "Union mask plus a label map of every object (instance labels when unlabelled)."

    def combine(self, frame: Image, kept: Proposals) -> Combined:
        h, w = frame.shape[:2]
        if kept.labels is None:
            kept = Proposals(kept.boxes, kept.scores, [f"object-{i + 1}" for i in range(len(kept))],
                             kept.masks, kept.mask_scores)
        if len(kept) == 0 or kept.masks is None:
            return Combined(np.zeros((h, w), bool), np.zeros((h, w), np.int32), [])
        labels = sorted(set(kept.labels or []), key=lambda n: (kept.labels or []).index(n))
        return Combined(np.asarray(kept.masks.any(axis=0), dtype=bool), paint_labels(kept, labels, (h, w)), labels)
