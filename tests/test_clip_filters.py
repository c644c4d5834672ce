"""Clip-scope filters: the temporal-consistency filter on synthetic clips, through the executor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import Field

from avseg import hookimpl
from avseg.components import ClipContext, ClipFilter, ComponentConfig, Proposer
from avseg.errors import ComponentFailed
from avseg.pipeline import Pipeline
from avseg.registry import load_registry
from avseg.runtime import Runtime
from avseg.spec import compose, resolve
from avseg.types import Clip, FilterResult, Image, Proposals
from tests.fakes import FakePlugin

STEADY = [4.0, 4.0, 20.0, 20.0]
FLICKER = [40.0, 30.0, 60.0, 46.0]


class ScriptConfig(ComponentConfig):
    boxes: list[list[list[float]]] = Field(default_factory=list, description="per frame, its boxes")


class ScriptedBoxes(Proposer):
    """Exactly the boxes of its config, frame by frame (score 0.9)."""

    name: ClassVar[str] = "scripted"
    description: ClassVar[str] = "fake proposer with given boxes per frame"
    Config = ScriptConfig

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        cfg = self.config
        assert isinstance(cfg, ScriptConfig)
        return [Proposals(np.asarray(cfg.boxes[i], np.float32).reshape(-1, 4), np.full(len(cfg.boxes[i]), 0.9, np.float32))
                for i in range(len(frames))]


class WrongLength(ClipFilter):
    name: ClassVar[str] = "wrong-length"
    description: ClassVar[str] = "a buggy clip filter: one result for the whole clip"

    def filter_clip(self, ctx: ClipContext) -> list[FilterResult]:
        return [FilterResult(keep=[])]


class Plugin:
    @hookimpl
    def register_proposers(self, register: Any) -> None:
        register(ScriptedBoxes)

    @hookimpl
    def register_filters(self, register: Any) -> None:
        register(WrongLength)


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    return load_registry(plugins=[("fake", FakePlugin()), ("scripted", Plugin())])


def clip(n: int = 4) -> Clip:
    frames = [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(n)]
    sr = 8000
    return Clip.from_arrays("flicker", frames, np.zeros(n * sr, np.float32), sr)


def steps(boxes: list[list[list[float]]], **tc: Any) -> dict[str, Any]:
    return {"steps": [{"proposer": {"type": "scripted", "boxes": boxes}}, {"segmenter": "box-masks"},
                      {"filter": {"type": "temporal-consistency", **tc}}]}


def test_a_flickering_proposal_is_dropped_and_a_steady_one_kept(registry) -> None:  # type: ignore[no-untyped-def]
    boxes = [[STEADY], [STEADY], [STEADY, FLICKER], [STEADY]]
    res = Pipeline(resolve(steps(boxes), registry), Runtime(device="cpu")).run_clip(clip())
    for fr in res.frames:
        assert fr.kept.boxes.tolist() == [STEADY]
        assert fr.mask[4:20, 4:20].all() and fr.mask.sum() == 16 * 16
    flick = [r for r in res.frames[2].trace if r["box"] == FLICKER]
    assert len(flick) == 1 and not flick[0]["kept"]
    assert flick[0]["dropped_by"] == "temporal-consistency" and "seen in 1 of 4 frames" in flick[0]["reason"]
    # without the filter the flicker would be in frame 2's mask
    plain = {"steps": steps(boxes)["steps"][:2]}
    assert Pipeline(resolve(plain, registry), Runtime(device="cpu")).run_clip(clip()).frames[2].mask[30:46, 40:60].all()


def test_a_moving_object_stays_one_track(registry) -> None:  # type: ignore[no-untyped-def]
    boxes = [[[4.0 + 3 * i, 4.0, 20.0 + 3 * i, 20.0]] for i in range(4)]
    res = Pipeline(resolve(steps(boxes, min_frames=4), registry), Runtime(device="cpu")).run_clip(clip())
    assert [len(fr.kept) for fr in res.frames] == [1, 1, 1, 1]
    assert {r["detail"]["temporal-consistency"]["track"] for fr in res.frames for r in fr.trace} == {0}


def test_fill_gaps_copies_the_mask_into_the_missing_frame(registry) -> None:  # type: ignore[no-untyped-def]
    boxes = [[STEADY], [STEADY], [], [STEADY]]
    off = Pipeline(resolve(steps(boxes), registry), Runtime(device="cpu")).run_clip(clip())
    assert not off.frames[2].mask.any()
    res = Pipeline(resolve(steps(boxes, fill_gaps=True), registry), Runtime(device="cpu")).run_clip(clip())
    assert np.array_equal(res.frames[2].mask, res.frames[1].mask) and res.frames[2].mask.any()
    added = [r for r in res.frames[2].trace if r.get("origin") == "temporal-consistency"]
    assert len(added) == 1 and added[0]["kept"] and "filled from frame 1" in added[0]["added"]
    # a gap longer than max_gap splits the track: both halves too short, nothing filled
    boxes = [[STEADY], [], [], [STEADY]]
    res = Pipeline(resolve(steps(boxes, fill_gaps=True), registry), Runtime(device="cpu")).run_clip(clip())
    assert not any(fr.mask.any() for fr in res.frames)


def test_embeddings_keep_two_overlapping_objects_apart(registry) -> None:  # type: ignore[no-untyped-def]
    """Same box in frames 0-1, but the colour (mean-colour embedding) changes: not one track."""
    frames = [np.zeros((48, 64, 3), np.uint8) for _ in range(2)]
    frames[0][:, :, 0] = 200  # red, then blue
    frames[1][:, :, 2] = 200
    c = Clip.from_arrays("colours", frames, np.zeros(16000, np.float32), 8000)
    spec = {"steps": [{"proposer": {"type": "scripted", "boxes": [[STEADY], [STEADY]]}},
                      {"embedder": "mean-colour"}, {"segmenter": "box-masks"},
                      {"filter": {"type": "temporal-consistency", "similarity_threshold": 0.9}}]}
    res = Pipeline(resolve(spec, registry), Runtime(device="cpu")).run_clip(c)
    assert [len(fr.kept) for fr in res.frames] == [0, 0]
    spec["steps"][3]["filter"]["use_embeddings"] = False
    res = Pipeline(resolve(spec, registry), Runtime(device="cpu")).run_clip(c)
    assert [len(fr.kept) for fr in res.frames] == [1, 1]


@pytest.mark.parametrize("preset", ["at-gdino-sam", "owod-bind", "owod-bind-softmax", "sam-bind", "bavs",
                                    "owod-bind-authors"])
def test_temporal_consistency_composes_into_every_bundled_preset(registry, preset: str) -> None:  # type: ignore[no-untyped-def]
    spec = compose(preset, filters=["temporal-consistency"], registry=registry)
    rs = resolve(spec, registry)
    assert rs.step_names()[-1] == "filter:temporal-consistency" or "filter:temporal-consistency" in rs.step_names()


def test_a_clip_filter_returning_the_wrong_number_of_results_fails_in_one_line(registry) -> None:  # type: ignore[no-untyped-def]
    spec = {"steps": [{"proposer": {"type": "scripted", "boxes": [[STEADY]] * 2}}, {"segmenter": "box-masks"},
                      {"filter": "wrong-length"}]}
    with pytest.raises(ComponentFailed, match=r"filter 'wrong-length' \(from scripted\) filter_clip\(\) returned a "
                                              r"list of FilterResult of length 1; expected a list of 2 FilterResult"):
        Pipeline(resolve(spec, registry), Runtime(device="cpu")).run_clip(clip(2))


def test_a_clip_scope_without_filter_clip_is_refused_before_running() -> None:
    """Refused at registration (a broken plugin with the reason), so naming it fails before any model loads."""
    from avseg.components import Filter, FrameContext
    from avseg.errors import UnknownComponent

    class Confused(Filter):
        name: ClassVar[str] = "confused"
        description: ClassVar[str] = "says clip scope but implements the frame interface"
        scope: ClassVar[Any] = "clip"

        def __call__(self, ctx: FrameContext) -> FilterResult:
            return FilterResult(keep=[])

    class P:
        @hookimpl
        def register_filters(self, register: Any) -> None:
            register(Confused)

    reg = load_registry(plugins=[("fake", FakePlugin()), ("scripted", Plugin()), ("confused", P())])
    spec = {"steps": [{"proposer": {"type": "scripted", "boxes": [[STEADY]]}}, {"segmenter": "box-masks"},
                      {"filter": "confused"}]}
    (broken,) = [b for b in reg.broken if b.plugin == "confused"]
    assert "filter 'confused'" in broken.reason and "subclasses avseg.components.ClipFilter" in broken.reason
    with pytest.raises(UnknownComponent, match="broken plugins: confused"):
        resolve(spec, reg)
