"""What a component returns is checked where the pipeline receives it: a wrong type, a count
that does not match the frames, a mask of another size or an index past the end is a one-line
error naming the component and what it returned, and what is right at the boundary (index
``n - 1``, ``n`` scores, a label map value equal to the label count) is accepted.

Every case runs a pipeline through ``avseg.load`` with test doubles whose config picks the
wrong thing they return. Fast (no model), so that ``make mutants`` can judge the output checks
with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml

import avseg
from avseg import hookimpl
from avseg.components import (
    Capabilities,
    ClipContext,
    ClipFilter,
    Combiner,
    ComponentConfig,
    Embedder,
    Filter,
    FrameContext,
    Proposer,
    Refiner,
    Segmenter,
    Tagger,
)
from avseg.errors import AvsegError
from avseg.registry import load_registry
from avseg.types import (
    AudioWindow,
    Combined,
    Drop,
    FilterResult,
    FloatArray,
    Image,
    Proposals,
    SegmenterOutput,
    Tags,
)

H, W, N = 32, 48, 2  # frame size and frames per clip; the proposer gives two boxes per frame


class Bad(ComponentConfig):
    bad: str = ""  # which wrong thing to return ("" = the right thing)
    masks: bool = True  # the proposer: boxes with masks


def tag_list(n: int) -> list[Tags]:
    return [Tags.from_scores(["Bark"], [0.9]) for _ in range(n)]


class BadTagger(Tagger):
    name: ClassVar[str] = "bad-tagger"
    Config = Bad

    @property
    def vocabulary(self) -> list[str]:
        return ["Bark"]

    def tag(self, windows: Sequence[AudioWindow]) -> list[Tags]:
        bad, n = self.config.bad, len(windows)  # type: ignore[attr-defined]
        return {"": lambda: tuple(tag_list(n)), "short": lambda: tag_list(n - 1),
                "dicts": lambda: [{"Bark": 0.9}] * n,
                "mixed": lambda: [*tag_list(n - 1), {"Bark": 0.9}]}[bad]()  # type: ignore[return-value]


def two_objects(hw: tuple[int, int], masks: bool = True, extra_cols: int = 0) -> Proposals:
    boxes = np.array([[0, 0, 8, 8], [20, 0, 30, 10]], np.float32)
    m = None
    if masks:
        m = np.zeros((2, hw[0], hw[1] + extra_cols), bool)
        m[0, :8, :8] = m[1, :10, 20:30] = True
    return Proposals(boxes, np.array([0.9, 0.8], np.float32), masks=m)


class BadProposer(Proposer):
    name: ClassVar[str] = "bad-proposer"
    Config = Bad

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(gives_masks=config.masks)  # type: ignore[attr-defined]

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        cfg = self.config
        hw = (frames[0].shape[0], frames[0].shape[1])
        good = [two_objects(hw, cfg.masks) for _ in frames]  # type: ignore[attr-defined]
        return {"": lambda: good, "short": lambda: good[:-1], "none": lambda: [],
                "array": lambda: np.zeros((len(frames), 4)),
                "wide-masks": lambda: [good[0], two_objects(hw, True, extra_cols=1)],
                "tall-masks": lambda: [good[0], Proposals(good[0].boxes, good[0].scores,
                                                          masks=np.zeros((2, hw[0] + 1, hw[1]), bool))],
                }[cfg.bad]()  # type: ignore[attr-defined, return-value]


class BadEmbedder(Embedder):
    name: ClassVar[str] = "bad-embedder"
    Config = Bad

    def embed_audio(self, windows: Sequence[AudioWindow]) -> FloatArray:
        n, bad = len(windows), self.config.bad  # type: ignore[attr-defined]
        return {"audio-1d": lambda: np.ones(n, np.float32), "audio-rows": lambda: np.ones((n + 1, 2), np.float32),
                "audio-list": lambda: [np.ones(2, np.float32)] * n}.get(bad, lambda: np.ones((n, 2), np.float32))()

    def embed_regions(self, frames: Sequence[Image], proposals: Sequence[Proposals]) -> list[FloatArray]:
        bad = self.config.bad  # type: ignore[attr-defined]
        good = [np.ones((len(p), 2), np.float32) for p in proposals]
        return {"regions-short": lambda: good[:-1],
                "regions-rows": lambda: [good[0], np.ones((len(proposals[1]) + 1, 2), np.float32)],
                "regions-1d": lambda: [np.ones(len(p), np.float32) for p in proposals],
                "regions-array": lambda: np.stack(good)}.get(bad, lambda: tuple(good))()


class BadSegmenter(Segmenter):
    name: ClassVar[str] = "bad-segmenter"
    Config = Bad

    def segment(self, frames: Sequence[Image], boxes: Sequence[FloatArray]) -> list[SegmenterOutput]:
        bad = self.config.bad  # type: ignore[attr-defined]

        def out(i: int, f: Image, b: FloatArray) -> SegmenterOutput:
            n, (h, w) = len(b), f.shape[:2]
            shape = {"count": (n + 1, h, w), "size": (n, h, w + 1), "flat": (h, w), "rows": (n, h + 1, w)}
            masks = np.zeros(shape.get(bad, (n, h, w)) if i == 1 else (n, h, w), bool)
            scores = np.ones(n + (bad == "scores" and i == 1), np.float32)
            return SegmenterOutput(masks, scores)

        outs = [out(i, f, b) for i, (f, b) in enumerate(zip(frames, boxes))]
        return outs[:-1] if bad == "short" else outs

    def segment_clip(self, frames: Sequence[Image], proposals: Sequence[Proposals],
                     timestamps: Sequence[float]) -> list[Proposals]:
        bad = self.config.bad  # type: ignore[attr-defined]
        if not bad.startswith("clip"):
            return super().segment_clip(frames, proposals, timestamps)
        hw = frames[0].shape[:2]
        last = {"clip-no-masks": two_objects(hw, masks=False), "clip-wide": two_objects(hw, extra_cols=1),
                "clip-empty": Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)),
                "clip-short": None}[bad]
        out = [two_objects(hw) for _ in frames[:-1]]
        return out if last is None else [*out, last]


class BadRefiner(Refiner):
    name: ClassVar[str] = "bad-refiner"
    Config = Bad

    def refine_clip(self, ctx: ClipContext) -> list[Proposals]:
        hw = ctx.frames[0].shape[:2]
        bad = self.config.bad  # type: ignore[attr-defined]
        if bad == "wide":
            return [*ctx.proposals[:-1], two_objects(hw, extra_cols=1)]
        if bad == "empty-then-wide":  # an empty frame without masks does not end the checks
            empty = Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
            return [empty, two_objects(hw, extra_cols=1)]
        if bad == "count":  # Proposals checks its masks when built, not when they are replaced
            last = two_objects(hw)
            last.masks = np.zeros((len(last) + 1, *hw), bool)
            return [*ctx.proposals[:-1], last]
        return list(ctx.proposals)


class FilterConfig(Bad):
    keep: list[int] | None = None  # the indices it keeps (default: all)


def filter_result(cfg: Any, n: int, i: int, ctx: Any) -> FilterResult:
    """Frame ``i``'s result; the wrong thing only on the last frame (so frame 0 proves the rest works)."""
    keep = list(range(n)) if cfg.keep is None else list(cfg.keep)
    if i != N - 1:
        return FilterResult(keep=list(range(n)))
    bad = cfg.bad
    if bad == "np-keep":
        return FilterResult(keep=np.array(keep, np.int64))  # type: ignore[arg-type]
    if bad == "np-float-keep":
        return FilterResult(keep=np.array(keep, np.float64))  # type: ignore[arg-type]
    if bad == "np-2d-keep":
        return FilterResult(keep=np.array([keep], np.int64))  # type: ignore[arg-type]
    if bad == "float-keep":
        return FilterResult(keep=[float(k) for k in keep])  # type: ignore[misc]
    if bad == "np-int-items":
        return FilterResult(keep=[np.int32(k) for k in keep])  # type: ignore[misc]
    if bad == "drops-list":
        return FilterResult(keep=keep, drops=[])  # type: ignore[arg-type]
    if bad == "drops-first":  # keep the last item, drop the first
        return FilterResult(keep=[n - 1], drops={0: Drop("bad-filter", "y")})
    if bad.startswith("drops-"):  # keep the first item, drop the one named (n = 2 items)
        drops = {"drops-last": {1: Drop("bad-filter", "x")}, "drops-at-n": {2: Drop("bad-filter", "x")},
                 "drops-negative": {-1: Drop("bad-filter", "x")}, "drops-str": {1: "x"}}[bad]
        return FilterResult(keep=[0], drops=drops)  # type: ignore[arg-type]
    if bad.startswith("scores"):
        scores = {"scores-n": [0.5] * n, "scores-n+1": [0.5] * (n + 1), "scores-fewer": [0.5] * (n - 1),
                  "scores-2d": [[0.5]] * n, "scores-str": ["a"] * n, "scores-scalar": 0.5,
                  "scores-bool": [True] * n, "scores-array": np.full(n, 0.5), "scores-empty": []}[bad]
        return FilterResult(keep=keep, scores=scores)  # type: ignore[arg-type]
    if bad.startswith("added"):
        hw = ctx.frames[i].shape[:2] if isinstance(ctx, ClipContext) else ctx.frame.shape[:2]
        one = Proposals(np.array([[0, 20, 8, 28]], np.float32), np.array([0.7], np.float32),
                        masks=np.zeros((1, *hw), bool))
        kw: dict[str, Any] = {"added-list": {"added": []}, "added": {"added": one},
                              "added-emb": {"added": one, "added_embeddings": np.ones((1, 2), np.float32)},
                              "added-emb-rows": {"added": one, "added_embeddings": np.ones((2, 2), np.float32)},
                              "added-emb-1d": {"added": one, "added_embeddings": np.ones(1, np.float32)},
                              "added-reasons": {"added": one, "added_reasons": ["filled a gap"]},
                              "added-reasons-long": {"added": one, "added_reasons": ["a", "b"]},
                              "added-reasons-int": {"added": one, "added_reasons": [1]},
                              "added-reasons-str": {"added": one, "added_reasons": "a"}}[bad]
        return FilterResult(keep=keep, **kw)
    return FilterResult(keep=keep)


class BadFilter(Filter):
    name: ClassVar[str] = "bad-filter"
    Config = FilterConfig

    def __call__(self, ctx: FrameContext) -> FilterResult:
        if self.config.bad == "not-a-result":  # type: ignore[attr-defined]
            return [0, 1]  # type: ignore[return-value]
        return filter_result(self.config, len(ctx.proposals or []), ctx.index, ctx)


class BadClipFilter(ClipFilter):
    name: ClassVar[str] = "bad-clip-filter"
    Config = FilterConfig

    def filter_clip(self, ctx: ClipContext) -> list[FilterResult]:
        out = [filter_result(self.config, len(p), i, ctx) for i, p in enumerate(ctx.proposals)]
        return out[:-1] if self.config.bad == "short" else out  # type: ignore[attr-defined]


class UsesTags(BadFilter):
    """So that the tagger runs."""

    name: ClassVar[str] = "uses-tags"
    needs: ClassVar[frozenset[str]] = frozenset({"tags"})


class UsesEmbeddings(BadFilter):
    """So that the embedder runs."""

    name: ClassVar[str] = "uses-embeddings"
    needs: ClassVar[frozenset[str]] = frozenset({"embeddings"})


class CombinerConfig(ComponentConfig):
    bad: str = ""
    labels: list[Any] = ["a", "b"]
    top: int = 2  # the label map's largest value


class BadCombiner(Combiner):
    name: ClassVar[str] = "bad-combiner"
    Config = CombinerConfig

    def combine(self, frame: Image, kept: Proposals) -> Combined:
        cfg = self.config
        h, w = frame.shape[:2]
        mask = np.zeros((h, w), bool)
        lm = np.zeros((h, w), np.int32)
        lm[0, 0] = cfg.top  # type: ignore[attr-defined]
        bad = cfg.bad  # type: ignore[attr-defined]
        if bad == "array":
            return mask  # type: ignore[return-value]
        if bad.startswith("mask-"):
            mask = {"mask-wide": np.zeros((h, w + 1), bool), "mask-tall": np.zeros((h + 1, w), bool),
                    "mask-uint8": np.zeros((h, w), np.uint8), "mask-list": [[False] * w] * h}[bad]
        if bad.startswith("lm-"):
            lm = {"lm-float": lm.astype(np.float32), "lm-wide": np.zeros((h, w + 1), np.int32),
                  "lm-negative": lm - 1, "lm-uint8": lm.astype(np.uint8), "lm-list": lm.tolist()}[bad]
        return Combined(mask, None if bad == "no-lm" else lm, cfg.labels)  # type: ignore[attr-defined]


class Plugin:
    @hookimpl
    def register_taggers(self, register: Any) -> None:
        register(BadTagger)

    @hookimpl
    def register_proposers(self, register: Any) -> None:
        register(BadProposer)

    @hookimpl
    def register_embedders(self, register: Any) -> None:
        register(BadEmbedder)

    @hookimpl
    def register_segmenters(self, register: Any) -> None:
        register(BadSegmenter)

    @hookimpl
    def register_components(self, register: Any) -> None:
        register(BadRefiner)

    @hookimpl
    def register_filters(self, register: Any) -> None:
        register(BadFilter)
        register(BadClipFilter)
        register(UsesTags)
        register(UsesEmbeddings)

    @hookimpl
    def register_combiners(self, register: Any) -> None:
        register(BadCombiner)


@pytest.fixture(scope="module")
def reg() -> Any:
    return load_registry(plugins=[("returns", Plugin())], entry_points=False)


def run(reg: Any, tmp_path: Path, steps: list[dict[str, Any]], combiner: Any = None) -> Any:
    spec: dict[str, Any] = {"steps": steps}
    if combiner is not None:
        spec["combiner"] = combiner
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    frames = np.full((N, H, W, 3), 90, np.uint8)
    sr = 16000
    audio = (np.sin(2 * np.pi * 440 * np.arange(N * sr) / sr).astype(np.float32) * 0.3, sr)
    return avseg.load(path, registry=reg, cache=False, device="cpu")((frames, audio))  # "auto" would import torch


def refused(reg: Any, tmp_path: Path, steps: list[dict[str, Any]], message: str, combiner: Any = None) -> str:
    """The run fails with one line naming the component and matching ``message`` (a regex)."""
    with pytest.raises(AvsegError) as e:
        run(reg, tmp_path, steps, combiner)
    msg = str(e.value)
    assert "\n" not in msg and re.search(message, msg), msg
    return msg


def P(bad: str = "", masks: bool = True) -> dict[str, Any]:
    return {"proposer": {"type": "bad-proposer", "bad": bad, "masks": masks}}


def comp(kind: str, name: str, method: str) -> str:
    return rf"{kind} '{name}' \(from returns\) {method}\(\) "


# -- taggers -----------------------------------------------------------------------------------
def test_tagger_returns(reg: Any, tmp_path: Path) -> None:
    needs_tags = {"filter": "uses-tags"}
    assert len(run(reg, tmp_path, [{"tagger": "bad-tagger"}, P(), needs_tags]).frames) == N  # a tuple of Tags is fine
    refused(reg, tmp_path, [{"tagger": {"type": "bad-tagger", "bad": "short"}}, P(), needs_tags],
            comp("tagger", "bad-tagger", "tag") + r"returned a list of Tags of length 1; expected a list of 2 Tags$")
    refused(reg, tmp_path, [{"tagger": {"type": "bad-tagger", "bad": "dicts"}}, P(), needs_tags],
            r"tag\(\) returned a list of dict of length 2; expected a list of 2 Tags$")
    # the type shown is the first item's
    refused(reg, tmp_path, [{"tagger": {"type": "bad-tagger", "bad": "mixed"}}, P(), needs_tags],
            r"tag\(\) returned a list of Tags of length 2; expected a list of 2 Tags$")


# -- proposers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("bad", "message"), [
    ("short", r"returned a list of Proposals of length 1; expected a list of 2 Proposals$"),
    ("none", r"returned a list of length 0; expected a list of 2 Proposals$"),
    ("array", r"returned an array of shape \(2, 4\); expected a list of 2 Proposals$"),
    ("wide-masks", r"returned masks of shape \(2, 32, 49\) for frame 1 of size 32x48 \(H x W\); masks must be at "
                   r"the frame's size$"),
    ("tall-masks", r"returned masks of shape \(2, 33, 48\) for frame 1 of size 32x48"),
])
def test_proposer_returns(reg: Any, tmp_path: Path, bad: str, message: str) -> None:
    refused(reg, tmp_path, [P(bad)], comp("proposer", "bad-proposer", "propose") + message)


def test_right_proposals_pass_and_their_masks_are_the_output(reg: Any, tmp_path: Path) -> None:
    res = run(reg, tmp_path, [P()])
    assert [len(f.kept) for f in res.frames] == [2, 2]
    assert int(np.asarray(res.frames[1].mask).sum()) == 64 + 100


# -- embedders ---------------------------------------------------------------------------------
USE_EMB = {"filter": "uses-embeddings"}
EMB = [P(), {"embedder": "bad-embedder"}, USE_EMB]


@pytest.mark.parametrize(("bad", "message"), [
    ("audio-1d", r"embed_audio\(\) returned an array of shape \(2,\); expected an array of shape \(2, D\)$"),
    ("audio-rows", r"embed_audio\(\) returned an array of shape \(3, 2\); expected an array of shape \(2, D\)$"),
    ("audio-list", r"embed_audio\(\) returned a list of ndarray of length 2; expected"),
    ("regions-short", r"embed_regions\(\) returned a list of ndarray of length 1; expected a list of 2 \(N_i, D\) "
                      r"arrays, one row per proposal$"),
    ("regions-rows", r"embed_regions\(\) returned a list of ndarray of length 2; expected"),
    ("regions-1d", r"embed_regions\(\) returned a list of ndarray of length 2; expected"),
    ("regions-array", r"embed_regions\(\) returned an array of shape \(2, 2, 2\); expected"),
])
def test_embedder_returns(reg: Any, tmp_path: Path, bad: str, message: str) -> None:
    refused(reg, tmp_path, [P(), {"embedder": {"type": "bad-embedder", "bad": bad}}, USE_EMB],
            r"^embedder 'bad-embedder' \(from returns\) " + message)


def test_right_embeddings_pass(reg: Any, tmp_path: Path) -> None:
    res = run(reg, tmp_path, EMB)
    assert [len(f.kept) for f in res.frames] == [2, 2]


# -- segmenters and refiners -------------------------------------------------------------------
@pytest.mark.parametrize(("bad", "message"), [
    ("short", r"segment\(\) returned a list of SegmenterOutput of length 1; expected a list of 2 SegmenterOutput$"),
    ("count", r"segment\(\) returned masks of shape \(3, 32, 48\); expected \(2, 32, 48\) and 2 scores$"),
    ("size", r"segment\(\) returned masks of shape \(2, 32, 49\); expected \(2, 32, 48\) and 2 scores$"),
    ("rows", r"segment\(\) returned masks of shape \(2, 33, 48\); expected"),
    ("flat", r"segment\(\) returned masks of shape \(32, 48\); expected"),
    ("scores", r"segment\(\) returned masks of shape \(2, 32, 48\); expected \(2, 32, 48\) and 2 scores$"),
    ("clip-short", r"segment_clip\(\) returned a list of Proposals of length 1; expected a list of 2 Proposals$"),
    ("clip-no-masks", r"segment_clip\(\) gave frame 1 2 objects without masks; expected Proposals with masks$"),
    ("clip-wide", r"segment_clip\(\) returned masks of shape \(2, 32, 49\) for frame 1; expected \(2, 32, 48\): "
                  r"one frame-sized mask per object$"),
])
def test_segmenter_returns(reg: Any, tmp_path: Path, bad: str, message: str) -> None:
    refused(reg, tmp_path, [P(masks=False), {"segmenter": {"type": "bad-segmenter", "bad": bad}}],
            r"^segmenter 'bad-segmenter' \(from returns\) " + message)


def test_right_segments_pass(reg: Any, tmp_path: Path) -> None:
    res = run(reg, tmp_path, [P(masks=False), {"segmenter": "bad-segmenter"}])
    assert [len(f.kept) for f in res.frames] == [2, 2]
    # a clip-level segmenter may leave an empty frame without masks
    res = run(reg, tmp_path, [P(masks=False), {"segmenter": {"type": "bad-segmenter", "bad": "clip-empty"}}])
    assert [len(f.kept) for f in res.frames] == [2, 0] and not np.asarray(res.frames[1].mask).any()


def test_refiner_returns(reg: Any, tmp_path: Path) -> None:
    assert [len(f.kept) for f in run(reg, tmp_path, [P(), {"refiner": "bad-refiner"}]).frames] == [2, 2]
    refused(reg, tmp_path, [P(), {"refiner": {"type": "bad-refiner", "bad": "wide"}}],
            r"^refiner 'bad-refiner' \(from returns\) refine_clip\(\) returned masks of shape \(2, 32, 49\) for "
            r"frame 1; expected \(2, 32, 48\)")
    refused(reg, tmp_path, [P(), {"refiner": {"type": "bad-refiner", "bad": "empty-then-wide"}}],
            r"^refiner 'bad-refiner' \(from returns\) refine_clip\(\) returned masks of shape \(2, 32, 49\) for "
            r"frame 1; expected \(2, 32, 48\)")
    refused(reg, tmp_path, [P(), {"refiner": {"type": "bad-refiner", "bad": "count"}}],
            r"^refiner 'bad-refiner' \(from returns\) refine_clip\(\) returned masks of shape \(3, 32, 48\) for "
            r"frame 1; expected \(2, 32, 48\): one frame-sized mask per object$")


# -- filters -----------------------------------------------------------------------------------
def F(bad: str = "", keep: list[int] | None = None, clip: bool = False) -> dict[str, Any]:
    return {"filter": {"type": "bad-clip-filter" if clip else "bad-filter", "bad": bad, "keep": keep}}


def kept(reg: Any, tmp_path: Path, *filters: dict[str, Any]) -> list[list[int]]:
    """The ids kept per frame; the output mask is the kept objects' union."""
    frames = run(reg, tmp_path, [P(), *filters]).frames
    areas = {0: 64, 1: 100}
    for f in frames:
        assert int(np.asarray(f.mask).sum()) == sum(areas[o.id] for o in f.kept)
    return [[o.id for o in f.kept] for f in frames]


@pytest.mark.parametrize("clip", [False, True])
def test_keep_indices_at_the_boundaries(reg: Any, tmp_path: Path, clip: bool) -> None:
    name = "bad-clip-filter" if clip else "bad-filter"
    method = "filter_clip" if False else "__call__"
    assert kept(reg, tmp_path, F(keep=[1], clip=clip)) == [[0, 1], [1]]  # n - 1 is the last object
    assert kept(reg, tmp_path, F(keep=[0], clip=clip)) == [[0, 1], [0]]
    assert kept(reg, tmp_path, F(keep=[], clip=clip)) == [[0, 1], []]
    for keep, shown in (([2], "[2]"), ([-1], "[-1]"), ([1, 1], "[1, 1]"), ([0, 3], "[0, 3]")):
        refused(reg, tmp_path, [P(), F(keep=keep, clip=clip)],
                rf"^filter '{name}' \(from returns\) {method}\(\) returned keep={re.escape(shown)}; expected distinct "
                r"indices in \[0, 2\)$")
    # at most ten of the wrong indices are shown
    refused(reg, tmp_path, [P(), F(keep=list(range(5, 17)), clip=clip)],
            re.escape(f"returned keep={list(range(5, 15))}; expected"))


@pytest.mark.parametrize(("bad", "keep", "want"), [
    ("np-keep", [1, 0], [1, 0]),  # an integer array is read as the list
    ("np-keep", [], []),
    ("np-float-keep", [], []),  # an empty array of any dtype keeps nothing
    ("np-int-items", [1], [1]),
])
def test_keep_as_an_array_or_numpy_integers(reg: Any, tmp_path: Path, bad: str, keep: list[int],
                                            want: list[int]) -> None:
    got = kept(reg, tmp_path, F(bad, keep))[1]
    assert sorted(got) == sorted(want)


@pytest.mark.parametrize(("bad", "keep", "message"), [
    ("np-float-keep", [1], r"returned keep=an array of shape \(1,\); expected a list of indices$"),
    ("np-2d-keep", [0, 1], r"returned keep=an array of shape \(1, 2\); expected a list of indices$"),
    ("float-keep", [0], r"returned keep=a list of float of length 1; expected a list of indices$"),
    ("drops-list", None, r"returned drops=a list of length 0; expected a dict$"),
    ("not-a-result", None, r"returned a list of int of length 2; expected a FilterResult$"),
])
def test_keep_and_drops_of_the_wrong_type(reg: Any, tmp_path: Path, bad: str, keep: list[int] | None,
                                          message: str) -> None:
    refused(reg, tmp_path, [P(), F(bad, keep)], r"^filter 'bad-filter' \(from returns\) __call__\(\) " + message)


def test_a_drop_of_the_last_item_is_traced(reg: Any, tmp_path: Path) -> None:
    *rest, last = run(reg, tmp_path, [P(), F("drops-last")]).frames  # only the last frame drops
    assert [o.id for o in last.kept] == [0]
    assert [(o.id, o.dropped_by, o.reason) for o in last.dropped] == [(1, "bad-filter", "x")]
    assert all([o.id for o in f.kept] == [0, 1] for f in rest)
    *_, last = run(reg, tmp_path, [P(), F("drops-first")]).frames  # index 0 is an item too
    assert [o.id for o in last.kept] == [1] and [(o.id, o.reason) for o in last.dropped] == [(0, "y")]


@pytest.mark.parametrize(("bad", "shown"), [("drops-at-n", "2: a Drop"), ("drops-negative", "-1: a Drop"),
                                            ("drops-str", "1: a str")])
def test_drops_outside_the_items_or_not_a_drop_are_refused(reg: Any, tmp_path: Path, bad: str, shown: str) -> None:
    refused(reg, tmp_path, [P(), F(bad)], r"^filter 'bad-filter' \(from returns\) __call__\(\) returned "
                                          r"drops=\{" + shown + r"\}; expected indices in \[0, 2\), each with an "
                                          r"avseg.types.Drop$")


@pytest.mark.parametrize("bad", ["scores-n", "scores-fewer", "scores-bool", "scores-array", "scores-empty"])
def test_scores_of_at_most_n_numbers_are_accepted(reg: Any, tmp_path: Path, bad: str) -> None:
    assert kept(reg, tmp_path, F(bad)) == [[0, 1], [0, 1]]


@pytest.mark.parametrize(("bad", "what"), [("scores-n+1", "a list of float of length 3"),
                                           ("scores-2d", "a list of list of length 2"),
                                           ("scores-str", "a list of str of length 2"),
                                           ("scores-scalar", "a float")])
def test_scores_that_are_not_n_numbers_are_refused(reg: Any, tmp_path: Path, bad: str, what: str) -> None:
    refused(reg, tmp_path, [P(), F(bad)], rf"__call__\(\) returned scores={what}; expected None or at most 2 numbers "
                                          r"\(one per input item\)$")


@pytest.mark.parametrize("bad", ["added", "added-emb", "added-reasons"])
def test_added_objects_join_the_frame(reg: Any, tmp_path: Path, bad: str) -> None:
    frames = run(reg, tmp_path, [P(), {"embedder": "bad-embedder"}, USE_EMB, F(bad, clip=True)]).frames
    assert [len(f.kept) for f in frames] == [2, 3]


@pytest.mark.parametrize(("bad", "message"), [
    ("added-list", r"returned added=a list of length 0; expected None or avseg.types.Proposals$"),
    ("added-emb-rows", r"returned added_embeddings=an array of shape \(2, 2\); expected None or a \(1, D\) array$"),
    # one row, as many as added objects, but 1-D: only the ndim check refuses it
    ("added-emb-1d", r"returned added_embeddings=an array of shape \(1,\); expected None or a \(1, D\) array$"),
    ("added-reasons-long", r"returned added_reasons=a list of str of length 2; expected None or 1 strings$"),
    ("added-reasons-int", r"returned added_reasons=a list of int of length 1; expected None or 1 strings$"),
    ("added-reasons-str", r"returned added_reasons=a str; expected None or 1 strings$"),
])
def test_added_objects_of_the_wrong_shape_are_refused(reg: Any, tmp_path: Path, bad: str, message: str) -> None:
    refused(reg, tmp_path, [P(), {"embedder": "bad-embedder"}, USE_EMB, F(bad, clip=True)],
            r"^filter 'bad-clip-filter' \(from returns\) __call__\(\) " + message)


def test_a_clip_filter_gives_one_result_per_frame(reg: Any, tmp_path: Path) -> None:
    refused(reg, tmp_path, [P(), F("short", clip=True)],
            r"^filter 'bad-clip-filter' \(from returns\) filter_clip\(\) returned a list of FilterResult of length 1; "
            r"expected a list of 2 FilterResult$")


# -- combiners ---------------------------------------------------------------------------------
def test_a_label_map_may_use_every_label(reg: Any, tmp_path: Path) -> None:
    """Values 0..len(labels): the top value names the last label."""
    for cfg in ({"type": "bad-combiner"}, {"type": "bad-combiner", "bad": "lm-uint8"},
                {"type": "bad-combiner", "bad": "no-lm"}, {"type": "bad-combiner", "labels": ["a", "b", "c"]},
                {"type": "bad-combiner", "top": 0}):  # all background: the map of a frame with nothing kept
        frames = run(reg, tmp_path, [P()], cfg).frames
        assert len(frames) == N


@pytest.mark.parametrize(("cfg", "message"), [
    ({"bad": "array"}, r"combine\(\) returned an array of shape \(32, 48\); expected a Combined$"),
    ({"bad": "mask-wide"}, r"combine\(\) returned mask=an array of shape \(32, 49\) of bool; expected a bool array "
                           r"of the frame's size 32x48 \(H x W\); convert it, e.g. mask > 0$"),
    ({"bad": "mask-tall"}, r"returned mask=an array of shape \(33, 48\) of bool; expected"),
    ({"bad": "mask-uint8"}, r"returned mask=an array of shape \(32, 48\) of uint8; expected"),
    ({"bad": "mask-list"}, r"returned mask=a list of list of length 32; expected a bool array"),
    ({"labels": [1, 2]}, r"combine\(\) returned labels=a list of int of length 2; expected a list of str$"),
    ({"top": 3}, r"combine\(\) returned label_map=an array of shape \(32, 48\); expected None or an integer array of "
                 r"the frame's size 32x48 with values 0..2 \(indices into labels, 0 = background\)$"),
    ({"bad": "lm-negative"}, r"returned label_map=an array of shape \(32, 48\); expected"),
    ({"bad": "lm-float"}, r"returned label_map=an array of shape \(32, 48\); expected"),
    ({"bad": "lm-wide"}, r"returned label_map=an array of shape \(32, 49\); expected"),
    ({"bad": "lm-list"}, r"returned label_map=a list of list of length 32; expected"),
])
def test_combiner_returns(reg: Any, tmp_path: Path, cfg: dict[str, Any], message: str) -> None:
    if not message.startswith("combine"):
        message = r"combine\(\) " + message
    refused(reg, tmp_path, [P()], r"^combiner 'bad-combiner' \(from returns\) " + message,
            combiner={"type": "bad-combiner", **cfg})
