"""``temporal-consistency``: a clip-scope filter that keeps objects seen in enough frames.

Per-frame independence is CMSF's own failure case (c): an object that flickers into a single
frame is kept as readily as one seen throughout the clip. This filter links the proposals of
consecutive frames into tracks and keeps only the tracks seen in at least ``min_frames`` frames.

Linking, frame by frame through the clip: a proposal joins a track last seen at most
``max_gap`` frames earlier when their boxes overlap (IoU >= ``iou_threshold``) and, when both
carry region embeddings and ``use_embeddings`` is on, their embeddings agree (cosine >=
``similarity_threshold``). Matches are checked in both directions: the proposal must be the
track's best candidate *and* the track the proposal's best (mutual best, score = IoU, plus the
cosine when embeddings are used), so two nearby objects never swap tracks. A proposal that
matches no track starts a new one.

``fill_gaps: true`` copies a kept track's object (box, score, label, mask, embedding) from the
last frame where it was seen into each frame where it is missing between two frames where it
is present; the trace shows these objects with ``origin: temporal-consistency``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from avseg.components import ClipContext, ClipFilter, ComponentConfig
from avseg.types import Drop, FilterResult, Proposals, concat_proposals
from avseg_filters.nms import box_iou


class TemporalConsistencyConfig(ComponentConfig):
    min_frames: int = Field(
        2, ge=1, description="drop tracks seen in fewer frames than this (capped at the clip's length)"
    )
    fill_gaps: bool = Field(False, description="copy a kept track's object into frames where it is missing in between")
    iou_threshold: float = Field(0.3, ge=0.0, le=1.0, description="box IoU needed to link a proposal to a track")
    use_embeddings: bool = Field(True, description="also require similar region embeddings, when present")
    similarity_threshold: float = Field(
        0.5, ge=-1.0, le=1.0, description="cosine of region embeddings needed to link (use_embeddings)"
    )
    max_gap: int = Field(1, ge=0, description="frames a track may be missing and still be linked")


@dataclass
class _Track:
    members: dict[int, int] = field(default_factory=dict)  # frame -> proposal index
    box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    emb: np.ndarray | None = None
    last: int = -1


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(np.divide(x, n, out=np.zeros_like(x, dtype=np.float64), where=n > 0))


class TemporalConsistency(ClipFilter):
    name: ClassVar[str] = "temporal-consistency"
    description: ClassVar[str] = (
        "Clip scope: link proposals across frames (box IoU, region embeddings) and drop tracks seen in "
        "fewer than min_frames frames; optionally fill a track's gaps."
    )
    Config = TemporalConsistencyConfig
    target: ClassVar[Literal["tags", "proposals"]] = "proposals"

    config: TemporalConsistencyConfig

    def link(self, ctx: ClipContext) -> list[_Track]:
        """Tracks over the clip (each a frame -> proposal index map)."""
        cfg = self.config
        tracks: list[_Track] = []
        for t, props in enumerate(ctx.proposals):
            emb = ctx.region_embeddings[t] if cfg.use_embeddings else None
            active = [tr for tr in tracks if t - tr.last - 1 <= cfg.max_gap]
            taken: set[int] = set()
            if active and len(props):
                iou = box_iou(np.stack([tr.box for tr in active]).astype(np.float32), props.boxes)
                ok = iou >= cfg.iou_threshold
                score = iou.astype(np.float64)
                if emb is not None and len(emb) == len(props) and all(tr.emb is not None for tr in active):
                    cos = _unit(np.stack([tr.emb for tr in active if tr.emb is not None])) @ _unit(np.asarray(emb)).T
                    ok &= cos >= cfg.similarity_threshold
                    score = score + cos
                score = np.where(ok, score, -np.inf)
                for a, tr in enumerate(active):
                    p = int(np.argmax(score[a]))
                    if np.isfinite(score[a, p]) and int(np.argmax(score[:, p])) == a:  # mutual best
                        self._extend(tr, t, p, props, emb)
                        taken.add(p)
            for p in range(len(props)):
                if p not in taken:
                    tr = _Track()
                    self._extend(tr, t, p, props, emb)
                    tracks.append(tr)
        return tracks

    @staticmethod
    def _extend(tr: _Track, t: int, p: int, props: Proposals, emb: np.ndarray | None) -> None:
        tr.members[t] = p
        tr.box = props.boxes[p]
        tr.emb = np.asarray(emb[p]) if emb is not None and len(emb) == len(props) else None
        tr.last = t

    def filter_clip(self, ctx: ClipContext) -> list[FilterResult]:
        cfg = self.config
        n = ctx.num_frames
        need = min(cfg.min_frames, n)
        tracks = self.link(ctx)
        track_of: list[dict[int, int]] = [{} for _ in range(n)]  # frame -> proposal -> track id
        for k, tr in enumerate(tracks):
            for t, p in tr.members.items():
                track_of[t][p] = k
        results = []
        for t, props in enumerate(ctx.proposals):
            keep: list[int] = []
            drops: dict[int, Drop] = {}
            extra = []
            for p in range(len(props)):
                k = track_of[t][p]
                seen = len(tracks[k].members)
                extra.append({"track": k, "frames": seen})
                if seen >= need:
                    keep.append(p)
                else:
                    drops[p] = Drop(self.name, f"track {k} seen in {seen} of {n} frames (< {need})", float(seen))
            results.append(FilterResult(keep, drops, [float(e["frames"]) for e in extra], extra))
        if cfg.fill_gaps:
            self._fill(ctx, tracks, need, results)
        return results

    def _fill(self, ctx: ClipContext, tracks: list[_Track], need: int, results: list[FilterResult]) -> None:
        for k, tr in enumerate(tracks):
            if len(tr.members) < need:
                continue
            frames = sorted(tr.members)
            for a, b in zip(frames, frames[1:]):
                for t in range(a + 1, b):
                    src = ctx.proposals[a].subset([tr.members[a]])
                    res = results[t]
                    res.added = src if res.added is None else concat_proposals(res.added, src)
                    res.added_reasons = [*(res.added_reasons or []), f"track {k} filled from frame {a}"]
                    here, there = ctx.region_embeddings[t], ctx.region_embeddings[a]
                    if here is not None and there is not None:
                        row = np.asarray(there[tr.members[a] : tr.members[a] + 1], np.float32)
                        prev = res.added_embeddings
                        res.added_embeddings = row if prev is None else np.concatenate([prev, row])
