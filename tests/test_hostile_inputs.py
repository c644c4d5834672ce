"""Hostile inputs and faults (issue 14): each one gets the right answer or a one-line refusal.

Every refusal is checked for its exit code (2 usage/config, 1 failed input, 130 Ctrl-C), for
exactly one line on stderr and no traceback, and, where work was done before, that none of it
was lost. Pipelines are weight-free (the example plugin's saliency proposer) unless a case is
about a model's preprocessing.
"""

from __future__ import annotations

import csv
import errno
import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from avseg import hookimpl
from avseg.components import ClipContext, ClipFilter, Combined, Combiner, Filter, FrameContext
from avseg.data import open_dataset
from avseg.testing import SR, make_frames_folder, make_s4_tree, make_video, tone
from avseg.types import FilterResult
from tests.deps import requires
from tests.fakes import FakeDist, module
from tests.helpers import cli, one_line

FAST = ["--proposer", "saliency", "--filter", "score-threshold", "--no-cache"]





@pytest.fixture
def s4_own(tmp_path: Path) -> Path:
    """A tree a test may damage."""
    return make_s4_tree(tmp_path / "tree", n_per_split={"train": 0, "val": 0, "test": 3}, size=32)


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_frames_folder(tmp_path_factory.mktemp("frames") / "in", n=2, size=32)


def eval_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", "--root", str(root), "--subset", "s4", "--out", str(out), *FAST, *extra]


def write_wav(path: Path, wave: np.ndarray, sr: int = SR) -> None:
    import soundfile as sf

    sf.write(str(path), wave.astype(np.float32), sr, subtype="FLOAT")


# ------------------------------------------------------------------------ images: frames


def _png16(path: Path, arr: np.ndarray) -> None:
    Image.fromarray(arr.astype(np.uint16)).save(path)


@pytest.mark.parametrize("mode", ["I;16", "P", "L", "LA", "RGBA", "CMYK", "1"])
def test_frames_of_any_mode_become_8bit_rgb(tmp_path: Path, mode: str) -> None:
    from avseg.data.images import read_rgb

    grey = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))  # (4, 16) ramp
    rgb = np.stack([grey, 255 - grey, np.full_like(grey, 7)], axis=-1)
    path = tmp_path / ("f.tif" if mode == "CMYK" else "f.png")
    if mode == "I;16":
        _png16(path, grey.astype(np.uint16) * 257)
        expected = np.repeat(grey[..., None], 3, axis=2)
    elif mode == "P":
        Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(path)
        expected = np.asarray(Image.open(path).convert("RGB"))
        assert Image.open(path).mode == "P"
    elif mode in ("L", "1"):
        im = Image.fromarray(grey).convert(mode)
        im.save(path)
        expected = np.repeat(np.asarray(im.convert("L"))[..., None], 3, axis=2)
    elif mode == "LA":
        Image.fromarray(np.stack([grey, np.full_like(grey, 9)], -1), "LA").save(path)
        expected = np.repeat(grey[..., None], 3, axis=2)
    elif mode == "RGBA":
        Image.fromarray(np.concatenate([rgb, np.zeros_like(grey)[..., None]], -1), "RGBA").save(path)
        expected = rgb
    else:
        Image.fromarray(rgb).convert("CMYK").save(path)
        expected = np.asarray(Image.fromarray(rgb).convert("CMYK").convert("RGB"))
    assert Image.open(path).mode.startswith(mode[0])
    out = read_rgb(path)
    assert out.dtype == np.uint8 and out.shape == (4, 16, 3)
    assert np.array_equal(out, expected)


def test_16bit_frames_run_and_are_not_white(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_frames_folder(tmp_path / "in", n=2, size=32)
    for f in sorted(src.glob("*.png")):
        grey = np.asarray(Image.open(f).convert("L")).astype(np.uint16) * 257
        _png16(f, grey)
        assert Image.open(f).mode == "I;16"
    from avseg.data import open_input

    frame = open_input(src).frame(0)
    assert 0 < frame.mean() < 250  # Pillow's own convert('RGB') clips to solid white
    code, _, err = cli(capsys, "run", "--input", str(src), "--out", str(tmp_path / "out"), *FAST)
    assert code == 0, err
    assert len(list((tmp_path / "out" / "masks").glob("*.png"))) == 2


def test_oversized_frame_refused_before_any_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_frames_folder(tmp_path / "in", n=2, size=32)
    out = tmp_path / "out"
    # a small file with a huge side; and one past Pillow's own "decompression bomb" warning size
    for size in ((9000, 4), (10000, 10000)):
        Image.new("1", size).save(src / "frame_1.png")
        code, _, err = cli(capsys, "run", "--input", str(src), "--out", str(out), *FAST)
        line = one_line(err)
        assert code == 1 and "frame_1.png" in line and "{}x{}".format(*size) in line and "8192" in line
    assert not out.exists()  # refused from the file header, before any model or output


def test_huge_frame_is_cheap_for_the_tiny_owod_model() -> None:
    """4000x3000 for the 64 px tiny model: the processor's blur once took minutes."""
    requires("transformers")
    from avseg.runtime import Runtime
    from plugins.avseg_owod.proposer import OwlV2ObjectnessProposer, shrink_for

    big = np.zeros((3000, 4000, 3), np.uint8)
    assert max(shrink_for(big, 64).shape[:2]) <= 8 * 64
    small = np.zeros((120, 200, 3), np.uint8)
    assert shrink_for(small, 64) is small  # ordinary frames are untouched
    prop = OwlV2ObjectnessProposer(OwlV2ObjectnessProposer.Config(), Runtime(device="cpu", tiny=True))
    big[1000:2000, 1000:3000] = 255
    out = prop.propose([big])  # shrunk first (above), so no full-size forward pass
    assert len(out) == 1 and (out[0].boxes[:, 2] <= 4000).all() and (out[0].boxes[:, 3] <= 3000).all()


def test_mixed_frame_sizes_are_resized_with_a_saved_warning(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    src = make_frames_folder(tmp_path / "in", n=2, size=32)
    Image.open(src / "frame_1.png").resize((48, 40)).save(src / "frame_1.png")
    out = tmp_path / "out"
    code, _, err = cli(capsys, "run", "--input", str(src), "--out", str(out), *FAST)
    assert code == 0, err
    assert "Traceback" not in err and err.count("different sizes") == 1
    assert Image.open(out / "masks" / "00001.png").size == (32, 32)
    assert any("different sizes" in w for w in json.loads((out / "run.json").read_text())["warnings"])


# --------------------------------------------------------------- images: masks and score


def _write_preds(root: Path, pred: Path, fg: Any, bg: Any, mode: str) -> None:
    ds = open_dataset(root, "s4", "test")
    for clip in ds:
        for i in ds.annotated_frames(clip):
            gt = ds.gt_mask(clip, i)
            assert gt is not None
            p = pred / ds.pred_relpath(clip, i)
            p.parent.mkdir(parents=True, exist_ok=True)
            if mode == "I;16":
                _png16(p, np.where(gt, fg, bg))
            elif mode == "P":
                im = Image.fromarray(gt.astype(np.uint8), "P")
                im.putpalette([0, 0, 0, 3, 0, 0] + [0] * 762)  # index 1 is nearly black
                im.save(p)
            else:
                arr = np.zeros((*gt.shape, 3), np.uint8)
                arr[gt] = fg
                Image.fromarray(arr).save(p)


@pytest.mark.parametrize("mode", ["I;16", "P"])
def test_score_reads_16bit_and_palette_predictions(s4: Path, tmp_path: Path, mode: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _write_preds(s4, tmp_path, 65535, 200, mode)
    code, out, err = cli(capsys, "score", "--root", str(s4), "--subset", "s4", "--pred", str(tmp_path), "--json")
    assert code == 0 and "Traceback" not in err
    metrics = json.loads(out)
    assert metrics["miou"] == pytest.approx(1.0, abs=1e-6) and metrics["fscore"] == pytest.approx(1.0, abs=1e-6)


def test_score_refuses_colour_predictions(s4: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_preds(s4, tmp_path, (255, 0, 0), 0, "RGB")
    code, _, err = cli(capsys, "score", "--root", str(s4), "--subset", "s4", "--pred", str(tmp_path))
    line = one_line(err)
    assert code == 1 and "channels differ" in line and ".png" in line and str(tmp_path) in line


def test_grey_rgb_prediction_is_read_as_grayscale(tmp_path: Path) -> None:
    from avseg.data.images import read_mask

    arr = np.zeros((4, 4, 3), np.uint8)
    arr[:2] = 200
    Image.fromarray(arr).save(tmp_path / "g.png")
    assert read_mask(tmp_path / "g.png").sum() == 8


def test_gt_of_another_size_than_the_prediction_is_scored_at_the_gt_size(
        s4_own: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The prediction is resized to its GT (nearest neighbour) and counted; the clip is scored."""
    ds = open_dataset(s4_own, "s4", "test")
    rec = ds.record(ds.ids[1])
    gt_file = ds.mask_path(rec, 2)
    Image.new("L", (10, 10), 255).save(gt_file)  # all foreground: an empty prediction would score 0
    code, _, err = cli(capsys, *eval_args(s4_own, tmp_path / "out"))
    assert code == 0 and "Traceback" not in err and not [ln for ln in err.splitlines() if ln.startswith("failed ")]
    assert "1 predicted masks differed in size from their GT and were resized to it" in err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["failed"] == [] and metrics["n_clips"] == 3 and metrics["n_frames"] == 15
    assert metrics["resized_predictions"] == {"frames": 1, "clips": [ds.ids[1]]}
    # the clip is scored with the written 32x32 mask of that frame nearest-resized to 10x10
    from avseg.eval.metrics import BinaryMetrics
    from avseg.frames import resize_nearest

    clip = ds.clip(ds.ids[1])
    preds, gts = [], []
    for i in ds.annotated_frames(clip):
        gt = ds.gt_mask(clip, i)
        assert gt is not None
        p = np.asarray(Image.open(tmp_path / "out" / "masks" / ds.pred_relpath(clip, i)))
        preds.append(resize_nearest(p, gt.shape))
        gts.append(gt)
    want = BinaryMetrics().add_clip(clip.clip_id, preds, gts)
    row = next(r for r in csv.DictReader((tmp_path / "out" / "per_clip.csv").open()) if r["clip"] == ds.ids[1])
    assert float(row["j"]) == pytest.approx(want.j, abs=1e-6) and int(row["n_frames"]) == 5
    state = json.loads((tmp_path / "out" / "clips" / f"{ds.ids[1]}.json").read_text())
    assert state["resized_predictions"] == 1


def test_an_unreadable_gt_still_fails_its_clip_alone(s4_own: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ds = open_dataset(s4_own, "s4", "test")
    gt_file = ds.mask_path(ds.record(ds.ids[1]), 2)
    gt_file.write_bytes(b"not a png")
    code, _, err = cli(capsys, *eval_args(s4_own, tmp_path / "out"))
    assert code == 1 and "Traceback" not in err
    failed = [ln for ln in err.splitlines() if ln.startswith("failed ")]
    assert len(failed) == 1 and ds.ids[1] in failed[0] and str(gt_file) in failed[0]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [f["clip"] for f in metrics["failed"]] == [ds.ids[1]] and metrics["n_clips"] == 2


def test_score_resizes_a_prediction_of_another_size_than_its_gt(s4_own: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pred = tmp_path / "pred"
    _write_preds(s4_own, pred, 255, 0, "RGB")
    ds = open_dataset(s4_own, "s4", "test")
    gt_file = ds.mask_path(ds.record(ds.ids[1]), 2)
    Image.new("L", (10, 10)).save(gt_file)
    code, out, err = cli(capsys, "score", "--root", str(s4_own), "--subset", "s4", "--pred", str(pred), "--json")
    assert code == 0, err
    scored = json.loads(out)
    assert scored["resized_predictions"] == {"frames": 1, "clips": [ds.ids[1]]} and scored["n_clips"] == 3


# ------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1.5", "-0.2"])
def test_non_finite_or_out_of_range_threshold(frames: Path, tmp_path: Path, value: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, _, err = cli(capsys, "run", "--input", str(frames), "--out", str(out), *FAST,
                       "--set", f"filter.score-threshold.threshold={value}")
    line = one_line(err)
    assert code == 2 and "threshold" in line
    assert not out.exists()


def test_run_json_is_strict_json(frames: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avseg.outputs import atomic_write_json

    def strict(text: str) -> Any:
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))

    code, _, err = cli(capsys, "run", "--input", str(frames), "--out", str(tmp_path), *FAST)
    assert code == 0, err
    strict((tmp_path / "run.json").read_text())
    atomic_write_json(tmp_path / "x.json", {"a": float("nan"), "b": [np.float32("inf"), 1.0]})
    assert strict((tmp_path / "x.json").read_text()) == {"a": None, "b": [None, 1.0]}


@pytest.mark.parametrize("fps", ["nan", "inf", "0.0001", "0", "-1", "1e9"])
def test_bad_fps_refused_upfront(tmp_path: Path, fps: str, capsys: pytest.CaptureFixture[str]) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=1, size=32)
    out = tmp_path / "out"
    code, _, err = cli(capsys, "run", "--input", str(video), "--out", str(out), *FAST, "--fps", fps)
    line = one_line(err)
    assert code == 2 and "--fps" in line
    assert not out.exists()


@pytest.mark.parametrize("cmd", ["eval", "score"])
@pytest.mark.parametrize("n", ["0", "-3"])
def test_batch_videos_below_one_refused_upfront(s4: Path, tmp_path: Path, cmd: str, n: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = eval_args(s4, out) if cmd == "eval" else [
        "score", "--root", str(s4), "--subset", "s4", "--pred", str(tmp_path)]
    code, _, err = cli(capsys, *args, "--batch-videos", n)
    assert code == 2 and "--batch-videos" in one_line(err)
    assert not out.exists()  # no clip was computed


@pytest.mark.parametrize("args,needle", [
    (["run", "--fps", "abc"], "'--fps'"),
    (["eval", "--batch-videos", "many"], "'--batch-videos'"),
    (["eval", "--limit", "0"], "--limit 0"),
    (["eval", "--subset", "s4", "--root", "x"], "Missing option '--out'"),
])
def test_option_errors_are_one_line(s4: Path, tmp_path: Path, args: list[str], needle: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--root", str(s4), "--subset", "s4", "--out", str(tmp_path / "o")] if args[1] in (
        "--batch-videos", "--limit") else (["-i", "x", "-o", str(tmp_path / "o")] if args[0] == "run" else [])
    code, _, err = cli(capsys, *args, *extra)
    assert code == 2 and needle in one_line(err)
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------- output folder


def test_out_is_a_file_or_read_only(frames: Path, s4: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    for args in (["run", "--input", str(frames), "--out", str(afile), *FAST], eval_args(s4, afile)):
        code, _, err = cli(capsys, *args)
        assert code == 2 and "is a file" in one_line(err)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: make the write itself fail as it would for a user
        import avseg.outputs

        def denied(*a: Any, **k: Any) -> Any:
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(avseg.outputs.tempfile, "mkstemp", denied)
    try:
        for args in (["run", "--input", str(frames), "--out", str(ro), *FAST], eval_args(s4, ro)):
            code, _, err = cli(capsys, *args)
            assert code == 2 and "not writable" in one_line(err)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_disk_full_is_one_line(frames: Path, s4: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    import avseg.outputs

    def full(*a: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(avseg.outputs.os, "replace", full)
    for args in (["run", "--input", str(frames), "--out", str(tmp_path / "r"), *FAST], eval_args(s4, tmp_path / "e")):
        code, _, err = cli(capsys, *args)
        line = one_line(err)
        assert code == 1 and "No space left on device" in line and str(tmp_path) in line


def test_outputs_follow_the_umask(s4: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import avseg.outputs

    old = os.umask(0o022)
    avseg.outputs._UMASK.clear()
    try:
        code, _, err = cli(capsys, *eval_args(s4, tmp_path))
    finally:
        os.umask(old)
        avseg.outputs._UMASK.clear()
    assert code == 0, err
    files = [tmp_path / "metrics.json", tmp_path / "config.json", tmp_path / "per_clip.csv",
             *list((tmp_path / "masks").rglob("*.png"))[:3], *list((tmp_path / "clips").glob("*.json"))]
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o644"}


# ------------------------------------------------------------------------ eval folders


def test_empty_split_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_s4_tree(tmp_path / "t", n_per_split={"train": 1, "val": 0, "test": 0}, size=32)
    for args in (eval_args(root, tmp_path / "out"),
                 ["score", "--root", str(root), "--subset", "s4", "--pred", str(tmp_path)]):
        code, _, err = cli(capsys, *args)
        assert code == 1 and "no clips" in one_line(err)
    (root / "s4_meta_data.csv").write_text("name,start_time,category,split\n")  # header only
    code, _, err = cli(capsys, *eval_args(root, tmp_path / "out"))
    assert code == 1 and "s4_meta_data.csv" in one_line(err)
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize("content", ["{}", '{"clip_id": "X"}', "{trunc"])
def test_unreadable_progress_file_repair_recomputes_only_it(s4: Path, tmp_path: Path, content: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, _, err = cli(capsys, *eval_args(s4, out))
    assert code == 0, err
    states = sorted((out / "clips").glob("*.json"))
    bad, good = states[0], states[1:]
    kept = {p: p.read_bytes() for p in good}
    before = json.loads((out / "metrics.json").read_text())
    bad.write_text(content)
    code, _, err = cli(capsys, *eval_args(s4, out))
    line = one_line(err)
    assert code == 2 and str(bad) in line and "--repair" in line and "--overwrite" not in line
    assert kept == {p: p.read_bytes() for p in good}
    code, _, err = cli(capsys, *eval_args(s4, out), "--repair")
    assert code == 0, err
    after = json.loads((out / "metrics.json").read_text())
    assert after["n_skipped_finished"] == len(good) and after["miou"] == before["miou"]
    assert kept == {p: p.read_bytes() for p in good}  # finished clips untouched


@pytest.mark.parametrize("damage", [
    lambda d: d["binary"].update(iou=d["binary"]["iou"][:1]),  # once: mIoU from 1 of 5 frames, exit 0
    lambda d: d["binary"].update(iou=[float("nan")] * len(d["binary"]["iou"])),  # once: mIoU null, exit 0
    lambda d: d["binary"].update(iou=[7.0] * len(d["binary"]["iou"])),  # once: mIoU 2.97, exit 0
    lambda d: d["binary"].update(fcurves=[[0.1]] * len(d["binary"]["fcurves"])),  # once: a traceback
    lambda d: d.update(warnings=5),  # once: a traceback after every clip was summarised
    lambda d: d.update(plugin_metrics={"x": 3}),
], ids=["short", "nan", "out-of-range", "fcurve", "warnings", "plugin-metrics"])
def test_damaged_progress_entries_are_repaired_not_scored(s4: Path, tmp_path: Path, damage: Any,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, _, err = cli(capsys, *eval_args(s4, out))
    assert code == 0, err
    before = json.loads((out / "metrics.json").read_text())
    bad = sorted((out / "clips").glob("*.json"))[0]
    state = json.loads(bad.read_text())
    damage(state)
    bad.write_text(json.dumps(state))
    code, _, err = cli(capsys, *eval_args(s4, out))
    line = one_line(err)
    assert code == 2 and str(bad) in line and "--repair" in line
    code, _, err = cli(capsys, *eval_args(s4, out), "--repair")
    assert code == 0, err
    after = json.loads((out / "metrics.json").read_text())
    assert after["miou"] == before["miou"] and after["n_skipped_finished"] == 2


def test_plugin_metric_returning_nan_is_a_failure_of_that_metric_and_resumes(s4: Path, tmp_path: Path) -> None:
    """Once: NaN saved as null in the progress file, then every resumed eval crashed summing it."""
    from avseg.eval.runner import run_eval
    from avseg.registry import load_registry
    from avseg.runtime import make_runtime

    class NanMetric:
        @hookimpl
        def register_metrics(self, register: Any) -> None:
            register("nan", lambda p, g: float("nan"))
            register("fine", lambda p, g: 1.0)

    def evaluate(limit: int) -> dict[str, Any]:
        return run_eval(root=s4, subset="s4", split="test", out=tmp_path, limit=limit, progress=False,
                        registry=load_registry(plugins=[("nan", NanMetric())]), runtime=make_runtime(no_cache=True),
                        pipeline={"proposer": "saliency", "filters": ["score-threshold"]})

    for limit in (2, 3):  # the second run resumes the first's two clips
        m = evaluate(limit)
        assert m["plugin_metrics"] == {"fine": 1.0, "nan": None} and m["failed"] == []
        assert len(m["plugin_metric_failures"]) == limit and "returned nan" in m["plugin_metric_failures"][0]
    assert m["n_skipped_finished"] == 2


def test_truncated_config_json_is_repaired_without_losing_clips(s4: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, _, err = cli(capsys, *eval_args(s4, out))
    assert code == 0, err
    cfg = out / "config.json"
    cfg.write_text(cfg.read_text()[:40])
    code, _, err = cli(capsys, *eval_args(s4, out))
    line = one_line(err)
    assert code == 2 and str(cfg) in line and "--repair" in line and "--overwrite" not in line
    code, _, err = cli(capsys, *eval_args(s4, out), "--repair")
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["n_skipped_finished"] == 3
    json.loads(cfg.read_text())


def test_lost_config_json_does_not_reuse_another_configs_clips(s4: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Once: with config.json deleted, another pipeline's finished clips were scored as this one's, exit 0."""
    out = tmp_path / "out"
    code, _, err = cli(capsys, *eval_args(s4, out))
    assert code == 0, err
    (out / "config.json").unlink()
    other = ["--set", "filter.score-threshold.threshold=0.99"]
    code, _, err = cli(capsys, *eval_args(s4, out), *other)
    line = one_line(err)
    assert code == 2 and "different pipeline config" in line and "--repair" in line and "--overwrite" not in line
    code, _, err = cli(capsys, *eval_args(s4, out), *other, "--repair")
    assert code == 0, err
    fresh = tmp_path / "fresh"
    assert cli(capsys, *eval_args(s4, fresh), *other)[0] == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_skipped_finished"] == 0 and metrics["miou"] == json.loads((fresh / "metrics.json").read_text())["miou"]
    (out / "config.json").unlink()  # the same config again: its clips are kept
    code, _, err = cli(capsys, *eval_args(s4, out), *other)
    assert code == 0 and json.loads((out / "metrics.json").read_text())["n_skipped_finished"] == 3, err


def test_lock_stops_a_second_eval_and_stale_locks_are_taken_over(s4: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text("12345\n")  # an old pid file is no lock
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from avseg.eval.folder import FolderLock; lock = FolderLock(Path(sys.argv[1])); lock.__enter__(); "
                               "print('held', flush=True); time.sleep(60)", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, _, err = cli(capsys, *eval_args(s4, out))
        line = one_line(err)
        assert code == 2 and f"pid {holder.pid} on host {socket.gethostname()}" in line and "in use" in line
        assert not (out / "clips").exists()
    finally:
        holder.kill()  # SIGKILL: no cleanup, its holder record stays
        holder.wait()
    # the holder is gone: the OS released its lock; the eval takes it, then releases it
    code, _, err = cli(capsys, *eval_args(s4, out))
    assert code == 0, err
    assert not (out / ".lock.holder").exists()


class _WrongType(Filter):
    """Returns a plain list (not a FilterResult) on one clip."""

    name: ClassVar[str] = "wrong-type"
    bad_clip: ClassVar[str] = ""

    def __call__(self, ctx: FrameContext) -> FilterResult:
        assert ctx.proposals is not None
        if ctx.clip_id == self.bad_clip:
            return list(range(len(ctx.proposals)))  # type: ignore[return-value]
        return FilterResult(keep=list(range(len(ctx.proposals))))


def test_component_returning_the_wrong_type_fails_that_clip_only(
        s4: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = list(importlib.metadata.distributions())

    def reg(register: Any) -> None:
        register(_WrongType)

    module("hostile_wrongtype", register_filters=hookimpl(reg))
    monkeypatch.setattr(importlib.metadata, "distributions",
                        lambda: iter([*real, FakeDist("hostile-plugin", "1.0", {"wrong": "hostile_wrongtype"})]))
    ids = open_dataset(s4, "s4", "test").ids
    monkeypatch.setattr(_WrongType, "bad_clip", ids[1])
    try:
        code, _, err = cli(capsys, "eval", "--root", str(s4), "--subset", "s4", "--out", str(tmp_path),
                           "--proposer", "saliency", "--filter", "wrong-type", "--no-cache")
    finally:
        sys.modules.pop("hostile_wrongtype", None)
    assert code == 1 and "Traceback" not in err
    failed = [ln for ln in err.splitlines() if ln.startswith("failed ")]
    assert len(failed) == 1 and ids[1] in failed[0] and "'wrong-type'" in failed[0] and "FilterResult" in failed[0]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n_clips"] == 3 and [f["clip"] for f in metrics["failed"]] == [ids[1]]  # failed: scored empty


class _BadCombiner(Combiner):
    """Returns a bare array, a mask of the wrong size or a float mask."""

    name: ClassVar[str] = "bad-combiner"
    bad: ClassVar[str] = "type"

    def combine(self, frame: Any, kept: Any) -> Combined:
        if self.bad == "type":
            return np.zeros(frame.shape[:2], bool)  # type: ignore[return-value]
        if self.bad == "size":
            return Combined(np.zeros((3, 3), bool))
        if self.bad == "uint8":  # 0/255: refused like a float mask, never read as "non-zero = foreground"
            return Combined(np.full(frame.shape[:2], 255, np.uint8))  # type: ignore[arg-type]
        return Combined(np.full(frame.shape[:2], 0.3, np.float32))  # type: ignore[arg-type]


class _BadClipFilter(ClipFilter):
    name: ClassVar[str] = "bad-clip-filter"

    def filter_clip(self, ctx: ClipContext) -> list[FilterResult]:
        return None  # type: ignore[return-value]


@pytest.mark.parametrize("bad,needle", [
    ("type", "combine() returned an array of shape (32, 32); expected a Combined"),
    ("size", "expected a bool array of the frame's size 32x32"),
    ("float", "of float32; expected a bool array"),
    ("uint8", "of uint8; expected a bool array of the frame's size 32x32 (H x W); convert it, e.g. mask > 0"),
    ("clip", "filter_clip() returned a NoneType; expected a list of 5 FilterResult"),
])
def test_combiner_or_clip_filter_returning_the_wrong_thing_names_it(
        s4: Path, tmp_path: Path, bad: str, needle: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Not blamed on the GT ("GT mask ... is 32x32 but frame 1 ... is 3x3"), nor an AttributeError."""
    real = list(importlib.metadata.distributions())
    module("hostile_badcomb", register_combiners=hookimpl(lambda register: register(_BadCombiner)),
           register_filters=hookimpl(lambda register: register(_BadClipFilter)))
    monkeypatch.setattr(importlib.metadata, "distributions",
                        lambda: iter([*real, FakeDist("hostile-comb", "1.0", {"bad": "hostile_badcomb"})]))
    monkeypatch.setattr(_BadCombiner, "bad", bad)
    spec = tmp_path / "p.yaml"
    spec.write_text("proposer: saliency\nfilters: [bad-clip-filter]\n" if bad == "clip" else
                    "proposer: saliency\nfilters: [score-threshold]\ncombiner: bad-combiner\n")
    try:
        code, _, err = cli(capsys, "eval", str(spec), "--root", str(s4), "--subset", "s4", "--out",
                           str(tmp_path / "o"), "--no-cache", "--limit", "1")
    finally:
        sys.modules.pop("hostile_badcomb", None)
    assert code == 1 and "Traceback" not in err
    failed = [ln for ln in err.splitlines() if ln.startswith("failed ")]
    kind = "filter 'bad-clip-filter'" if bad == "clip" else "combiner 'bad-combiner'"
    assert len(failed) == 1 and kind in failed[0] and needle in failed[0], err
    assert "GT mask" not in err


def test_failure_reasons_are_never_wrapped(s4_own: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = open_dataset(s4_own, "s4", "test")
    missing = ds.frame_path(ds.record(ds.ids[0]), 3)
    missing.unlink()
    out = tmp_path / ("a-rather-long-folder-name-" * 4) / "out"
    code, _, err = cli(capsys, *eval_args(s4_own, out))
    assert code == 1
    failed = [ln for ln in err.splitlines() if ln.startswith("failed ")]
    assert len(failed) == 1 and str(missing) in failed[0] and len(failed[0]) > 80


def test_ctrl_c_mid_eval_prints_one_line_and_resumes(tmp_path: Path) -> None:
    root = make_s4_tree(tmp_path / "t", n_per_split={"train": 0, "val": 0, "test": 12}, size=32)
    out = tmp_path / "out"
    # Slow each clip down (a sitecustomize in front of the path) so the signal lands mid-eval.
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(
        "import time, avseg.eval.clip as r\n"
        "_orig = r.evaluate_clip\n"
        "def _slow(*a, **k):\n    time.sleep(0.5)\n    return _orig(*a, **k)\n"
        "r.evaluate_clip = _slow\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(slow), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "avseg", *eval_args(root, out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "clips").glob("*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    line = one_line(err)
    assert "interrupted" in line and "same command" in line
    done = {p.name: p.read_bytes() for p in (out / "clips").glob("*.json")}
    assert 2 <= len(done) < 12 and not (out / ".lock.holder").exists()
    rerun = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_skipped_finished"] == len(done) and metrics["n_clips"] == 12
    assert all((out / "clips" / n).read_bytes() == b for n, b in done.items())


# --------------------------------------------------------------------------------- audio


def test_nan_and_inf_audio_become_silence_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_frames_folder(tmp_path / "in", n=2, size=32)
    wave = tone([440.0], 2.0)
    wave[100:200] = np.nan
    wave[300] = np.inf
    write_wav(src / "audio.wav", wave)
    from avseg.data import open_input

    clip = open_input(src)
    assert np.isfinite(clip.audio[0]).all()
    out = tmp_path / "out"
    code, _, err = cli(capsys, "run", "--input", str(src), "--out", str(out), *FAST)
    assert code == 0 and "Traceback" not in err
    assert err.count("101 NaN or infinite audio samples replaced by silence") == 1
    assert any("NaN or infinite" in w for w in json.loads((out / "run.json").read_text())["warnings"])


def test_short_audio_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_frames_folder(tmp_path / "in", n=3, size=32)
    write_wav(src / "audio.wav", tone([440.0], 0.5))
    code, _, err = cli(capsys, "run", "--input", str(src), "--out", str(tmp_path / "out"), *FAST)
    assert code == 0 and err.count("the audio lasts 0.50 s") == 1


def test_video_without_audio_warns_and_saves_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=2, size=32, audio=False)
    out = tmp_path / "out"
    code, _, err = cli(capsys, "run", "--input", str(video), "--out", str(out), *FAST)
    assert code == 0 and "Traceback" not in err and err.count("no audio stream") == 1
    assert any("no audio stream" in w for w in json.loads((out / "run.json").read_text())["warnings"])


def test_eval_saves_audio_warnings_in_metrics(s4_own: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = open_dataset(s4_own, "s4", "test")
    wav = ds.audio_path(ds.record(ds.ids[0]))
    wave = tone([440.0], 5.0)
    wave[:10] = np.nan
    write_wav(wav, wave)
    code, _, err = cli(capsys, *eval_args(s4_own, tmp_path))
    assert code == 0, err
    assert err.count("NaN or infinite") == 1
    warnings = json.loads((tmp_path / "metrics.json").read_text())["warnings"]
    audio = [w for w in warnings if "NaN" in w]
    assert len(audio) == 1 and audio[0].startswith(ds.ids[0])


# ----------------------------------------------------------------------------------- YAML

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("bcdefgh", "cdefghi"))


@pytest.mark.parametrize("what", ["tree", "pipeline", "grid"])
@pytest.mark.parametrize("content", ["bomb", "latin1"])
def test_yaml_bombs_and_non_utf8_refused(s4: Path, tmp_path: Path, what: str, content: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "f.yaml"
    if content == "bomb":
        f.write_text(BOMB)
    else:
        f.write_bytes("description: caf\xe9\nproposer: saliency\n".encode("latin-1"))
    args = {"tree": ["tree", "validate", str(f)], "pipeline": ["presets", "show", str(f)],
            "grid": ["ablate", str(f), "--root", str(s4), "--subset", "s4", "--out", str(tmp_path / "o")]}[what]
    code, _, err = cli(capsys, *args)  # a bomb is refused at its first alias, never expanded
    line = one_line(err)
    assert code == 2 and str(f) in line
    assert ("alias" in line) if content == "bomb" else ("UTF-8" in line)


def test_scalar_aliases_still_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("proposer: &p saliency\nfilters: [{type: score-threshold, threshold: &t 0.4}]\n")
    code, out, err = cli(capsys, "presets", "show", str(f))
    assert code == 0 and "threshold: 0.4" in out, err


@pytest.mark.parametrize("grid,word", [
    ("base: [owod-bind]\naxes: {filter.bind.cosine_threshold: [0.5]}\n", "base: expected a preset name"),
    ("base: owod-bind\ncells: []\n", "cells"),
    ("base: owod-bind\nset: proposer.top_k=5\naxes: {filter.bind.cosine_threshold: [0.5]}\n", "set: expected a list"),
    ("base: owod-bind\naxes: {proposer: [{type: owod}]}\n", "expected a component name"),
])
def test_malformed_grids_are_one_clear_line(s4: Path, tmp_path: Path, grid: str, word: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "grid.yaml"
    f.write_text(grid)
    code, _, err = cli(capsys, "ablate", str(f), "--root", str(s4), "--subset", "s4", "--out", str(tmp_path / "o"))
    line = one_line(err)
    assert code == 2 and str(f) in line and word in line
    assert not (tmp_path / "o").exists()


def test_output_checks_name_the_component() -> None:
    from avseg import validate
    from avseg.errors import ComponentFailed
    from avseg.runtime import Runtime
    from avseg.types import Proposals
    from tests.fakes import GridBoxes

    comp = GridBoxes(GridBoxes.Config(), Runtime(device="cpu"))
    p = Proposals(np.zeros((1, 4), np.float32), np.ones(1, np.float32), masks=np.zeros((1, 5, 5), bool))
    cases = [
        lambda: validate.proposals(comp, [p], 2),  # one frame short
        lambda: validate.proposals(comp, [p], 1, [(8, 8, 3)]),  # masks not at the frame's size
        lambda: validate.proposals(comp, {"boxes": []}, 1),
        lambda: validate.filter_result(comp, FilterResult(keep=[0, 3]), 2),  # index past the end
        lambda: validate.filter_result(comp, FilterResult(keep=[1, 1]), 2),  # repeated
        lambda: validate.audio_embeddings(comp, np.zeros(3), 3),
    ]
    for case in cases:
        with pytest.raises(ComponentFailed, match="proposer 'grid-boxes'"):
            case()
    assert validate.filter_result(comp, FilterResult(keep=np.array([1, 0])), 2).keep == [1, 0]
    assert validate.proposals(comp, [p], 1, [(5, 5, 3)]) == [p]


def test_ablate_cells_are_repaired_the_same_way(s4: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("proposer: saliency\nfilters: [score-threshold]\n")
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"base: {base}\naxes: {{filter.score-threshold.threshold: [0.5]}}\n")
    out = tmp_path / "abl"
    args = ["ablate", str(grid), "--root", str(s4), "--subset", "s4", "--out", str(out), "--no-cache"]
    code, _, err = cli(capsys, *args)
    assert code == 0, err
    state = sorted((out / "cells").glob("*/clips/*.json"))[0]
    state.write_text("{}")
    code, _, err = cli(capsys, *args)
    line = one_line(err)
    assert code == 2 and str(state) in line and "avseg ablate" in line and line.endswith("--repair")
    code, _, err = cli(capsys, *args, "--repair")
    assert code == 0, err
    assert json.loads(state.read_text())["clip_id"] == state.stem
