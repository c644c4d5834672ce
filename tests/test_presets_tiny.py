"""Every preset end to end with the real plugins' tiny variants (same architectures, random weights)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from avseg.testing import make_avss_tree, make_frames_folder, make_s4_tree, make_video
from tests.deps import requires
from tests.helpers import cli, step_of, steps_of


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    return {
        "folder": make_frames_folder(d / "frames", n=2, size=64),
        "video": make_video(d / "clip.mp4", seconds=2, size=64, fps=5),
        "s4": make_s4_tree(d / "s4", n_per_split={"test": 1}, size=48),
        "avss": make_avss_tree(d / "avss", labels=("v2",), n_per_split={"test": 1}, size=48),
    }


def run(capsys: pytest.CaptureFixture[str], out: Path, inp: Path, *args: str) -> dict:  # type: ignore[type-arg]
    code, _, err = cli(capsys, "run", *args, "--tiny", "--no-cache", "--input", str(inp), "--out", str(out))
    assert code == 0, err
    return json.loads((out / "run.json").read_text())  # type: ignore[no-any-return]


def test_at_gdino_sam_on_folder_and_video(capsys: pytest.CaptureFixture[str], inputs: dict[str, Path], tmp_path: Path) -> None:
    meta = run(capsys, tmp_path / "a", inputs["folder"], "at-gdino-sam", "--set", "filter.tag-threshold.threshold=0.0")
    assert meta["weights"]["segmenter:sam"] == "tiny" and meta["tiny"] is True
    assert meta["counters"]["sam.image_encoder"] == 2  # one encoding per frame, however many boxes
    assert meta["counters"]["sam.decoder_calls"] == 2
    meta = run(capsys, tmp_path / "b", inputs["video"], "at-gdino-sam")
    assert meta["n_frames"] == 2 and (tmp_path / "b" / "overlay.mp4").is_file()
    with av.open(str(tmp_path / "b" / "overlay.mp4")) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}


def test_owod_bind_from_cli_components(capsys: pytest.CaptureFixture[str], inputs: dict[str, Path], tmp_path: Path) -> None:
    meta = run(capsys, tmp_path, inputs["video"], "--proposer", "owod", "--filter", "bind",
               "--set", "filter.bind.cosine_threshold=-1.0", "--debug")
    cfg = meta["config"]
    assert [(k, b["type"]) for x in cfg["steps"] for k, b in x.items()] == [
        ("proposer", "owod"), ("embedder", "imagebind"), ("filter", "bind"), ("segmenter", "sam")]
    c = meta["counters"]
    assert c["imagebind.vision_forwards"] == 1 and c["imagebind.audio_forwards"] == 1  # one batch per clip
    assert c["sam.image_encoder"] == 2
    dbg = json.loads((tmp_path / "debug" / "00000.json").read_text())
    assert dbg["items"] and all("bind" in item["scores"] for item in dbg["items"])
    assert (tmp_path / "debug" / "00000.png").is_file()


def test_sam_bind_shares_one_encoder_pass(capsys: pytest.CaptureFixture[str], inputs: dict[str, Path], tmp_path: Path) -> None:
    meta = run(capsys, tmp_path, inputs["folder"], "sam-bind", "--set", "proposer.points_per_side=4",
               "--set", "proposer.pred_iou_thresh=0.0", "--set", "proposer.stability_score_thresh=0.0",
               "--segmenter", "sam")
    assert meta["counters"]["sam.image_encoder"] == 2  # sam-grid and sam share the encoding of each frame


def test_bavs_run_and_semantic_eval(capsys: pytest.CaptureFixture[str], inputs: dict[str, Path], tmp_path: Path) -> None:
    meta = run(capsys, tmp_path / "run", inputs["folder"], "bavs")
    assert steps_of(meta["config"], "filter")[0]["type"] == "avis"
    code, _, err = cli(capsys, "eval", "bavs", "--tiny", "--no-cache", "--root", str(inputs["avss"]),
                       "--subset", "avss-v2", "--split", "test", "--out", str(tmp_path / "eval"))
    assert code == 0, err
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["n_clips"] == 1 and m["n_frames"] == 10 and "semantic" in m
    assert len(list((tmp_path / "eval" / "labels").rglob("*.png"))) == 10


@pytest.mark.parametrize("preset", ["at-gdino-sam", "owod-bind"])
def test_eval_tiny_on_s4(capsys: pytest.CaptureFixture[str], inputs: dict[str, Path], tmp_path: Path, preset: str) -> None:
    code, _, err = cli(capsys, "eval", preset, "--tiny", "--no-cache", "--root", str(inputs["s4"]), "--subset", "s4",
                       "--split", "test", "--out", str(tmp_path))
    assert code == 0, err
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["n_clips"] == 1 and m["n_frames"] == 5 and m["failed"] == [] and m["tiny"] is True
    assert len(list((tmp_path / "masks").rglob("*.png"))) == 5


@pytest.mark.parametrize("args", [
    ["--tagger", "panns"],
    ["--tagger", "clap", "--set", "tagger.vocabulary=avsbench-s4"],
    ["--set", "proposer.backend=official"],
    ["--set", "segmenter.backend=hf"],
])
def test_alternative_components(capsys: pytest.CaptureFixture[str], inputs: dict[str, Path], tmp_path: Path,
                                args: list[str]) -> None:
    """The alternatives swap into AT-GDINO-SAM from the command line."""
    meta = run(capsys, tmp_path, inputs["folder"], "at-gdino-sam", "--set", "filter.tag-threshold.threshold=0.0", *args)
    cfg = meta["config"]
    if args[0] == "--tagger":
        assert step_of(cfg, "tagger")["type"] == args[1]  # type: ignore[index]
    else:
        stage, value = args[1].split(".", 1)[0], args[1].split("=")[1]
        assert step_of(cfg, stage)["backend"] == value  # type: ignore[index]
    assert len(list((tmp_path / "masks").glob("*.png"))) == 2


@pytest.mark.mmdet
@pytest.mark.parametrize("segmenter", ["none", "sam"])
def test_mmdet_with_and_without_a_segmenter(capsys: pytest.CaptureFixture[str], inputs: dict[str, Path],
                                            tmp_path: Path, segmenter: str) -> None:
    requires("mmdet")  # installed by scripts/install_mmdet.sh (make test-all runs it)
    meta = run(capsys, tmp_path, inputs["folder"], "--proposer", "mmdet", "--embedder", "none", "--segmenter",
               segmenter, "--filter", "score-threshold", "--set", "proposer.score_threshold=0.0",
               "--set", "filter.score-threshold.threshold=0.0")
    assert step_of(meta["config"], "proposer")["type"] == "mmdet"  # type: ignore[index]
    assert sum(f["kept"] for f in meta["frames"]) > 0 and sum(f["mask_pixels"] for f in meta["frames"]) > 0
    assert ("sam.image_encoder" in meta["counters"]) == (segmenter == "sam")
