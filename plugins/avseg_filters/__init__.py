"""Bundled filters that need no model: tag-threshold, score-threshold, nms, top-k, bind."""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_filters(register: Register) -> None:
    from avseg_filters.bind import BindFilter
    from avseg_filters.nms import NMS
    from avseg_filters.thresholds import ScoreThreshold, TagThreshold
    from avseg_filters.topk import TopK

    register(TagThreshold)
    register(ScoreThreshold)
    register(NMS)
    register(TopK)
    register(BindFilter)
