"""Bundled filters that need no model (tag-threshold, score-threshold, nms, top-k, bind,
temporal-consistency) and the bundled combiners (union, top1, label-map)."""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_components(register: Register) -> None:
    from avseg_filters.bind import BindFilter
    from avseg_filters.nms import NMS
    from avseg_filters.temporal import TemporalConsistency
    from avseg_filters.thresholds import ScoreThreshold, TagThreshold
    from avseg_filters.topk import TopK

    register(TagThreshold)
    register(ScoreThreshold)
    register(NMS)
    register(TopK)
    register(BindFilter)
    register(TemporalConsistency)
    from avseg.combiners import LabelMap, Top1, Union

    register(Union)
    register(Top1)
    register(LabelMap)
