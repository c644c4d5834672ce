"""Propagated objects as tracks, and the merge of tracks that follow the same object.

Pure numpy: a :class:`Track` holds one prompted object's mask per frame it reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avseg.types import BoolArray, Proposals


@dataclass
class Track:
    """One prompted object: where it was prompted, and its propagated mask (and presence score) per frame."""

    frame: int  # the frame it was prompted on
    score: float  # the prompting proposal's score
    label: str | None
    masks: dict[int, BoolArray] = field(default_factory=dict)
    presence: dict[int, float] = field(default_factory=dict)  # sigmoid of SAM 2's object score


def mask_iou(a: BoolArray, b: BoolArray) -> float:
    union = int(np.logical_or(a, b).sum())
    return float(np.logical_and(a, b).sum()) / union if union else 0.0


def track_iou(a: Track, b: Track) -> float:
    """Mean mask IoU over the frames where either track has a non-empty mask and both have one."""
    ious = [
        mask_iou(a.masks[t], b.masks[t])
        for t in sorted(set(a.masks) & set(b.masks))
        if a.masks[t].any() or b.masks[t].any()
    ]
    return float(np.mean(ious)) if ious else 0.0


def merge_tracks(tracks: list[Track], merge_iou: float) -> tuple[list[Track], int]:
    """Greedy merge, best score first: a track whose mean IoU with a kept one is >= ``merge_iou`` joins
    it (filling frames the kept track did not reach). Returns (kept tracks, number merged away)."""
    order = sorted(range(len(tracks)), key=lambda i: (-tracks[i].score, tracks[i].frame, i))
    kept: list[Track] = []
    merged = 0
    for i in order:
        t = tracks[i]
        into = next((k for k in kept if track_iou(k, t) >= merge_iou), None)
        if into is None:
            kept.append(Track(t.frame, t.score, t.label, dict(t.masks), dict(t.presence)))
            continue
        merged += 1
        for f, m in t.masks.items():
            if f not in into.masks:
                into.masks[f] = m
                into.presence[f] = t.presence.get(f, 0.0)
    return kept, merged


def tracks_to_proposals(
    tracks: list[Track], num_frames: int, sizes: list[tuple[int, int]], labelled: bool
) -> list[Proposals]:
    """Each frame's objects: the tracks with a non-empty mask there, box = the mask's bounding box."""
    out: list[Proposals] = []
    for f in range(num_frames):
        h, w = sizes[f]
        boxes, scores, labels, masks, presence = [], [], [], [], []
        for t in tracks:
            m = t.masks.get(f)
            if m is None or not m.any():
                continue
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            scores.append(t.score)
            labels.append(t.label or "")
            masks.append(m)
            presence.append(t.presence.get(f, 0.0))
        out.append(
            Proposals(
                boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                scores=np.asarray(scores, np.float32),
                labels=labels if labelled else None,
                masks=np.stack(masks) if masks else np.zeros((0, h, w), bool),
                mask_scores=np.asarray(presence, np.float32),
            )
        )
    return out
