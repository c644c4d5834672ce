"""``motion``: class-agnostic objects that change across the clip, from the full-rate video.

No weights. For each sampled frame at time ``t``, the frames of the full-rate video within
``window / 2`` seconds of ``t`` are differenced pairwise (grey, blurred); pixels that change by
more than ``diff_threshold`` anywhere in that window are joined (morphological closing) into
regions whose holes are filled, so the whole changing object is covered, not the ring of pixels
that changed (a disk that grows changes only at its rim). Each region of at least ``min_area``
of the frame seeds GrabCut on the sampled frame (``refine: grabcut``): the region is "probably
object", a margin around it "probably background", the rest background; GrabCut's colour models
then cut the object as it stands in that frame rather than the area it swept over the window.

An object found changing on one sampled frame is proposed on every other sampled frame where it
is still visible in the same place (its region looks the same there: mean absolute grey
difference under ``visible_threshold``) and nothing else was found there (``propagate``), so an
object that is still at some sampled instant is not lost. Frames-only inputs have no full-rate
video: the sampled frames themselves are differenced (far coarser).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from avseg.components import Capabilities, ComponentConfig, Proposer
from avseg.types import BoolArray, FullRateVideo, Image, Proposals


class MotionConfig(ComponentConfig):
    window: float = Field(0.5, gt=0.0, le=10.0, description="seconds of full-rate video around each sampled frame")
    diff_threshold: float = Field(12.0, gt=0.0, le=255.0, description="grey-level change that counts as motion")
    min_area: float = Field(0.002, ge=0.0, le=1.0, description="smallest region kept, as a fraction of the frame")
    close: int = Field(7, ge=1, le=99, description="closing kernel (px) joining changed pixels into regions")
    max_objects: int = Field(8, ge=1, description="most regions per frame (largest change first)")
    refine: Literal["grabcut", "fill"] = Field(
        "grabcut", description="grabcut: cut the object in the sampled frame; fill: the filled changed region")
    propagate: bool = Field(True, description="propose an object on the other sampled frames where it is visible")
    visible_threshold: float = Field(
        20.0, ge=0.0, le=255.0, description="mean colour difference under which an object counts as still visible")


def _grey(frames: Sequence[Image]) -> np.ndarray:
    import cv2

    return np.stack([cv2.GaussianBlur(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY), (5, 5), 0)
                     for f in frames]).astype(np.float32)


def frame_changes(frames: Sequence[Image]) -> np.ndarray:
    """(K-1, H, W) float32: the largest per-channel absolute change between consecutive blurred
    frames. Colour, not grey: a magenta shape on a grey-green background has the same luma."""
    import cv2

    blurred = np.stack([cv2.GaussianBlur(np.ascontiguousarray(f[..., :3]), (5, 5), 0) for f in frames]).astype(np.int16)
    if len(blurred) < 2:
        return np.zeros((0, *blurred.shape[1:3]), np.float32)
    return np.abs(np.diff(blurred, axis=0)).max(axis=-1).astype(np.float32)


def group_regions(regions: list[BoolArray], reach: float = 0.6) -> list[BoolArray]:
    """Regions whose boxes, grown by ``reach`` of the smaller one's size, overlap and whose areas are within 3x become one: the convex hull
    of their union (the two rims of a shape that jumps are one object)."""
    import cv2

    boxes = [np.asarray(_box(r)) for r in regions]
    parent = list(range(len(regions)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def grown(b: np.ndarray, d: float) -> np.ndarray:
        return np.asarray([b[0] - d, b[1] - d, b[2] + d, b[3] + d])

    for a in range(len(regions)):
        for b in range(a + 1, len(regions)):
            # the reach scales with the smaller region: a long smear does not swallow its neighbours
            d = reach * min(float(max(boxes[a][2:] - boxes[a][:2])), float(max(boxes[b][2:] - boxes[b][:2])))
            sa, sb = int(regions[a].sum()), int(regions[b].sum())
            if max(sa, sb) > 3 * max(1, min(sa, sb)):  # rims of one object are alike in size; a smear is not
                continue
            ba, bb = boxes[a], boxes[b]
            x_shared = min(ba[2], bb[2]) - max(ba[0], bb[0])
            y_shared = min(ba[3], bb[3]) - max(ba[1], bb[1])
            # rims of one object face each other: they share most of their width or of their height
            if x_shared < 0.5 * min(ba[2] - ba[0], bb[2] - bb[0]) and y_shared < 0.5 * min(ba[3] - ba[1], bb[3] - bb[1]):
                continue
            ga, gb = grown(boxes[a], d), grown(boxes[b], d)
            if ga[0] < gb[2] and gb[0] < ga[2] and ga[1] < gb[3] and gb[1] < ga[3]:
                parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for a in range(len(regions)):
        groups.setdefault(find(a), []).append(a)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append(regions[members[0]])
            continue
        union = np.logical_or.reduce([regions[m] for m in members])
        pts = cv2.findNonZero(union.astype(np.uint8))
        hull = np.zeros(union.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
        out.append(hull.astype(bool) | union)
    return out


def filled_regions(changed: BoolArray, close: int, min_pixels: float) -> list[BoolArray]:
    """Closed, hole-filled connected regions of ``changed`` with at least ``min_pixels`` pixels."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close, close))
    m = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        region = np.zeros(changed.shape, np.uint8)
        cv2.drawContours(region, [c], -1, 1, thickness=-1)  # filled: the ring of a growing disk becomes the disk
        if region.sum() >= max(min_pixels, 1):
            out.append(region.astype(bool))
    return out


def grabcut(frame: Image, region: BoolArray, iterations: int = 3) -> BoolArray:
    """The object in ``frame`` seeded by ``region`` (probably object) with a margin of probable
    background; the filled region itself when the cut keeps under a fifth of it."""
    import cv2

    h, w = region.shape
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    pad = max(8, int(0.5 * max(y1 - y0, x1 - x0)))
    Y0, Y1, X0, X1 = max(0, y0 - pad), min(h, y1 + pad), max(0, x0 - pad), min(w, x1 + pad)
    sub = region[Y0:Y1, X0:X1]
    mask = np.full(sub.shape, cv2.GC_PR_BGD, np.uint8)
    mask[sub] = cv2.GC_PR_FGD
    border = np.zeros(sub.shape, bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    mask[border & ~sub] = cv2.GC_BGD
    if not (mask == cv2.GC_PR_BGD).any() and not (mask == cv2.GC_BGD).any():
        return region
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    img = np.ascontiguousarray(frame[Y0:Y1, X0:X1, :3][..., ::-1])
    try:
        cv2.grabCut(img, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return region
    cut = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    if cut.sum() < 0.2 * sub.sum():
        return region
    out = np.zeros_like(region)
    out[Y0:Y1, X0:X1] = cut
    # keep the cut's largest piece, holes filled: one object
    regions = filled_regions(out, 3, 1)
    return max(regions, key=lambda r: int(r.sum())) if regions else region


def _box(mask: BoolArray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _overlap(a: BoolArray, b: BoolArray) -> float:
    """Intersection over the smaller area: 1 when one mask lies inside the other."""
    small = min(int(a.sum()), int(b.sum()))
    return float(np.logical_and(a, b).sum() / small) if small else 0.0


def _iou(a: BoolArray, b: BoolArray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 0.0


class MotionProposer(Proposer):
    name: ClassVar[str] = "motion"
    description: ClassVar[str] = (
        "No weights: boxes and masks of the regions that change in the full-rate video around each sampled "
        "frame (frame differencing, closing, hole filling, GrabCut), propagated to frames where they are visible."
    )
    Config = MotionConfig
    uses_video: ClassVar[bool] = True
    config: MotionConfig

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(gives_masks=True)

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        # without timestamps or a video: the frames, one second apart, are the video
        ts = [float(i) for i in range(len(frames))]
        return self.propose_clip(frames, prompts, ts, None)

    def propose_clip(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None,
                     timestamps: Sequence[float], video: FullRateVideo | None) -> list[Proposals]:
        cfg = self.config
        if not frames:
            return []
        if video is None or len(video) < 2:
            video = FullRateVideo(list(frames), [float(t) for t in timestamps])
        h, w = frames[0].shape[:2]
        vh, vw = video.frames[0].shape[:2]
        changed = frame_changes(video.frames) > cfg.diff_threshold  # changed[k]: between frames k and k+1
        times = np.asarray(video.times, np.float64)
        mid = (times[:-1] + times[1:]) / 2  # empty for a one-frame clip: nothing can change
        found: list[list[tuple[BoolArray, float]]] = []
        for t in timestamps:
            near = np.nonzero(np.abs(mid - t) <= cfg.window / 2)[0]
            if len(near) == 0 and len(mid):
                near = np.asarray([int(np.argmin(np.abs(mid - t)))])
            acc = changed[near].any(axis=0) if len(near) else np.zeros((vh, vw), bool)
            energy = changed[near].mean(axis=0) if len(near) else np.zeros((vh, vw), np.float32)
            regions = group_regions(filled_regions(acc, cfg.close, cfg.min_area * vh * vw))
            scored = [(r, float(energy[r].mean())) for r in regions]
            scored.sort(key=lambda x: -x[1])
            found.append(scored[: cfg.max_objects])
        objs: list[list[tuple[BoolArray, float, BoolArray]]] = []
        for i, frame in enumerate(frames):
            out = []
            for region, score in found[i]:
                if (vh, vw) != (h, w):
                    region = _resize_mask(region, h, w)
                cut = self._cut(frame, region)
                if not any(_overlap(cut, m) > 0.5 for m, _, _ in out):  # two windows' regions, one object
                    out.append((cut, score, region))
            objs.append(out)
        if cfg.propagate:
            self._propagate(objs, frames)
        result = []
        for found_here in objs:
            out = [(m, s) for m, s, _ in found_here if m.any()]
            if not out:
                result.append(Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                                        masks=np.zeros((0, h, w), bool)))
                continue
            result.append(Proposals(np.asarray([_box(m) for m, _ in out], np.float32),
                                    np.clip(np.asarray([s for _, s in out], np.float32), 0.0, 1.0),
                                    masks=np.stack([m for m, _ in out])))
        return result

    def _cut(self, frame: Image, region: BoolArray) -> BoolArray:
        return grabcut(frame, region) if self.config.refine == "grabcut" else region

    def _propagate(self, objs: list[list[tuple[BoolArray, float, BoolArray]]], frames: Sequence[Image]) -> None:
        """Propose each frame's objects on the frames where nothing overlaps their region and the
        object cut there has its colour (mean RGB distance <= visible_threshold) and about its size."""
        cfg = self.config
        n = len(objs)
        own = [list(o) for o in objs]
        for i in range(n):
            for mask, score, region in own[i]:
                colour = frames[i][mask].reshape(-1, 3).astype(np.float32).mean(axis=0)
                for j in range(n):
                    if j == i or any(_iou(region, r) > 0.3 or _iou(mask, m) > 0.3 for m, _, r in objs[j]):
                        continue
                    cut = self._cut(frames[j], region)
                    if any(_overlap(cut, m) > 0.5 for m, _, _ in objs[j]):
                        continue
                    if not cut.any() or not 0.5 <= cut.sum() / max(1, mask.sum()) <= 2.0:
                        continue
                    there = frames[j][cut].reshape(-1, 3).astype(np.float32).mean(axis=0)
                    if float(np.abs(there - colour).mean()) <= cfg.visible_threshold:
                        objs[j].append((cut, score * 0.5, region))  # seen changing elsewhere, still here


def _resize_mask(mask: BoolArray, h: int, w: int) -> BoolArray:
    import cv2

    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
