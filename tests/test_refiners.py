"""The refiner kind (post-processes the kept objects' masks before the combiner) and fill-holes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from avseg_refiners.fill_holes import fill_holes

from avseg import hookimpl
from avseg.components import Refiner, Segmenter
from avseg.errors import ComponentFailed
from avseg.pipeline import Pipeline
from avseg.registry import load_registry
from avseg.runtime import Runtime
from avseg.spec import compose, resolve
from avseg.testing import make_frames_folder
from avseg.types import FloatArray, Image, Proposals, SegmenterOutput
from tests.fakes import FakePlugin
from tests.helpers import cli, steps_of
from tests.test_clip_filters import ScriptedBoxes, clip

A = [4.0, 4.0, 20.0, 20.0]
B = [30.0, 10.0, 50.0, 30.0]


def ring(h: int = 12, w: int = 12, hole: tuple[slice, slice] = (slice(4, 7), slice(4, 8))) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[1:-1, 1:-1] = True
    m[hole] = False
    return m


def test_fill_holes_fills_an_enclosed_hole_and_nothing_else() -> None:
    m = ring()  # a 10x10 square with a 3x4 hole
    assert (~m[1:-1, 1:-1]).sum() == 12
    out = fill_holes(m)
    assert out[1:-1, 1:-1].all() and not out[0].any() and not out[:, 0].any()  # the outside stays background
    assert out.sum() == 100 and m.sum() == 88
    # max_hole_area: a hole of exactly that area is filled, one pixel more is kept open
    assert fill_holes(m, max_hole_area=12).sum() == 100
    assert np.array_equal(fill_holes(m, max_hole_area=11), m)


def test_fill_holes_leaves_background_touching_the_border() -> None:
    m = np.zeros((8, 8), bool)
    m[2:6, 0:8] = True
    m[3:5, 0:3] = False  # a notch open to the left border: not a hole
    assert np.array_equal(fill_holes(m), m)
    assert not fill_holes(np.zeros((5, 5), bool)).any() and fill_holes(np.ones((5, 5), bool)).all()


class RingMasks(Segmenter):
    """Each box's mask is the box with a 2x2 hole at its centre."""

    name: ClassVar[str] = "ring-masks"
    description: ClassVar[str] = "fake segmenter: box masks with a hole"

    def segment(self, frames: Sequence[Image], boxes: Sequence[FloatArray]) -> list[SegmenterOutput]:
        out = []
        for f, bs in zip(frames, boxes):
            masks = np.zeros((len(bs), *f.shape[:2]), bool)
            for k, (x0, y0, x1, y1) in enumerate(np.asarray(bs, int)):
                masks[k, y0:y1, x0:x1] = True
                cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
                masks[k, cy - 1:cy + 1, cx - 1:cx + 1] = False
            out.append(SegmenterOutput(masks, np.ones(len(bs), np.float32)))
        return out


class MergeAll(Refiner):
    """Merges a frame's objects into one (the union), box = the union's box."""

    name: ClassVar[str] = "merge-all"
    description: ClassVar[str] = "fake refiner: one object per frame"

    def refine(self, frame: Image, kept: Proposals) -> Proposals:
        if len(kept) < 2:
            return kept
        assert kept.masks is not None
        m = kept.masks.any(axis=0)
        ys, xs = np.nonzero(m)
        box = np.asarray([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        return Proposals(box, kept.scores[:1], None, m[None], None)


class Broken(Refiner):
    name: ClassVar[str] = "broken-refiner"
    description: ClassVar[str] = "fake refiner: masks of the wrong size"

    def refine(self, frame: Image, kept: Proposals) -> Proposals:
        return Proposals(kept.boxes, kept.scores, None, np.zeros((len(kept), 3, 3), bool), None)


class Plugin:
    @hookimpl
    def register_components(self, register: Any) -> None:
        for cls in (ScriptedBoxes, RingMasks, MergeAll, Broken):
            register(cls)


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    return load_registry(plugins=[("fake", FakePlugin()), ("mine", Plugin())])


def chain(*refiners: dict[str, Any], boxes: list[list[float]] | None = None) -> dict[str, Any]:
    boxes = boxes if boxes is not None else [A]
    return {"steps": [{"proposer": {"type": "scripted", "boxes": [boxes] * 2}}, {"segmenter": "ring-masks"},
                      *({"refiner": r} for r in refiners)]}


def test_fill_holes_as_a_step_fills_each_mask(registry) -> None:  # type: ignore[no-untyped-def]
    plain = Pipeline(resolve(chain(), registry), Runtime(device="cpu")).run_clip(clip(2))
    assert plain.frames[0].mask.sum() == 16 * 16 - 4  # the ring's hole is background
    res = Pipeline(resolve(chain({"type": "fill-holes"}), registry), Runtime(device="cpu")).run_clip(clip(2))
    for fr in res.frames:
        assert fr.mask[4:20, 4:20].all() and fr.mask.sum() == 16 * 16
        [rec] = fr.trace
        assert rec["kept"] and rec["box"] == A  # the same object, its mask refined
    small = chain({"type": "fill-holes", "max_hole_area": 3})
    res = Pipeline(resolve(small, registry), Runtime(device="cpu")).run_clip(clip(2))
    assert res.frames[0].mask.sum() == 16 * 16 - 4  # the hole (4 pixels) is larger than allowed


def test_a_merging_refiner_traces_the_objects_it_merged(registry) -> None:  # type: ignore[no-untyped-def]
    res = Pipeline(resolve(chain({"type": "merge-all"}, boxes=[A, B]), registry),
                   Runtime(device="cpu")).run_clip(clip(2))
    fr = res.frames[0]
    assert len(fr.kept) == 1 and fr.kept.boxes.tolist() == [[4.0, 4.0, 50.0, 30.0]]
    dropped = [r for r in fr.trace if not r["kept"]]
    assert [r["box"] for r in dropped] == [A, B]
    assert all(r["dropped_by"] == "merge-all" and "merge-all" in r["reason"] for r in dropped)
    [made] = [r for r in fr.trace if r["kept"]]
    assert made["origin"] == "merge-all"


def test_a_refiner_needs_masks_before_it(registry) -> None:  # type: ignore[no-untyped-def]
    from avseg.errors import ChainError

    spec = {"steps": [{"proposer": {"type": "scripted", "boxes": [[A]]}}, {"refiner": "fill-holes"},
                      {"segmenter": "ring-masks"}]}
    with pytest.raises(ChainError, match=r"step 2 \(refiner 'fill-holes'\) needs .*put a segmenter before it"):
        resolve(spec, registry)


def test_a_refiner_with_wrong_masks_fails_in_one_line(registry) -> None:  # type: ignore[no-untyped-def]
    pipe = Pipeline(resolve(chain({"type": "broken-refiner"}), registry), Runtime(device="cpu"))
    with pytest.raises(ComponentFailed, match=r"refiner 'broken-refiner' .*refine_clip\(\) returned masks of shape "
                                              r"\(1, 3, 3\) for frame 0; expected \(1, 48, 64\)"):
        pipe.run_clip(clip(2))


def test_compose_adds_refiners_last_and_set_addresses_them(registry) -> None:  # type: ignore[no-untyped-def]
    spec = compose("owod-bind", refiners=["fill-holes"], sets=["refiner.fill-holes.max_hole_area=9"],
                   registry=registry)
    assert spec["steps"][-1] == {"refiner": {"type": "fill-holes", "max_hole_area": 9}}
    rs = resolve(spec, registry)
    assert rs.step_names()[-1] == "refiner:fill-holes" and "filter:bind" in rs.step_names()
    # the legacy preset became steps in its own executed order, the refiner appended
    plain = resolve(compose("owod-bind", registry=registry), registry)
    assert rs.step_names()[:-1] == plain.step_names()
    # the recorded config (run.json) composes again
    again = resolve(rs.as_dict(), registry)
    assert again.step_names() == rs.step_names() and again.steps[-1].config.model_dump()["max_hole_area"] == 9


def test_plugins_lists_the_refiner_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "plugins", "--kind", "refiner", "--json")
    assert code == 0, err
    rows = json.loads(out)
    # fill-holes (issue 22) and s23's merge-parts, largest-component, clip-to-box
    assert sorted((r["kind"], r["name"]) for r in rows) == [
        ("refiner", n) for n in ("clip-to-box", "fill-holes", "largest-component", "merge-parts")]


def test_run_with_a_refiner_records_the_step(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    frames = make_frames_folder(tmp_path / "frames", n=2, size=48)
    out = tmp_path / "out"
    code, _, err = cli(capsys, "run", "owod-bind", "--tiny", "--no-cache", "--input", str(frames), "--out", str(out),
                       "--refiner", "fill-holes", "--set", "filter.score-threshold.threshold=0.0",
                       "--set", "filter.bind.cosine_threshold=-1.0")
    assert code == 0, err
    meta = json.loads((out / "run.json").read_text())
    assert meta["steps"][-1] == "refiner:fill-holes"
    assert steps_of(meta["config"], "refiner") == [{"type": "fill-holes", "max_hole_area": None}]
    assert "refiner:fill-holes" in meta["weights"] and "refiner:fill-holes" in meta["components"]
