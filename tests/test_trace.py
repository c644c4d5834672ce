"""The debug trace as typed records (avseg/trace.py): built in one place, read by Result as they
are, written as trace.json with the keys, order and values it always had; and the one filter
path (a frame filter is run through the default ``Filter.filter_clip``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from avseg import hookimpl, validate
from avseg.components import ClipContext, ClipFilter, Filter, FrameContext
from avseg.errors import ComponentFailed
from avseg.pipeline import Pipeline
from avseg.registry import load_registry
from avseg.result import Result
from avseg.runtime import Runtime
from avseg.spec import resolve
from avseg.trace import FrameTrace, ObjectTrace, TagTrace, to_json
from avseg.types import CandidateDrop, Drop, FilterResult, Proposals, Tags
from tests.fakes import FakePlugin
from tests.test_pipeline import red_clip

#: what `avseg run --debug` wrote for CHAIN before the records were typed (frame 0's items, in order)
FROZEN_ITEMS: list[list[tuple[str, Any]]] = [
    [("id", 0), ("box", [0.0, 0.0, 20.0, 20.0]), ("score", 0.8999999761581421), ("label", None), ("kept", True),
     ("scores", {"score-threshold": 0.9}), ("detail", {})],
    [("id", 1), ("box", [20.0, 0.0, 40.0, 20.0]), ("score", 0.699999988079071), ("label", None), ("kept", True),
     ("scores", {"score-threshold": 0.7}), ("detail", {})],
    [("id", 2), ("box", [40.0, 0.0, 60.0, 20.0]), ("score", 0.5), ("label", None), ("kept", False),
     ("scores", {"score-threshold": 0.5}), ("detail", {}), ("dropped_by", "score-threshold"),
     ("reason", "score 0.500 < 0.600")],
    [("kind", "tag"), ("tag", "Speech"), ("p", 0.10000000149011612), ("dropped_by", "tag-threshold"),
     ("reason", "probability 0.100 < 0.500")],
]
CHAIN = {"steps": [{"tagger": "tone"}, {"filter": {"type": "tag-threshold", "threshold": 0.5, "deny": []}},
                   {"proposer": {"type": "grid-boxes", "n": 3}},
                   {"filter": {"type": "score-threshold", "threshold": 0.6}}, {"segmenter": "box-masks"}]}


class Spy(Filter):
    """A third-party frame filter: only ``__call__``; keeps all but the last proposal, records its calls."""

    name: ClassVar[str] = "spy"
    calls: ClassVar[list[tuple[int, int | None, bool]]] = []

    def __call__(self, ctx: FrameContext) -> FilterResult:
        n = len(ctx.proposals) if ctx.proposals is not None else None
        type(self).calls.append((ctx.index, n, ctx.region_embeddings is not None))
        assert n is not None
        return FilterResult(keep=list(range(n - 1)), drops={n - 1: Drop(self.name, "last")})


class TagSpy(Filter):
    name: ClassVar[str] = "tag-spy"
    target: ClassVar[Any] = "tags"
    calls: ClassVar[list[tuple[int, bool, list[str]]]] = []

    def __call__(self, ctx: FrameContext) -> FilterResult:
        assert ctx.tags is not None
        type(self).calls.append((ctx.index, ctx.proposals is None, list(ctx.tags.names)))
        return FilterResult(keep=[0])


class PastEnd(Filter):
    name: ClassVar[str] = "past-end"

    def __call__(self, ctx: FrameContext) -> FilterResult:
        assert ctx.proposals is not None
        return FilterResult(keep=[len(ctx.proposals)])  # one past the last index


class Short(ClipFilter):
    name: ClassVar[str] = "short"

    def filter_clip(self, ctx: ClipContext) -> list[FilterResult]:
        return [FilterResult(keep=[]) for _ in ctx.frames[1:]]  # one result short


class Plugin:
    @hookimpl
    def register_filters(self, register: Any) -> None:
        for cls in (Spy, TagSpy, PastEnd, Short):
            register(cls)


@pytest.fixture
def registry():  # type: ignore[no-untyped-def]
    return load_registry(plugins=[("fake", FakePlugin()), ("mine", Plugin())])


def test_debug_json_keeps_the_trace_format(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = red_clip(1)
    res = Pipeline(resolve(CHAIN, registry), Runtime(device="cpu")).run_clip(clip)
    Result(clip, res.frames, {}).save(tmp_path, debug=True)
    items = json.loads((tmp_path / "debug" / "00000.json").read_text())["items"]
    assert [list(i.items()) for i in items] == FROZEN_ITEMS
    # the frame's records are typed; Result reads them as they are
    [fr] = res.frames
    assert [type(r) for r in fr.trace] == [ObjectTrace] * 3 + [TagTrace]
    view = Result(clip, res.frames, {}).frames[0]
    assert [(o.id, o.kept, o.dropped_by, o.scores) for o in view.objects] == [
        (0, True, None, {"score-threshold": 0.9}), (1, True, None, {"score-threshold": 0.7}),
        (2, False, "score-threshold", {"score-threshold": 0.5})]
    assert view.objects[1].box == (20.0, 0.0, 40.0, 20.0) and view.objects[1].mask is not None
    assert view.objects[2].mask is None
    assert view.dropped_tags == [{"tag": "Speech", "p": pytest.approx(0.1), "dropped_by": "tag-threshold",
                                  "reason": "probability 0.100 < 0.500"}]


def test_records_read_like_their_json_entry() -> None:
    rec = ObjectTrace(3, [1.0, 2.0, 3.0, 4.0], 0.5, "dog", kept=False, dropped_by="nms", reason="iou 0.9")
    assert rec["kept"] is False and rec.get("origin") is None and "origin" not in rec and "dropped_by" in rec
    assert rec == rec.as_dict() and dict(rec) == rec.as_dict()
    assert list(TagTrace("Bark", 0.2, "tag-threshold", "low").as_dict()) == ["kind", "tag", "p", "dropped_by", "reason"]


def test_frame_trace_follows_the_objects_through_every_step() -> None:
    t = FrameTrace()
    props = Proposals(np.array([[0, 0, 10, 10], [10, 0, 20.04, 10], [0, 10, 10, 20]], np.float32),
                      np.array([0.9, 0.8, 0.7], np.float32), ["a", "b", "c"],
                      drops=[CandidateDrop([1, 1, 5, 5], 0.1, "top-k 3", "d")])
    t.propose(props, "prop")
    assert t.alive == [0, 1, 2] and [r.id for r in t.objects] == [0, 1, 2, 3]
    assert t.objects[1].box == [10.0, 0.0, 20.0, 10.0]  # rounded to 0.1
    assert t.objects[3].as_dict() == {"id": 3, "box": [1.0, 1.0, 5.0, 5.0], "score": pytest.approx(0.1), "label": "d",
                                      "kept": False, "scores": {}, "detail": {}, "dropped_by": "prop",
                                      "reason": "top-k 3"}
    # scores shorter than the objects: only the first ones get a score; the kept order is the filter's
    t.filtered("f", FilterResult(keep=[2, 0], drops={1: Drop("f", "why")}, scores=[0.12345, 0.5], extra=[{"x": 1}]))
    assert t.alive == [2, 0]
    assert t.objects[0].scores == {"f": 0.1235} and t.objects[1].scores == {"f": 0.5} and t.objects[2].scores == {}
    assert t.objects[0].detail == {"f": {"x": 1}} and t.objects[1].detail == {}
    assert (t.objects[1].kept, t.objects[1].dropped_by, t.objects[1].reason) == (False, "f", "why")
    t.add(Proposals(np.array([[5, 5, 6, 6]], np.float32), np.array([0.4], np.float32)), "gap", ["filled"])
    assert t.alive == [2, 0, 4]
    t.drop([4], "merge", "merged")
    assert list(t.objects[4].as_dict().items())[-4:] == [("origin", "gap"), ("added", "filled"),
                                                        ("dropped_by", "merge"), ("reason", "merged")]
    t.tags_filtered(Tags(["x", "y"], np.array([0.6, 0.3], np.float32)), FilterResult(keep=[0], drops={1: Drop("tf", "low")}))
    assert [type(r) for r in t.records()] == [ObjectTrace] * 5 + [TagTrace]
    assert to_json(t.records())[-1] == {"kind": "tag", "tag": "y", "p": pytest.approx(0.3), "dropped_by": "tf",
                                        "reason": "low"}


def test_a_frame_filter_runs_through_the_default_filter_clip(registry) -> None:  # type: ignore[no-untyped-def]
    Spy.calls.clear()
    TagSpy.calls.clear()
    spec = {"steps": [{"tagger": "tone"}, {"filter": "tag-spy"}, {"proposer": {"type": "grid-boxes", "n": 3}},
                      {"embedder": "mean-colour"}, {"filter": "spy"}, {"segmenter": "box-masks"}]}
    res = Pipeline(resolve(spec, registry), Runtime(device="cpu")).run_clip(red_clip(2))
    # once per frame, with that frame's objects and embeddings; a tag filter sees the tags only
    assert Spy.calls == [(0, 3, True), (1, 3, True)]
    assert TagSpy.calls == [(0, True, ["Bark", "Speech"]), (1, True, ["Bark", "Speech"])]
    for fr in res.frames:
        assert len(fr.kept) == 2 and fr.tags is not None and fr.tags.names == ["Bark"]
        assert [(r["id"], r["kept"], r.get("dropped_by")) for r in fr.trace if "box" in r] == [
            (0, True, None), (1, True, None), (2, False, "spy")]


def test_the_item_count_rule_names_the_method_the_filter_wrote(registry) -> None:  # type: ignore[no-untyped-def]
    base = [{"proposer": {"type": "grid-boxes", "n": 3}}, {"segmenter": "box-masks"}]
    pipe = Pipeline(resolve({"steps": [*base, {"filter": "past-end"}]}, registry), Runtime(device="cpu"))
    with pytest.raises(ComponentFailed, match=r"^filter 'past-end' \(from mine\) __call__\(\) returned keep=\[3\]; "
                                              r"expected distinct indices in \[0, 3\)$"):
        pipe.run_clip(red_clip(2))
    pipe = Pipeline(resolve({"steps": [*base, {"filter": "short"}]}, registry), Runtime(device="cpu"))
    with pytest.raises(ComponentFailed, match=r"^filter 'short' \(from mine\) filter_clip\(\) returned a list of "
                                              r"FilterResult of length 1; expected a list of 2 FilterResult$"):
        pipe.run_clip(red_clip(2))


def test_filter_results_checks_each_frame_against_its_own_count() -> None:
    class F:
        kind, name, provider = "filter", "ok", "x"

    ok = validate.filter_results(F(), [FilterResult(keep=[1]), FilterResult(keep=[0])], [2, 1])  # type: ignore[arg-type]
    assert [r.keep for r in ok] == [[1], [0]]
    with pytest.raises(ComponentFailed, match=r"keep=\[1\]; expected distinct indices in \[0, 1\)"):
        validate.filter_results(F(), [FilterResult(keep=[0]), FilterResult(keep=[1])], [2, 1])  # type: ignore[arg-type]
