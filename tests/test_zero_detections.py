"""Frames with no detection: every bundled proposer, forced to find nothing, gives well-formed
empty proposals, and the chain carries them through embedder, segmenter and filters to an empty
mask (tiny variants, real plugin code)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avseg.testing import make_frames_folder, make_video
from tests.deps import requires
from tests.helpers import cli, step_of

requires("torch")
requires("transformers")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("zero")
    return {
        "video": make_video(d / "clip.mp4", seconds=2, size=64, fps=5),
        "folder": make_frames_folder(d / "frames", n=2, size=64),
    }


def run_empty(capsys: pytest.CaptureFixture[str], out: Path, inp: Path, *args: str) -> dict:  # type: ignore[type-arg]
    code, _, err = cli(capsys, "run", *args, "--tiny", "--no-cache", "--debug", "--input", str(inp), "--out", str(out))
    assert code == 0, err
    meta = json.loads((out / "run.json").read_text())
    masks = sorted((out / "masks").glob("*.png"))
    assert len(masks) == meta["n_frames"] == 2
    for m in masks:
        assert not np.asarray(Image.open(m)).any()  # an empty mask, written like any other
    assert all(f["kept"] == 0 and f["mask_pixels"] == 0 for f in meta["frames"])
    return meta  # type: ignore[no-any-return]


@pytest.mark.parametrize("backend", ["transformers", "official"])
def test_gdino_with_no_box_above_the_threshold(capsys, inputs, tmp_path, backend) -> None:
    if backend == "official":
        requires("groundingdino")
    # Every tag prompts the detector (tag threshold 0), and no box can pass a threshold of 1.0.
    meta = run_empty(capsys, tmp_path, inputs["video"], "at-gdino-sam", "--set", "proposer.box_threshold=1.0",
                     "--set", f"proposer.backend={backend}", "--set", "filter.tag-threshold.threshold=0.0")
    c = meta["counters"]
    assert c["gdino.forward_passes"] >= 1 and c.get("gdino.boxes", 0) == 0 and c["segmenter.sam.computed"] == 1


def test_gdino_below_the_threshold_does_give_objects(capsys, inputs, tmp_path) -> None:
    """The same run as above at box_threshold 0 keeps boxes and paints masks: the empty results
    above come from the threshold, not from a chain that never gives anything."""
    code, _, err = cli(capsys, "run", "at-gdino-sam", "--tiny", "--no-cache", "--input", str(inputs["video"]),
                       "--out", str(tmp_path), "--set", "proposer.box_threshold=0.0",
                       "--set", "filter.tag-threshold.threshold=0.0")
    assert code == 0, err
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["counters"]["gdino.boxes"] > 0
    assert all(f["kept"] > 0 and f["mask_pixels"] > 0 for f in meta["frames"])
    assert any(np.asarray(Image.open(m)).any() for m in (tmp_path / "masks").glob("*.png"))


def test_owod_with_no_box_above_the_threshold(capsys, inputs, tmp_path) -> None:
    meta = run_empty(capsys, tmp_path, inputs["video"], "--proposer", "owod", "--set", "proposer.box_threshold=1.0",
                     "--filter", "bind", "--set", "filter.bind.cosine_threshold=-1.0")
    cfg = meta["config"]
    assert [(k, b["type"]) for x in cfg["steps"] for k, b in x.items()] == [
        ("proposer", "owod"), ("embedder", "imagebind"), ("filter", "bind"), ("segmenter", "sam")]
    c = meta["counters"]
    assert c["owod.forward_passes"] >= 1 and c.get("owod.boxes", 0) == 0
    # the empty frames went through every later stage, not around them
    assert c["embedder.imagebind.regions.computed"] == 1 and c.get("imagebind.vision_crops", 0) == 0
    assert c["segmenter.sam.computed"] == 1


def test_sam_grid_with_no_mask_passing(capsys, inputs, tmp_path) -> None:
    meta = run_empty(capsys, tmp_path, inputs["folder"], "sam-bind", "--set", "proposer.points_per_side=4",
                     "--set", "proposer.pred_iou_thresh=1.0", "--set", "proposer.stability_score_thresh=1.0",
                     "--set", "proposer.box_nms_thresh=1.0", "--segmenter", "sam")
    assert meta["counters"].get("sam-grid.masks", 0) == 0 and meta["counters"]["sam-grid.decoder_calls"] >= 1


def test_example_saliency_with_no_region_large_enough(capsys, inputs, tmp_path) -> None:
    run_empty(capsys, tmp_path, inputs["folder"], "--proposer", "saliency", "--set", "proposer.min_area=0.99",
              "--embedder", "imagebind", "--segmenter", "sam", "--filter", "bind",
              "--set", "filter.bind.cosine_threshold=-1.0")


@pytest.mark.mmdet
def test_mmdet_with_no_instance_above_the_threshold(capsys, inputs, tmp_path) -> None:
    requires("mmdet")  # installed by scripts/install_mmdet.sh (make test-all runs it)
    meta = run_empty(capsys, tmp_path, inputs["folder"], "--proposer", "mmdet", "--set", "proposer.score_threshold=1.0",
                     "--embedder", "imagebind", "--segmenter", "sam", "--filter", "bind",
                     "--set", "filter.bind.cosine_threshold=-1.0")
    assert step_of(meta["config"], "proposer")["type"] == "mmdet"  # type: ignore[index]


def test_gdino_frame_with_no_box_under_transformers_5_23_decoding(monkeypatch) -> None:
    """transformers 5.23 decodes an empty batch of phrases as ``['']``; the frame must still give
    empty, well-formed proposals (0 boxes, 0 labels) and not "0 boxes but 1 labels"."""
    from avseg_gdino.proposer import GroundingDinoProposer

    from avseg.runtime import Runtime
    from tests.helpers import random_frames

    prop = GroundingDinoProposer(GroundingDinoProposer.Config(box_threshold=1.0), Runtime(device="cpu", tiny=True, seed=0))
    tok = prop.processor.tokenizer
    decode = tok.batch_decode
    monkeypatch.setattr(tok, "batch_decode", lambda seqs, **kw: decode(seqs, **kw) if len(seqs) else [""])
    out = prop.propose(random_frames([(48, 64), (40, 40)]), [["dog", "piano"], ["dog", "piano"]])
    assert prop.runtime.counters["gdino.forward_passes"] == 1
    for p in out:
        assert len(p) == 0 and p.labels == [] and p.boxes.shape == (0, 4) and p.scores.shape == (0,)
