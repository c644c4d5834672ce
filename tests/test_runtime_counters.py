"""Runtime.mark/since: the one counter snapshot and delta that run, eval, ablate and Ray use."""

from __future__ import annotations

from avseg.runtime import Runtime


def test_since_gives_only_what_grew_after_the_mark() -> None:
    rt = Runtime()
    rt.count("a.computed", 2)
    rt.count("b.cache_hit")
    rt.timings["load"] = 1.5
    mark = rt.mark()
    rt.count("a.computed")
    rt.count("c.new", 3)
    rt.timings["stage"] = 0.25
    counters, timings = rt.since(mark)
    assert counters == {"a.computed": 1, "c.new": 3}  # b did not change: left out
    assert timings == {"stage": 0.25}
    assert rt.since(rt.mark()) == ({}, {})
    mark.counters["a.computed"] = 0  # a mark is a copy: the runtime's totals are untouched
    assert rt.counters["a.computed"] == 3
