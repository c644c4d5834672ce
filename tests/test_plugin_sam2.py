"""sam2: SAM 2 segmenter. Image-mode parity with Sam2Model + Sam2Processor, propagation parity with
the Sam2VideoModel inference session driven as transformers documents it, propagation plumbing,
track merging, EdgeTAM, weights, and the propagating presets from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.deps import requires

torch = requires("torch")
requires("transformers")

from avseg_sam2.models import build_random  # noqa: E402
from avseg_sam2.segmenter import Sam2Segmenter  # noqa: E402
from avseg_sam2.tracks import Track, merge_tracks, track_iou, tracks_to_proposals  # noqa: E402

from avseg.components import Segmenter  # noqa: E402
from avseg.errors import WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402
from avseg.types import Proposals  # noqa: E402
from tests.helpers import cli, random_frames, step_of  # noqa: E402

BOX = [8.0, 10.0, 44.0, 50.0]


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(device="cpu", tiny=True, seed=0)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return random_frames([(64, 64)] * 3, seed=3)


def make(runtime: Runtime, **cfg: object) -> Sam2Segmenter:
    return Sam2Segmenter(Sam2Segmenter.Config(variant="tiny", **cfg), runtime)


def only_on(frame: int, n: int, boxes: list[list[float]], labels: list[str] | None = None) -> list[Proposals]:
    out = [Proposals.empty(with_labels=labels is not None) for _ in range(n)]
    out[frame] = Proposals(np.asarray(boxes, np.float32), np.linspace(0.9, 0.5, len(boxes)).astype(np.float32), labels)
    return out


# -- image mode ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["tiny", "edgetam"])
def test_image_masks_match_sam2model_with_its_processor(
    runtime: Runtime, frames: list[np.ndarray], variant: str
) -> None:
    seg = Sam2Segmenter(Sam2Segmenter.Config(variant=variant), runtime)
    boxes = np.asarray([BOX, [30.0, 5.0, 60.0, 40.0]], np.float32)
    outs = seg.segment(frames[:2], [boxes, boxes[:1]])
    model, processor = build_random(variant, video=False, tiny=True, seed=0)  # equal weights, built apart
    assert type(model).__name__ == ("EdgeTamModel" if variant == "edgetam" else "Sam2Model")
    for frame, b, o in zip(frames[:2], [boxes, boxes[:1]], outs, strict=True):
        # transformers' documented usage: processor(images, input_boxes) -> model -> post_process_masks
        inputs = processor(images=frame, input_boxes=[b.tolist()], return_tensors="pt")
        with torch.inference_mode():
            ref = model(**inputs, multimask_output=False)
        ref_masks = processor.post_process_masks(ref.pred_masks, inputs["original_sizes"])[0][:, 0].numpy()
        assert o.masks.shape == ref_masks.shape == (len(b), 64, 64)
        assert (o.masks != ref_masks).mean() < 1e-3
        np.testing.assert_allclose(o.scores, ref.iou_scores[0, :, 0].numpy(), atol=1e-5)
        assert o.masks.any()
    assert runtime.counters["sam2.image_encoder"] >= 2


def test_image_mode_clip_keeps_the_proposals_and_adds_masks(runtime: Runtime, frames: list[np.ndarray]) -> None:
    seg = make(runtime)
    props = only_on(0, 3, [BOX], labels=["dog"])
    out = seg.segment_clip(frames, props, [0.0, 1.0, 2.0])
    assert [len(p) for p in out] == [1, 0, 0]
    assert out[0].labels == ["dog"] and out[0].masks is not None and out[0].masks.any()
    np.testing.assert_array_equal(out[0].boxes, props[0].boxes)
    assert all(p.masks is not None and p.masks.shape == (0, 64, 64) for p in out[1:])


# -- propagation --------------------------------------------------------------------------------------


def test_object_prompted_on_frame_0_reaches_every_later_frame(runtime: Runtime, frames: list[np.ndarray]) -> None:
    props = only_on(0, 3, [BOX], labels=["dog"])
    before = {k: v for k, v in runtime.counters.items() if "propagat" in k}
    out = make(runtime, propagate=True).segment_clip(frames, props, [0.0, 1.0, 2.0])
    assert [len(p) for p in out] == [1, 1, 1]
    for p in out:
        assert p.masks is not None and p.masks.any() and p.labels == ["dog"]
        assert p.mask_scores is not None and p.mask_scores.shape == (1,)
        ys, xs = np.nonzero(p.masks[0])  # the box is the propagated mask's extent
        np.testing.assert_array_equal(p.boxes[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    assert runtime.counters["sam2.propagated_frames"] - before.get("sam2.propagated_frames", 0) == 3
    # without propagation the later frames have nothing
    flat = make(runtime, propagate=False).segment_clip(frames, props, [0.0, 1.0, 2.0])
    assert [len(p) for p in flat] == [1, 0, 0]


@pytest.mark.parametrize("prompt_frame", [0, 1])
def test_propagation_matches_the_documented_video_session(
    runtime: Runtime, frames: list[np.ndarray], prompt_frame: int
) -> None:
    out = make(runtime, propagate=True).segment_clip(frames, only_on(prompt_frame, 3, [BOX]), [0.0, 1.0, 2.0])
    model, processor = build_random("tiny", video=True, tiny=True, seed=0)
    # transformers' documented video usage: session, inputs on a frame, forward on it, then propagate
    video = np.stack(frames)
    session = processor.init_video_session(video=video, inference_device="cpu", dtype=torch.float32)
    processor.add_inputs_to_inference_session(
        inference_session=session, frame_idx=prompt_frame, obj_ids=1, input_boxes=[[BOX]]
    )
    ref: dict[int, np.ndarray] = {}
    with torch.inference_mode():
        model(inference_session=session, frame_idx=prompt_frame)
        for rev in (False, True):
            for o in model.propagate_in_video_iterator(session, reverse=rev):
                masks = processor.post_process_masks(
                    [o.pred_masks], original_sizes=[[session.video_height, session.video_width]], binarize=False
                )[0]
                ref.setdefault(o.frame_idx, (masks[0, 0] > 0).numpy())
    assert sorted(ref) == [0, 1, 2]
    for f in range(3):
        assert out[f].masks is not None and len(out[f]) == 1
        np.testing.assert_array_equal(out[f].masks[0], ref[f])


def test_forward_direction_leaves_frames_before_the_prompt_empty(runtime: Runtime, frames: list[np.ndarray]) -> None:
    props = only_on(1, 3, [BOX])
    both = make(runtime, propagate=True, direction="both").segment_clip(frames, props, [0.0, 1.0, 2.0])
    fwd = make(runtime, propagate=True, direction="forward").segment_clip(frames, props, [0.0, 1.0, 2.0])
    assert [len(p) for p in both] == [1, 1, 1]
    assert [len(p) for p in fwd] == [0, 1, 1]
    np.testing.assert_array_equal(fwd[2].masks, both[2].masks)


def test_the_same_object_prompted_twice_is_one_track(runtime: Runtime, frames: list[np.ndarray]) -> None:
    props = only_on(0, 3, [BOX, BOX], labels=["dog", "dog"])
    n0 = runtime.counters["sam2.merged_tracks"]
    out = make(runtime, propagate=True).segment_clip(frames, props, [0.0, 1.0, 2.0])
    assert [len(p) for p in out] == [1, 1, 1]
    assert runtime.counters["sam2.merged_tracks"] - n0 == 1
    assert float(out[0].scores[0]) == pytest.approx(0.9)  # the best-scored prompt is the track's identity


def test_a_mask_prompt_conditions_its_frame(runtime: Runtime, frames: list[np.ndarray]) -> None:
    mask = np.zeros((3, 64, 64), bool)
    mask[0, 20:40, 12:50] = True
    props = [Proposals(np.asarray([[12, 20, 50, 40]], np.float32), np.asarray([0.8], np.float32), masks=mask[:1]),
             Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), masks=mask[:0]),
             Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), masks=mask[:0])]
    out = make(runtime, propagate=True).segment_clip(frames, props, [0.0, 1.0, 2.0])
    assert [len(p) for p in out] == [1, 1, 1]
    got = out[0].masks[0]  # type: ignore[index]
    iou = np.logical_and(got, mask[0]).sum() / np.logical_or(got, mask[0]).sum()
    assert iou > 0.9  # SAM 2 takes an input mask as its output on the prompted frame


def test_no_objects_gives_empty_frames_with_masks(frames: list[np.ndarray]) -> None:
    runtime = Runtime(device="cpu", tiny=True, seed=0)  # its own counters
    out = make(runtime, propagate=True).segment_clip(frames, [Proposals.empty()] * 3, [0.0, 1.0, 2.0])
    assert all(len(p) == 0 and p.masks is not None and p.masks.shape == (0, 64, 64) for p in out)
    # run.json still shows that propagation ran with nothing to carry (e.g. owod-bind-sam2 --tiny,
    # whose bind filter keeps nothing on real clips)
    assert runtime.counters["sam2.propagation_clips"] == 1 and "sam2.propagated_objects" not in runtime.counters


# -- tracks (pure numpy) ------------------------------------------------------------------------------


def _track(frame: int, score: float, masks: dict[int, np.ndarray], label: str | None = None) -> Track:
    return Track(frame, score, label, masks, {f: 0.5 for f in masks})


def test_merge_tracks_by_mean_iou_best_score_first() -> None:
    a = np.zeros((8, 8), bool)
    a[:4, :4] = True
    b = np.zeros((8, 8), bool)
    b[:4, 1:5] = True  # IoU with a = 12/20 = 0.6
    c = np.zeros((8, 8), bool)
    c[5:, 5:] = True
    t1 = _track(0, 0.5, {0: a, 1: a})
    t2 = _track(1, 0.9, {1: b, 2: b})  # forward only: it never reached frame 0
    t3 = _track(0, 0.7, {0: c, 1: c, 2: c})
    assert track_iou(t1, t2) == pytest.approx(0.6)
    kept, merged = merge_tracks([t1, t2, t3], merge_iou=0.6)
    assert merged == 1 and [t.score for t in kept] == [0.9, 0.7]
    assert set(kept[0].masks) == {0, 1, 2}  # the frame the kept track missed comes from the merged one
    np.testing.assert_array_equal(kept[0].masks[1], b)
    kept, merged = merge_tracks([t1, t2, t3], merge_iou=0.61)
    assert merged == 0 and len(kept) == 3


def test_tracks_to_proposals_drops_empty_masks() -> None:
    m = np.zeros((4, 5), bool)
    m[1:3, 2:4] = True
    props = tracks_to_proposals([_track(0, 0.8, {0: m, 1: np.zeros((4, 5), bool)}, "cat")], 3, [(4, 5)] * 3, True)
    assert [len(p) for p in props] == [1, 0, 0]
    np.testing.assert_array_equal(props[0].boxes[0], [2, 1, 4, 3])
    assert props[0].labels == ["cat"] and props[2].masks is not None and props[2].masks.shape == (0, 4, 5)


# -- EdgeTAM, weights ---------------------------------------------------------------------------------


def test_edgetam_variant_propagates(runtime: Runtime) -> None:
    clip = random_frames([(48, 48)] * 2, seed=1)
    seg = Sam2Segmenter(Sam2Segmenter.Config(variant="edgetam", propagate=True), runtime)
    out = seg.segment_clip(clip, only_on(0, 2, [[4.0, 4.0, 30.0, 30.0]]), [0.0, 1.0])
    assert [len(p) for p in out] == [1, 1] and all(p.masks is not None and p.masks.any() for p in out)
    assert type(seg.video_model().model).__name__ == "EdgeTamVideoModel"


def test_missing_checkpoint_fails_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(WeightsMissing) as ei:
        Sam2Segmenter(Sam2Segmenter.Config(variant="small"), Runtime(device="cpu"))
    msg = str(ei.value)
    assert "\n" not in msg and "facebook/sam2.1-hiera-small" in msg and "avseg weights fetch sam2" in msg


def test_every_variant_declares_its_hf_checkpoint() -> None:
    repos = {v: wf[0].hf_repo for v, wf in Sam2Segmenter.weights.items()}
    assert repos == {
        "tiny": "facebook/sam2.1-hiera-tiny", "small": "facebook/sam2.1-hiera-small",
        "base-plus": "facebook/sam2.1-hiera-base-plus", "large": "facebook/sam2.1-hiera-large",
        "edgetam": "yonigozlan/EdgeTAM-hf",
    }


# -- presets from the CLI (propagation needs the clip-level executor) ---------------------------------

needs_clip_executor = pytest.mark.skipif(
    not hasattr(Segmenter, "segment_clip"), reason="the executor calls Segmenter.segment_clip (issue #11)"
)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avseg.testing import make_video

    return make_video(tmp_path_factory.mktemp("v") / "clip.mp4", seconds=2, size=64, fps=5)


@needs_clip_executor
@pytest.mark.parametrize(
    ("preset", "loosen"),
    [("owod-bind-sam2", "filter.bind.cosine_threshold=-1.0"), ("at-gdino-sam2", "filter.tag-threshold.threshold=0.0")],
)
def test_propagating_presets_count_propagation(
    capsys: pytest.CaptureFixture[str], video: Path, tmp_path: Path, preset: str, loosen: str
) -> None:
    code, _, err = cli(capsys, "run", preset, "--tiny", "--no-cache", "--input", str(video),
                       "--out", str(tmp_path), "--set", loosen)
    assert code == 0, err
    meta = json.loads((tmp_path / "run.json").read_text())
    assert step_of(meta["config"], "segmenter")["propagate"] is True  # type: ignore[index]
    assert any("propagat" in k and v > 0 for k, v in meta["counters"].items()), meta["counters"]


def test_importing_the_video_plugins_loads_no_model_code() -> None:
    import subprocess
    import sys

    code = ("import sys, avseg_sam2.segmenter, avseg_sam3.proposer, avseg_gdino.mm; "
            "print('torch' in sys.modules or 'transformers' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("preset", "proposer", "segmenter"),
    [("owod-bind-sam2", "owod", "sam2"), ("at-gdino-sam2", "gdino", "sam2"), ("at-sam3", "sam3", None)],
)
def test_video_presets_resolve(preset: str, proposer: str, segmenter: str | None) -> None:
    from avseg.registry import load_registry
    from avseg.spec import compose, resolve

    registry = load_registry()
    rs = resolve(compose(preset, registry=registry), registry)
    assert rs.proposer.name == proposer
    if segmenter is None:
        assert rs.first("segmenter") is None and rs.proposer.caps.gives_masks
    else:
        seg = rs.first("segmenter")
        assert seg is not None and seg.name == segmenter and seg.config.propagate  # type: ignore[attr-defined]
