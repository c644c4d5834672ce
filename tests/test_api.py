"""The Python API: avseg.load -> LoadedPipeline -> Result, against what `avseg run` writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import avseg
from avseg.errors import InputError, UsageError
from avseg.testing import make_frames_folder, make_s4_tree, make_video
from tests.helpers import cli, step_of

# tiny owod-bind; a bind threshold below every tiny score keeps proposals, so the masks are not empty
TINY = {"tiny": True, "cache": False, "set": {"filter.bind.cosine_threshold": -1.0}}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    return {"folder": make_frames_folder(d / "frames", n=2, size=64),
            "video": make_video(d / "clip.mp4", seconds=2, size=64, fps=5)}


@pytest.fixture(scope="module")
def pipe() -> avseg.LoadedPipeline:
    return avseg.load("owod-bind", **TINY)  # type: ignore[arg-type]


def cli_masks(capsys: pytest.CaptureFixture[str], inp: Path, out: Path) -> np.ndarray:
    code, _, err = cli(capsys, "run", "owod-bind", "--tiny", "--no-cache", "--set", "filter.bind.cosine_threshold=-1.0",
                       "--input", str(inp), "--out", str(out))
    assert code == 0, err
    return np.stack([np.asarray(Image.open(p)) > 127 for p in sorted((out / "masks").glob("*.png"))])


def folder_arrays(folder: Path) -> tuple[list[np.ndarray], tuple[np.ndarray, int]]:
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("frame_*.png"))]
    wave, sr = sf.read(str(folder / "audio.wav"), dtype="float32")
    return frames, (wave, int(sr))


def test_import_avseg_and_its_api_names_stay_light() -> None:
    code = ("import sys, avseg; avseg.load; avseg.Result; avseg.LoadedPipeline; avseg.write_report\n"
            "print('HEAVY' if {'torch', 'transformers'} & set(sys.modules) else 'LIGHT')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "LIGHT"


def test_arrays_give_the_masks_avseg_run_writes_for_the_folder(
        pipe: avseg.LoadedPipeline, inputs: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    frames, audio = folder_arrays(inputs["folder"])
    result = pipe((frames, audio))
    assert result.masks.shape == (2, 64, 64) and result.masks.dtype == bool
    assert result.masks.any(), "a threshold of -1 keeps proposals: the masks cannot be empty"
    np.testing.assert_array_equal(result.masks, cli_masks(capsys, inputs["folder"], tmp_path / "cli"))


def test_mp4_result_and_its_save_match_avseg_run(
        pipe: avseg.LoadedPipeline, inputs: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = pipe(str(inputs["video"]))
    expected = cli_masks(capsys, inputs["video"], tmp_path / "cli")
    np.testing.assert_array_equal(result.masks, expected)
    saved = result.save(tmp_path / "api")
    files = {p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file()}
    cli_files = {p.relative_to(tmp_path / "cli").as_posix() for p in (tmp_path / "cli").rglob("*") if p.is_file()}
    assert files == cli_files and "overlay.mp4" in files
    a, b = json.loads((saved / "run.json").read_text()), json.loads((tmp_path / "cli" / "run.json").read_text())
    assert a.keys() == b.keys() and a["config"] == b["config"] and a["frames"] == b["frames"]
    for name in sorted(files):
        if name.startswith("masks/"):
            assert (saved / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name


def test_result_tells_each_objects_story(pipe: avseg.LoadedPipeline, inputs: dict[str, Path]) -> None:
    # tau_BB at 0 lets every box reach bind, which then drops them all
    strict = avseg.load("owod-bind", tiny=True, cache=False,
                        set={"filter.score-threshold.threshold": 0.0, "filter.bind.cosine_threshold": 1.0})
    result = strict(inputs["folder"])
    objs = [o for f in result.frames for o in f.objects]
    assert objs and not any(o.kept for o in objs) and not result.masks.any()
    assert all(o.dropped_by == "bind" and o.reason and "bind" in o.scores and o.mask is None for o in objs)
    kept = pipe(inputs["folder"])
    f0 = kept.frames[0]
    assert f0.kept and all(o.mask is not None and o.mask.shape == (64, 64) for o in f0.kept)
    union = np.logical_or.reduce([o.mask for o in f0.kept])
    np.testing.assert_array_equal(union, f0.mask)  # the frame mask is the union of the kept objects' masks
    assert kept.label_maps is None  # owod is class-agnostic
    assert any(k.startswith("proposer.owod") for k in kept.timings) and kept.counters
    assert step_of(kept.config, "proposer")["type"] == "owod"  # type: ignore[index]


def test_views_and_notebook_display(pipe: avseg.LoadedPipeline, inputs: dict[str, Path]) -> None:
    result = pipe(inputs["folder"])
    ov = result.overlay(0)
    assert ov.size == (64, 64) and ov.mode == "RGB"
    assert result.debug_view(0).width > 64  # the legend sits beside the frame
    png = result._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<img src='data:image/png;base64," in result._repr_html_()
    assert "2 frames" in repr(result) and "owod" in repr(pipe)


def test_no_terminal_output_unless_asked(inputs: dict[str, Path], capfd: pytest.CaptureFixture[str]) -> None:
    p = avseg.load(proposer="saliency", filters=["score-threshold"], cache=False)
    p(inputs["folder"])
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_names_the_stages(inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    from rich.status import Status

    monkeypatch.setattr(Status, "update", lambda self, status=None, **kw: seen.append(str(status)))
    p = avseg.load(proposer="saliency", filters=["score-threshold"], cache=False, progress=True)
    p(inputs["folder"])
    assert any("proposer.saliency" in s for s in seen), seen


def test_bad_inputs_and_options_fail_in_one_line(pipe: avseg.LoadedPipeline, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown option 'filter'.*did you mean 'filters'"):
        avseg.load(filter=["bind"])
    with pytest.raises(InputError, match="frame 0.*uint8"):
        pipe(([np.zeros((8, 8, 3), np.float32)], (np.zeros(16000, np.float32), 16000)))
    with pytest.raises(InputError, match="sample rate"):
        pipe(([np.zeros((8, 8, 3), np.uint8)], (np.zeros(16000, np.float32), 0)))
    with pytest.raises(InputError, match="does not exist"):
        pipe(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="expected a video path"):
        pipe(42)


def test_evaluate_returns_the_metrics(tmp_path: Path) -> None:
    root = make_s4_tree(tmp_path / "s4", n_per_split={"test": 2}, size=48)
    p = avseg.load(proposer="saliency", filters=["score-threshold"], cache=False)
    m = p.evaluate(root, "s4", "test", out=tmp_path / "ev")
    assert m["n_clips"] == 2 and 0.0 <= m["miou"] <= 1.0 and m["out"] == str(tmp_path / "ev")
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["miou"] == m["miou"]
    m2 = p.evaluate(root, "s4", "test", limit=1)  # out=None: a temporary folder
    assert m2["n_clips"] == 1 and (Path(m2["out"]) / "metrics.json").is_file()


def test_labelled_objects_and_label_maps(inputs: dict[str, Path]) -> None:
    from avseg.registry import load_registry
    from tests.fakes import FakePlugin

    reg = load_registry(plugins=[("fake", FakePlugin())])
    p = avseg.load(proposer="grid-boxes", embedder="none", segmenter="box-masks", filters=["score-threshold"],
                   set={"proposer.labelled": True, "proposer.n": 4, "filter.score-threshold.threshold": 0.4},
                   cache=False, registry=reg)
    result = p(inputs["folder"])
    f0 = result.frames[0]
    assert [o.label for o in f0.kept] == ["dog", "person", "car"]
    (piano,) = f0.dropped
    assert piano.label == "piano" and piano.dropped_by == "score-threshold" and piano.reason
    maps = result.label_maps
    assert maps is not None and maps.shape == result.masks.shape
    assert f0.labels == sorted(["dog", "person", "car"])
    for o in f0.kept:  # each kept object's pixels carry its label (GridBoxes' boxes do not overlap)
        assert o.mask is not None and o.mask.any()
        assert set(np.unique(maps[0][o.mask])) == {f0.labels.index(o.label) + 1}  # type: ignore[arg-type]
    assert (maps[0] > 0).sum() == f0.mask.sum()
