"""Explicit steps: order checks, legacy conversion, composition, clip-level segmenters, proposer
drops, combiners, and the authors' OWOD-BIND order as a preset."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytest
import yaml
from pydantic import Field

from avseg import hookimpl
from avseg.cache import StageCache
from avseg.components import ComponentConfig, Embedder, Proposer, Segmenter
from avseg.errors import ChainError, ConfigError
from avseg.pipeline import Pipeline
from avseg.registry import load_registry
from avseg.runtime import Runtime
from avseg.spec import compose, resolve
from avseg.types import AudioWindow, CandidateDrop, Clip, FloatArray, Image, Proposals, SegmenterOutput
from tests.fakes import FakePlugin
from tests.helpers import cli


class SeenConfig(ComponentConfig):
    regions: Literal["auto", "box", "masked"] = "auto"


class MaskSeer(Embedder):
    """Records whether the proposals it got carried masks; embeds the masked area's share."""

    name: ClassVar[str] = "mask-seer"
    description: ClassVar[str] = "fake embedder that records masks"
    Config = SeenConfig
    saw: ClassVar[list[bool]] = []

    def embed_audio(self, windows: Sequence[AudioWindow]) -> FloatArray:
        return np.ones((len(windows), 2), np.float32)

    def embed_regions(self, frames: Sequence[Image], proposals: Sequence[Proposals]) -> list[FloatArray]:
        out = []
        for p in proposals:
            type(self).saw.append(p.masks is not None)
            share = p.masks.mean(axis=(1, 2)) if p.masks is not None else np.zeros(len(p))
            out.append(np.stack([np.ones(len(p)), share], axis=1).astype(np.float32))
        return out


class CappedConfig(ComponentConfig):
    top_k: int = Field(1, ge=1)


class Capped(Proposer):
    """Three boxes, keeps top_k and reports the others as its own drops."""

    name: ClassVar[str] = "capped"
    description: ClassVar[str] = "fake proposer with a top-k cap"
    Config = CappedConfig

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        k = self.config.top_k  # type: ignore[attr-defined]
        boxes = np.asarray([[0, 0, 10, 10], [10, 10, 20, 20], [20, 20, 30, 30]], np.float32)
        scores = np.asarray([0.9, 0.8, 0.7], np.float32)
        return [Proposals(boxes[:k], scores[:k], drops=[CandidateDrop(boxes[i].tolist(), float(scores[i]),
                                                                      f"beyond top-{k}") for i in range(k, 3)])
                for _ in frames]


class Propagating(Segmenter):
    """A clip-level segmenter: masks each box, and carries frame 0's first object into every frame
    where the proposer found nothing (as a video segmenter's propagation would)."""

    name: ClassVar[str] = "propagating"
    description: ClassVar[str] = "fake clip-level segmenter"

    def segment(self, frames: Sequence[Image], boxes: Sequence[FloatArray]) -> list[SegmenterOutput]:
        out = []
        for f, b in zip(frames, boxes):
            m = np.zeros((len(b), *f.shape[:2]), bool)
            for j, (x0, y0, x1, y1) in enumerate(b.astype(int)):
                m[j, y0:y1, x0:x1] = True
            out.append(SegmenterOutput(m, np.ones(len(b), np.float32)))
        return out

    def segment_clip(self, frames: Sequence[Image], proposals: Sequence[Proposals],
                     timestamps: Sequence[float]) -> list[Proposals]:
        base = super().segment_clip(frames, proposals, timestamps)
        first = base[0].subset([0])
        return [p if len(p) else first for p in base]


class Plugin:
    @hookimpl
    def register_embedders(self, register: Any) -> None:
        register(MaskSeer)

    @hookimpl
    def register_proposers(self, register: Any) -> None:
        register(Capped)

    @hookimpl
    def register_segmenters(self, register: Any) -> None:
        register(Propagating)


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    return load_registry(plugins=[("fake", FakePlugin()), ("steps-test", Plugin())])


def clip(n: int = 2) -> Clip:
    frames = [np.zeros((40, 80, 3), np.uint8) for _ in range(n)]
    for f in frames:
        f[:, :20] = [220, 0, 0]
    return Clip.from_arrays("steps", frames, np.zeros(n * 8000, np.float32), 8000)


def names(rs: Any) -> list[str]:
    return list(rs.step_names())


# -- order and validation ------------------------------------------------------------------------
def test_segmenter_before_embedder_gives_the_embedder_masks(registry) -> None:  # type: ignore[no-untyped-def]
    spec = {"steps": [{"proposer": {"type": "grid-boxes", "n": 2}}, {"segmenter": "box-masks"},
                      {"embedder": {"type": "mask-seer", "regions": "masked"}}, {"filter": {"type": "cos", "threshold": 0.0}}]}
    rs = resolve(spec, registry)
    assert names(rs) == ["proposer:grid-boxes", "segmenter:box-masks", "embedder:mask-seer", "filter:cos"]
    MaskSeer.saw = []
    Pipeline(rs, Runtime(device="cpu")).run_clip(clip())
    assert MaskSeer.saw == [True, True]
    # the legacy order runs the embedder first: no masks yet
    MaskSeer.saw = []
    legacy = {"proposer": {"type": "grid-boxes", "n": 2}, "embedder": "mask-seer", "segmenter": "box-masks",
              "filters": [{"type": "cos", "threshold": 0.0}]}
    assert names(resolve(legacy, registry))[1] == "embedder:mask-seer"
    Pipeline(resolve(legacy, registry), Runtime(device="cpu")).run_clip(clip())
    assert MaskSeer.saw == [False, False]


def test_a_missing_input_is_one_line_naming_the_step(registry) -> None:  # type: ignore[no-untyped-def]
    spec = {"steps": [{"proposer": "grid-boxes"}, {"filter": "cos"}, {"embedder": "mean-colour"},
                      {"segmenter": "box-masks"}]}
    with pytest.raises(ChainError, match=r"^step 2 \(filter 'cos'\) needs audio embeddings but no earlier step "
                                         r"produces them; put an embedder before it$"):
        resolve(spec, registry)
    masked = {"steps": [{"proposer": "grid-boxes"}, {"embedder": {"type": "mask-seer", "regions": "masked"}},
                        {"segmenter": "box-masks"}, {"filter": "cos"}]}
    with pytest.raises(ChainError, match=r"step 2 \(embedder 'mask-seer'\) needs masks .* put a segmenter before it"):
        resolve(masked, registry)


@pytest.mark.parametrize("bad,message", [
    ({"steps": [{"proposer": "grid-boxes"}, {"segmentr": "box-masks"}]}, r"steps\[1\]: unknown step kind 'segmentr'"),
    ({"steps": [{"proposer": "grid-boxes"}, {"proposer": "grid-boxes"}]}, "more than one proposer"),
    ({"steps": [{"proposer": "grid-boxes"}], "proposer": "grid-boxes"}, "either 'steps:' or"),
    ({"steps": "proposer:grid-boxes"}, "steps: expected a list"),
])
def test_bad_steps_are_one_line_config_errors(registry, bad: dict[str, Any], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        resolve(bad, registry)


def test_legacy_presets_keep_the_old_order() -> None:
    reg = load_registry()
    got = {p: resolve(compose(p, registry=reg), reg).step_names() for p in
           ("at-gdino-sam", "bavs", "owod-bind", "owod-bind-softmax", "sam-bind")}
    assert got == {
        "at-gdino-sam": ["tagger:ast", "filter:tag-threshold", "proposer:gdino", "segmenter:sam"],
        "bavs": ["tagger:ast", "proposer:gdino", "filter:avis", "segmenter:sam"],
        "owod-bind": ["proposer:owod", "filter:score-threshold", "embedder:imagebind", "filter:bind", "segmenter:sam"],
        "owod-bind-softmax": ["proposer:owod", "filter:score-threshold", "filter:nms", "filter:top-k",
                              "embedder:imagebind", "filter:bind", "segmenter:sam"],
        "sam-bind": ["proposer:sam-grid", "embedder:imagebind", "filter:bind"],
    }


def test_the_recorded_config_resolves_to_the_same_steps(registry) -> None:  # type: ignore[no-untyped-def]
    spec = {"steps": [{"proposer": "grid-boxes"}, {"segmenter": "box-masks"}, {"embedder": "mean-colour"},
                      {"filter": {"type": "cos", "threshold": 0.2}}, {"filter": "score-threshold"}],
            "combiner": "top1"}
    rs = resolve(spec, registry)
    again = resolve(json.loads(json.dumps(rs.as_dict())), registry)
    assert again.step_names() == rs.step_names() and again.as_dict() == rs.as_dict()


# -- composition on a steps preset ------------------------------------------------------------------
def test_cli_options_compose_on_a_steps_preset() -> None:
    reg = load_registry()
    base = resolve(compose("owod-bind-authors", registry=reg), reg).step_names()
    assert base == ["proposer:owod", "filter:score-threshold", "segmenter:sam", "embedder:imagebind", "filter:bind"]
    # --filter replaces the filters; each goes after what it needs, the steps keep their order
    s = compose("owod-bind-authors", filters=["bind", "score-threshold"], registry=reg)
    assert resolve(s, reg).step_names() == ["proposer:owod", "segmenter:sam", "embedder:imagebind", "filter:bind",
                                            "filter:score-threshold"]
    s = compose("owod-bind-authors", filters=["score-threshold", "bind", "temporal-consistency"],
                sets=["filter.bind.softmax_threshold=0.3", "filter.score-threshold.fallback=none"], registry=reg)
    rs = resolve(s, reg)
    assert rs.step_names() == ["proposer:owod", "filter:score-threshold", "segmenter:sam", "embedder:imagebind",
                               "filter:bind", "filter:temporal-consistency"]
    flt = rs.of_kind("filter")
    assert flt[1].config.softmax_threshold == 0.3 and flt[0].config.fallback == "none"  # type: ignore[attr-defined]
    # --set reaches steps; 'none' removes one; an unused embedder is dropped with a note
    s = compose("owod-bind-authors", sets=["proposer.top_k=5", "embedder.background=grey"], registry=reg)
    rs = resolve(s, reg)
    emb = rs.first("embedder")
    assert rs.proposer.config.top_k == 5 and emb is not None and emb.config.background == "grey"  # type: ignore[attr-defined]
    s = compose("owod-bind-authors", filters=["score-threshold"], registry=reg)
    assert "embedder" not in {k for x in s["steps"] for k in x} and any("no filter uses embeddings" in n for n in s["notes"])
    # a component the preset lacks is inserted where its inputs exist
    s = compose("owod-bind-authors", tagger="ast", proposer="gdino", sets=["embedder.regions=box"], registry=reg)
    assert resolve(s, reg).step_names()[:2] == ["tagger:ast", "proposer:gdino"]


def test_presets_show_prints_the_steps(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "presets", "show", "owod-bind-authors", "--set", "filter.bind.softmax_threshold=0.3")
    assert code == 0
    shown = yaml.safe_load(out)  # a steps spec, every parameter written out: it loads back as a pipeline file
    assert [(k, b["type"]) for x in shown["steps"] for k, b in x.items()] == [
        ("proposer", "owod"), ("filter", "score-threshold"), ("segmenter", "sam"), ("embedder", "imagebind"),
        ("filter", "bind")]
    assert shown["steps"][3]["embedder"]["regions"] == "masked" and shown["steps"][4]["filter"]["softmax_threshold"] == 0.3
    assert not {"tagger", "proposer", "filters"} & set(shown)


# -- execution ---------------------------------------------------------------------------------------
def test_a_clip_level_segmenter_can_add_objects(registry) -> None:  # type: ignore[no-untyped-def]
    class Sparse(Proposer):
        name: ClassVar[str] = "sparse"
        description: ClassVar[str] = "a box in frame 0 only"

        def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
            return [Proposals(np.asarray([[0, 0, 10, 10]] if i == 0 else [], np.float32).reshape(-1, 4),
                              np.full(1 if i == 0 else 0, 0.9, np.float32)) for i in range(len(frames))]

    reg = load_registry(plugins=[("fake", FakePlugin()), ("steps-test", Plugin()),
                                 ("sparse", type("P", (), {"register_proposers": hookimpl(
                                     lambda self, register: register(Sparse))})())])
    rs = resolve({"steps": [{"proposer": "sparse"}, {"segmenter": "propagating"}]}, reg)
    res = Pipeline(rs, Runtime(device="cpu")).run_clip(clip(3))
    for fr in res.frames:
        assert fr.mask[0:10, 0:10].all() and fr.mask.sum() == 100
    added = [r for r in res.frames[2].trace if r.get("origin") == "propagating"]
    assert len(added) == 1 and added[0]["kept"] and added[0]["box"] == [0.0, 0.0, 10.0, 10.0]
    assert not [r for r in res.frames[0].trace if r.get("origin")]


def test_a_proposers_own_caps_show_as_drops_also_from_the_cache(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rs = resolve({"steps": [{"proposer": {"type": "capped", "top_k": 1}}, {"segmenter": "box-masks"}]}, registry)
    for expect in ("proposer.capped.computed", "proposer.capped.cache_hit"):
        rt = Runtime(device="cpu", cache=StageCache(tmp_path))
        fr = Pipeline(rs, rt).run_clip(clip(1)).frames[0]
        assert rt.counters[expect] == 1
        dropped = [r for r in fr.trace if not r["kept"]]
        assert [(r["id"], r["dropped_by"], r["reason"]) for r in dropped] == [(1, "capped", "beyond top-1"),
                                                                              (2, "capped", "beyond top-1")]
        assert len(fr.kept) == 1


def test_combiners(registry) -> None:  # type: ignore[no-untyped-def]
    base = {"steps": [{"proposer": {"type": "grid-boxes", "n": 3}}, {"segmenter": "box-masks"}]}
    union = Pipeline(resolve(base, registry), Runtime(device="cpu")).run_clip(clip(1)).frames[0]
    assert union.mask.sum() == 3 * 20 * 20 and union.label_map is None
    rs = resolve({**base, "combiner": "top1"}, registry)
    assert rs.as_dict()["combiner"] == {"type": "top1"}
    top1 = Pipeline(rs, Runtime(device="cpu")).run_clip(clip(1)).frames[0]
    assert top1.mask.sum() == 20 * 20 and top1.mask[0:20, 0:20].all()  # the 0.9 box
    lm = Pipeline(resolve({**base, "combiner": "label-map"}, registry), Runtime(device="cpu")).run_clip(clip(1)).frames[0]
    assert np.array_equal(lm.mask, union.mask) and lm.labels == ["object-1", "object-2", "object-3"]
    assert lm.label_map is not None and lm.label_map[5, 45] == 3
    s = compose("owod-bind-authors", sets=["combiner=top1"], registry=load_registry())
    assert s["combiner"] == {"type": "top1"}


def test_owod_bind_authors_tiny_run_records_the_authors_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from avseg.testing import make_frames_folder

    folder = make_frames_folder(tmp_path / "clip", n=2, size=64)
    code, _, err = cli(capsys, "run", "owod-bind-authors", "--input", str(folder), "--out", str(tmp_path / "out"),
                       "--tiny", "--no-cache", "--debug", "--set", "filter.score-threshold.threshold=0.99")
    assert code == 0, err
    meta = json.loads((tmp_path / "out" / "run.json").read_text())
    steps = meta["steps"]
    assert steps.index("segmenter:sam") < steps.index("embedder:imagebind") < steps.index("filter:bind")
    assert meta["components"]["embedder:imagebind"]["provider"] and meta["config"]["steps"][3]["embedder"]["regions"] == "masked"
    # no tiny-model box reaches 0.99: the authors' in-loop fallback passes the proposer's first box
    # to SAM, which for owod (sorted by objectness) is the best one
    items = json.loads((tmp_path / "out" / "debug" / "00000.json").read_text())["items"]
    passed = [i for i in items if i.get("dropped_by") != "score-threshold"]
    assert len(items) > 1 and len(passed) == 1 and passed[0]["id"] == 0
    assert passed[0]["score"] == max(i["score"] for i in items)
    assert "kept as the proposer's first box although score" in passed[0]["detail"]["score-threshold"]["fallback"]


def test_a_plugin_combiner_through_register_combiners() -> None:
    from avseg.components import Combined, Combiner

    class Boxes(Combiner):
        name: ClassVar[str] = "boxes"
        description: ClassVar[str] = "fills each kept box, ignoring masks"

        def combine(self, frame: Image, kept: Proposals) -> Combined:
            mask = np.zeros(frame.shape[:2], bool)
            for x0, y0, x1, y1 in kept.boxes.astype(int):
                mask[y0:y1, x0:x1] = True
            return Combined(mask)

    class CombinerPlugin:
        @hookimpl
        def register_combiners(self, register: Any) -> None:
            register(Boxes)

    reg = load_registry(plugins=[("fake", FakePlugin()), ("comb", CombinerPlugin())], entry_points=False)
    assert reg.get("combiner", "boxes") is Boxes
    spec = {"steps": [{"proposer": {"type": "grid-boxes", "n": 1}}, {"segmenter": "box-masks"}], "combiner": "boxes"}
    rs = resolve(spec, reg)
    assert rs.combiner is not None and rs.combiner.provider == "comb"
    fr = Pipeline(rs, Runtime(device="cpu")).run_clip(clip(1)).frames[0]
    assert fr.mask.sum() == 40 * 20  # one box: x 0..40, y 0..20
    with pytest.raises(Exception, match="unknown combiner 'box'"):
        resolve({**spec, "combiner": "box"}, reg)
