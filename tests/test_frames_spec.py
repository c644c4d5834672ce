"""The spec's ``frames:`` size (avseg/frames.py) and every preset's explicit audio and frames."""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np
import pytest
import yaml

from avseg.errors import ConfigError
from avseg.frames import FramesSpec, resize_nearest
from avseg.pipeline import Pipeline
from avseg.registry import load_registry
from avseg.runtime import Runtime
from avseg.spec import compose, resolve
from tests.fakes import FakePlugin, GridBoxes
from tests.helpers import cli, steps_of
from tests.test_pipeline import red_clip, spec

PAPER = ("at-gdino-sam", "owod-bind", "sam-bind")


@pytest.fixture
def registry():  # type: ignore[no-untyped-def]
    return load_registry(plugins=[("fake", FakePlugin())])


def _run(registry, frames: dict[str, Any] | None, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    seen: list[tuple[int, ...]] = []
    orig = GridBoxes.propose

    def spy(self, frames_, prompts=None):  # type: ignore[no-untyped-def]
        seen.extend(f.shape for f in frames_)
        return orig(self, frames_, prompts)

    monkeypatch.setattr(GridBoxes, "propose", spy)
    s = spec(proposer={"type": "grid-boxes", "n": 3}, filters=[{"type": "score-threshold", "threshold": 0.6}])
    if frames is not None:
        s["frames"] = frames
    res = Pipeline(resolve(s, registry), Runtime(device="cpu")).run_clip(red_clip(1))
    return res.frames[0], seen


def test_frames_are_resized_before_every_model_and_masks_come_back_at_the_input_size(
        registry, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    native, seen = _run(registry, None, monkeypatch)
    assert seen == [(40, 80, 3)]
    small, seen = _run(registry, {"size": [20, 40]}, monkeypatch)
    assert seen == [(20, 40, 3)]  # the proposer got the resized frame
    assert small.mask.shape == (40, 80) and np.array_equal(small.mask, native.mask)  # back at the input's size
    np.testing.assert_allclose(small.kept.boxes, native.kept.boxes)  # boxes in input pixels
    assert small.kept.masks is not None and small.kept.masks.shape == (2, 40, 80)
    assert [r["box"] for r in small.trace] == [r["box"] for r in native.trace]  # the debug trace too


def test_resize_nearest_is_nearest_neighbour() -> None:
    a = np.array([[1, 0], [0, 1]], bool)
    out = resize_nearest(a, (4, 6))
    assert out.shape == (4, 6) and out[:2, :3].all() and not out[:2, 3:].any() and out[2:, 3:].all()
    lm = np.array([[0, 3, 3, 5]], np.int32)
    assert resize_nearest(lm, (1, 2)).tolist() == [[3, 5]]  # pixel centres (PIL NEAREST)
    assert resize_nearest(a, (2, 2)) is a


@pytest.mark.parametrize("frames, message", [
    (224, "frames: expected a mapping such as {size: [224, 224]}"),
    ({"size": [0, 224]}, "size must be two positive integers"),
    ({"size": [224]}, "frames: invalid size="),
    ({"sise": [224, 224]}, "frames: invalid sise="),
])
def test_bad_frames_spec_is_one_line(registry, frames: Any, message: str) -> None:  # type: ignore[no-untyped-def]
    s = spec()
    s["frames"] = frames
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("{", r"\{")) as exc:
        resolve(s, registry)
    assert "\n" not in str(exc.value)


def _raw_presets() -> dict[str, dict[str, Any]]:
    files = resources.files("avseg.presets").iterdir()
    return {f.name[:-5]: yaml.safe_load(f.read_text()) for f in files if f.name.endswith(".yaml")}


def test_every_preset_states_its_audio_and_frames() -> None:
    raw = _raw_presets()
    assert len(raw) >= 10
    for name, p in raw.items():
        assert isinstance(p.get("audio"), dict) and {"window", "channels"} <= set(p["audio"]), name
        assert isinstance(p.get("frames"), dict) and "size" in p["frames"], name


def test_presets_show_prints_audio_and_frames(capsys: pytest.CaptureFixture[str]) -> None:
    reg = load_registry()
    for name in sorted(_raw_presets()):
        code, out, _ = cli(capsys, "presets", "show", name)
        shown = yaml.safe_load(out)
        assert code == 0 and set(shown["audio"]) == {"window", "offset", "channels"}, name
        assert "size" in shown["frames"], name
    for name in PAPER:
        code, out, _ = cli(capsys, "presets", "show", name)
        shown = yaml.safe_load(out)
        assert shown["audio"] == {"window": 0.96, "offset": 0.0, "channels": "first"}
        assert shown["frames"]["size"] == [224, 224]
    rs = resolve(compose("at-gdino-sam", registry=reg), reg)
    assert rs.frames == FramesSpec(size=(224, 224)) and rs.first("tagger") is not None
    assert rs.first("tagger").config.pad_to == 0.0  # type: ignore[attr-defined]
    # any other choice is a named option
    rs = resolve(compose("owod-bind", sets=["frames.size=null", "audio.window=1.0"], registry=reg), reg)
    assert rs.frames.size is None and rs.audio.window == 1.0 and rs.audio.channels == "first"


def test_owod_bind_authors_shows_the_authors_loop(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "presets", "show", "owod-bind-authors")
    shown = yaml.safe_load(out)
    box = steps_of(shown, "filter")[0]
    text = yaml.safe_dump(box)
    assert code == 0 and "threshold: 0.15" in text and "strict: true" in text
    assert "side_reference: height" in text and "fallback: first-in-loop" in text
    assert "highest-objectness" in shown["description"] and shown["frames"]["size"] is None


def test_a_paper_preset_on_a_non_224_video_writes_masks_at_the_input_size(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import json

    from PIL import Image

    from avseg.testing import make_frames_folder

    folder = make_frames_folder(tmp_path / "clip", n=2, size=48)
    for p in sorted(folder.glob("*.png")):  # 80 wide, 48 high: not 224x224, not square
        Image.open(p).resize((80, 48)).save(p)
    code, _, err = cli(capsys, "run", "owod-bind", "--input", str(folder), "--out", str(tmp_path / "out"),
                       "--tiny", "--no-cache", "--set", "filter.bind.cosine_threshold=-1.0")
    assert code == 0, err
    masks = sorted((tmp_path / "out" / "masks").glob("*.png"))
    assert masks and all(Image.open(m).size == (80, 48) for m in masks)
    meta = json.loads((tmp_path / "out" / "run.json").read_text())
    assert meta["config"]["frames"]["size"] == [224, 224] and meta["config"]["audio"]["window"] == 0.96
