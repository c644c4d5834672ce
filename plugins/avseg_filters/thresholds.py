"""Threshold filters: audio tags by probability, proposals by score and size."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from avseg.components import ComponentConfig, Filter, FrameContext
from avseg.types import Drop, FilterResult


class TagThresholdConfig(ComponentConfig):
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="keep tags with probability >= this (tau_AT)")
    top_k: int | None = Field(None, ge=1, description="then keep at most this many, most probable first")
    deny: list[str] = Field(
        default_factory=list,
        description="tag names never kept, compared case-insensitively (default: none; the "
        "at-gdino-sam-plus preset lists 31 non-visual AudioSet sounds such as 'Silence')",
    )


class TagThreshold(Filter):
    name: ClassVar[str] = "tag-threshold"
    description: ClassVar[str] = "Keep audio tags with probability >= threshold, optionally top-k, minus an optional deny list."
    Config = TagThresholdConfig
    target: ClassVar[Literal["tags", "proposals"]] = "tags"

    def __call__(self, ctx: FrameContext) -> FilterResult:
        cfg = self.config
        assert isinstance(cfg, TagThresholdConfig)
        tags = ctx.tags
        if tags is None:
            return FilterResult(keep=[])
        deny = {d.lower() for d in cfg.deny}
        keep: list[int] = []
        drops: dict[int, Drop] = {}
        for i, (name, p) in enumerate(zip(tags.names, tags.scores)):
            if name.lower() in deny:
                drops[i] = Drop(self.name, f"{name!r} is on the deny list", float(p))
            elif p < cfg.threshold:
                drops[i] = Drop(self.name, f"probability {p:.3f} < {cfg.threshold:.3f}", float(p))
            elif cfg.top_k is not None and len(keep) >= cfg.top_k:
                drops[i] = Drop(self.name, f"beyond top-{cfg.top_k}", float(p))
            else:
                keep.append(i)
        return FilterResult(keep=keep, drops=drops, scores=[float(s) for s in tags.scores])


class ScoreThresholdConfig(ComponentConfig):
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="keep proposals with score >= this (> with strict)")
    strict: bool = Field(
        False, description="keep score > threshold instead of >= (the authors' OWOD-BIND code: score > 0.15)"
    )
    max_area_fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="drop boxes covering >= this fraction of the frame (e.g. 0.98)"
    )
    max_side_fraction: float | None = Field(
        None, gt=0.0, le=1.0,
        description="drop boxes whose width or height is >= this fraction of the frame's (per side, e.g. 0.98)",
    )
    side_reference: Literal["own", "height"] = Field(
        "own", description="max_side_fraction compares each side with: own = the frame's width for the box width "
        "and its height for the box height; height = the frame's height for both (the authors' code)",
    )
    keep_top_if_none: bool = Field(False, description="keep the best-scoring box of the right size when none pass")
    fallback: Literal["none", "keep-best", "first-in-loop"] = Field(
        "none", description="keep-best: when no proposal passes, keep the highest-scoring one; first-in-loop: the "
        "authors' loop (fallback inside the box loop), so the proposer's first box, in the proposer's own order, is "
        "always kept, passing or not, beside every box that passes",
    )


class ScoreThreshold(Filter):
    name: ClassVar[str] = "score-threshold"
    description: ClassVar[str] = "Keep proposals with score >= threshold; optionally drop near-full-frame boxes."
    Config = ScoreThresholdConfig

    def __call__(self, ctx: FrameContext) -> FilterResult:
        cfg = self.config
        assert isinstance(cfg, ScoreThresholdConfig)
        props = ctx.proposals
        if props is None or len(props) == 0:
            return FilterResult(keep=[])
        h, w = ctx.frame.shape[:2]
        b = props.boxes
        bw, bh = np.clip(b[:, 2] - b[:, 0], 0, None), np.clip(b[:, 3] - b[:, 1], 0, None)
        area = bw * bh / float(h * w)
        ref_w = float(h) if cfg.side_reference == "height" else float(w)
        side = np.maximum(bw / ref_w, bh / float(h))
        fails = "<=" if cfg.strict else "<"
        keep: list[int] = []
        drops: dict[int, Drop] = {}
        extra: list[dict[str, Any]] | None = None
        for i, s in enumerate(props.scores):
            passes = s > cfg.threshold if cfg.strict else s >= cfg.threshold
            if cfg.max_area_fraction is not None and area[i] >= cfg.max_area_fraction:
                drops[i] = Drop(self.name, f"box covers {area[i]:.0%} of the frame (>= {cfg.max_area_fraction:.0%})", float(s))
            elif cfg.max_side_fraction is not None and side[i] >= cfg.max_side_fraction:
                of = "the frame's height" if cfg.side_reference == "height" else "the frame's"
                drops[i] = Drop(self.name, f"a box side spans {side[i]:.0%} of {of} (>= {cfg.max_side_fraction:.0%})",
                                float(s))
            elif not passes:
                drops[i] = Drop(self.name, f"score {s:.3f} {fails} {cfg.threshold:.3f}", float(s))
            else:
                keep.append(i)
            if cfg.fallback == "first-in-loop" and not keep:
                # the authors' loop: `if len(processed_boxes) == 0: append(bounding_boxes[0])` runs
                # inside the loop, so box 0 (the proposer's first) is kept whether or not it passes
                extra = extra or [{} for _ in range(len(props))]
                extra[0] = {"fallback": f"kept as the proposer's first box although {drops[0].reason}"}
                drops.pop(0)
                keep = [0]
        if not keep and cfg.keep_top_if_none:
            candidates = [i for i in range(len(props)) if cfg.max_area_fraction is None or area[i] < cfg.max_area_fraction]
            if candidates:
                best = max(candidates, key=lambda i: float(props.scores[i]))
                drops.pop(best, None)
                keep = [best]
        if not keep and cfg.fallback == "keep-best":
            best = int(np.argmax(props.scores))
            extra = [{} for _ in range(len(props))]
            extra[best] = {"fallback": f"kept as the best box although {drops[best].reason}"}
            drops.pop(best)
            keep = [best]
        return FilterResult(keep=keep, drops=drops, scores=[float(s) for s in props.scores], extra=extra)
