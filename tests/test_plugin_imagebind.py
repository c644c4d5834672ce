"""The ``imagebind`` embedder: tiny variant, parity with ImageBind's own transforms, errors.

Parity: at equal (tiny, random) weights, i.e. the very same ``ImageBindModel`` object, our
audio and region embeddings must equal what ImageBind's own ``imagebind.data`` loaders feed the
model: ``load_and_transform_vision_data`` on PNG files of the crops (lossless), and
``load_and_transform_audio_data`` on the same waveform (its ``torchaudio.load`` file read, which
needs torchcodec, is replaced by one returning the waveform: everything after the read is
upstream code).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.deps import requires

# looked up, not imported: importing imagebind needs compat's fixes first (see compat.py)
requires("torch", "torchaudio", "imagebind", "pytorchvideo", import_it=False)

import avseg_imagebind  # noqa: E402
import torch  # noqa: E402
from avseg_imagebind.compat import load_imagebind  # noqa: E402
from avseg_imagebind.embedder import (  # noqa: E402
    IMAGEBIND_HUGE,
    ImageBindEmbedder,
    box_pixels,
    load_checkpoint,
    waveform2melspec,
)
from avseg_imagebind.tiny import TINY_KWARGS, build_model  # noqa: E402
from PIL import Image  # noqa: E402

from avseg.errors import AvsegError, DependencyMissing, WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402
from avseg.types import AudioWindow, Proposals  # noqa: E402

ib_model, ib_data = load_imagebind()


def _embedder(rt: Runtime | None = None, **cfg: object) -> ImageBindEmbedder:
    return ImageBindEmbedder(ImageBindEmbedder.Config(**cfg), rt or Runtime(device="cpu", tiny=True, seed=0))


@pytest.fixture(scope="module")
def emb() -> ImageBindEmbedder:
    return _embedder()


def _frame(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth image with noise, so that crops, blur and resizing all matter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], axis=-1)
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def _upstream_vision(crops: list[np.ndarray], tmp_path: Path) -> torch.Tensor:
    paths = []
    for i, c in enumerate(crops):
        p = tmp_path / f"crop{i}.png"
        Image.fromarray(c).save(p)
        paths.append(str(p))
    return ib_data.load_and_transform_vision_data(paths, "cpu")


def _upstream_audio(monkeypatch: pytest.MonkeyPatch, waves: list[tuple[np.ndarray, int]]) -> torch.Tensor:
    """``load_and_transform_audio_data`` on in-memory waveforms (only the file read replaced)."""
    table = {f"w{i}.wav": (w, sr) for i, (w, sr) in enumerate(waves)}

    def fake_load(path: str) -> tuple[torch.Tensor, int]:
        w, sr = table[path]
        return torch.from_numpy(np.array(w, np.float32)).reshape(1, -1), sr

    monkeypatch.setattr(ib_data.torchaudio, "load", fake_load)
    return ib_data.load_and_transform_audio_data(list(table), "cpu")


def _model_out(model: torch.nn.Module, modality: str, x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return model({modality: x})[modality].float().numpy()


# ------------------------------------------------------------------ plugin plumbing
def test_import_does_not_import_torch() -> None:
    code = "import sys, avseg_imagebind; assert 'torch' not in sys.modules, 'torch'; assert 'imagebind' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry() -> None:
    from avseg.registry import load_registry

    reg = load_registry(plugins=[("imagebind", avseg_imagebind)], entry_points=False)
    assert reg.get("embedder", "imagebind") is ImageBindEmbedder


def test_class_attributes() -> None:
    assert ImageBindEmbedder.kind == "embedder"
    assert ImageBindEmbedder.extra == "imagebind"
    assert ImageBindEmbedder.weights == {"huge": [IMAGEBIND_HUGE]}
    assert ImageBindEmbedder.default_variant == "huge"
    assert IMAGEBIND_HUGE.filename == "imagebind_huge.pth" and IMAGEBIND_HUGE.licence == "CC-BY-NC-4.0"
    from avseg.registry import dependency_status

    assert dependency_status(ImageBindEmbedder) == (True, [])  # every `requires` entry is findable here
    cfg = ImageBindEmbedder.Config()
    assert "batch_size" not in cfg.output_params() and "background" in cfg.output_params()
    with pytest.raises(ValueError, match="odd"):
        ImageBindEmbedder.Config(blur_kernel=20)


def test_tiny_is_the_imagebind_class_and_seeded(emb: ImageBindEmbedder) -> None:
    assert type(emb.model) is ib_model.ImageBindModel
    assert emb.weights_used() == "tiny"
    assert not emb.model.training
    other = build_model(ib_model, TINY_KWARGS, seed=0)
    for (k, a), (_, b) in zip(emb.model.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    different = build_model(ib_model, TINY_KWARGS, seed=1)
    assert not torch.equal(
        different.modality_heads["vision"][-1].weight, emb.model.modality_heads["vision"][-1].weight
    )


def test_model_is_shared_per_process() -> None:
    rt = Runtime(device="cpu", tiny=True, seed=3)
    a, b = _embedder(rt), _embedder(rt, background="black")
    assert a.model is b.model


# ---------------------------------------------------------------------- vision
def test_vision_parity_plain_box_crops(emb: ImageBindEmbedder, tmp_path: Path) -> None:
    frame = _frame()
    boxes = np.array(
        [[10.4, 5.6, 70.5, 60.2], [0, 0, 128, 96], [90, 30, 127, 95], [33, 40, 34, 90]], np.float32
    )
    props = Proposals(boxes, np.ones(len(boxes)))
    crops = emb.region_crops([frame], [props])[0]
    # PIL-style rounding of the box (the authors crop with PIL's Image.crop)
    pil = Image.fromarray(frame)
    for c, b in zip(crops, boxes, strict=True):
        assert np.array_equal(c, np.asarray(pil.crop(tuple(float(v) for v in b))))
    ours_x = emb.vision_inputs(crops)
    up_x = _upstream_vision(crops, tmp_path)
    assert torch.equal(ours_x, up_x)
    ours = emb.embed_regions([frame], [props])[0]
    up = _model_out(emb.model, "vision", up_x)
    # same inputs, same batch, same model: equal up to float reassociation noise
    np.testing.assert_allclose(ours, up, rtol=0, atol=1e-6)
    assert ours.dtype == np.float32 and ours.shape == (4, TINY_KWARGS["out_embed_dim"])
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)  # ImageBind normalises vision


def test_vision_parity_blurred_background_as_authors(emb: ImageBindEmbedder, tmp_path: Path) -> None:
    """The authors' ``segment_image(pil, mask).crop(box)``: blur the frame (21x21), keep the mask."""
    import cv2

    frame = _frame(seed=1)
    masks = np.zeros((2, 96, 128), bool)
    masks[0, 20:50, 30:60] = True
    masks[1, 50:90, 70:120] = True
    boxes = np.array([[25.2, 15.7, 65.1, 55.5], [65, 45, 125, 95]], np.float32)
    props = Proposals(boxes, np.ones(2), masks=masks)
    blurred = cv2.GaussianBlur(frame, (21, 21), 0)
    expected = [
        np.asarray(Image.fromarray(np.where(m[..., None], frame, blurred)).crop(tuple(float(v) for v in b)))
        for m, b in zip(masks, boxes, strict=True)
    ]
    crops = emb.region_crops([frame], [props])[0]
    for c, e in zip(crops, expected, strict=True):
        assert np.array_equal(c, e)
    assert not np.array_equal(crops[0], frame[16:56, 25:65])  # the blur did change pixels
    up = _model_out(emb.model, "vision", _upstream_vision(expected, tmp_path))
    np.testing.assert_allclose(emb.embed_regions([frame], [props])[0], up, rtol=0, atol=1e-6)


def test_background_black_and_keep() -> None:
    frame = _frame(seed=2)
    mask = np.zeros((1, 96, 128), bool)
    mask[0, 10:20, 10:30] = True
    props = Proposals(np.array([[5, 5, 40, 30]], np.float32), np.ones(1), masks=mask)
    black = _embedder(background="black").region_crops([frame], [props])[0][0]
    inside = mask[0, 5:30, 5:40]
    assert np.array_equal(black[inside], frame[5:30, 5:40][inside])
    assert not black[~inside].any()
    keep = _embedder(background="keep").region_crops([frame], [props])[0][0]
    assert np.array_equal(keep, frame[5:30, 5:40])


def test_zero_area_and_out_of_frame_boxes(emb: ImageBindEmbedder) -> None:
    assert box_pixels([5, 5, 5, 5], 10, 8) == (5, 5, 6, 6)
    assert box_pixels([9.9, 7.9, 12, 30], 10, 8) == (9, 7, 10, 8)
    assert box_pixels([-4, -3, -1, -1], 10, 8) == (0, 0, 1, 1)
    frame = _frame()
    props = Proposals(np.array([[40, 40, 40, 40], [127.6, 95.6, 140, 120]], np.float32), np.ones(2))
    crops = emb.region_crops([frame], [props])[0]
    assert [c.shape for c in crops] == [(1, 1, 3), (1, 1, 3)]
    out = emb.embed_regions([frame], [props])[0]
    assert out.shape == (2, TINY_KWARGS["out_embed_dim"]) and np.isfinite(out).all()


def test_all_regions_of_a_clip_in_one_forward() -> None:
    rt = Runtime(device="cpu", tiny=True, seed=0)
    e = _embedder(rt)
    frames = [_frame(seed=i) for i in range(3)]
    props = [
        Proposals(np.array([[0, 0, 50, 50], [10, 10, 90, 60]], np.float32), np.ones(2)),
        Proposals.empty(),
        Proposals(np.array([[5, 5, 30, 80]], np.float32), np.ones(1)),
    ]
    out = e.embed_regions(frames, props)
    assert [o.shape[0] for o in out] == [2, 0, 1]
    assert rt.counters["imagebind.vision_crops"] == 3
    assert rt.counters["imagebind.vision_forwards"] == 1
    # batching does not change the result: frame by frame, and 1 crop per forward
    small = _embedder(Runtime(device="cpu", tiny=True, seed=0), batch_size=1)
    for f, p, o in zip(frames, props, out, strict=True):
        np.testing.assert_allclose(small.embed_regions([f], [p])[0], o, rtol=0, atol=1e-5)
    # no proposals at all: no forward pass
    rt2 = Runtime(device="cpu", tiny=True, seed=0)
    empty = _embedder(rt2).embed_regions(frames[:1], [Proposals.empty()])
    assert (
        empty[0].shape == (0, TINY_KWARGS["out_embed_dim"]) and rt2.counters["imagebind.vision_forwards"] == 0
    )


# ----------------------------------------------------------------------- audio
def test_waveform2melspec_equals_upstream() -> None:
    rng = np.random.default_rng(0)
    for n in (16000, 32000, 40000):
        w = torch.from_numpy(rng.standard_normal((1, n)).astype(np.float32)) * 0.1
        assert torch.equal(
            waveform2melspec(w.clone(), 16000, 128, 204), ib_data.waveform2melspec(w.clone(), 16000, 128, 204)
        )


@pytest.mark.parametrize(
    ("seconds", "sr"),
    [
        (1.0, 16000),
        (1.0, 44100),
        (3.3, 22050),
    ],  # 1-s windows as avseg makes them; a long one: 3 distinct clips
)
def test_audio_parity_with_upstream_loader(
    emb: ImageBindEmbedder, monkeypatch: pytest.MonkeyPatch, seconds: float, sr: int
) -> None:
    rng = np.random.default_rng(int(seconds * 10) + sr)
    waves = [
        (np.sin(np.arange(int(seconds * sr)) * f) * 0.3 + rng.normal(0, 0.05, int(seconds * sr))).astype(
            np.float32
        )
        for f in (0.05, 0.2)
    ]
    windows = [AudioWindow(w, sr) for w in waves]
    before = [w.copy() for w in waves]
    ours_x = emb.audio_inputs(windows)
    up_x = _upstream_audio(monkeypatch, [(w, sr) for w in waves])
    assert ours_x.shape == up_x.shape == (2, 3, 1, 128, 204)
    assert torch.equal(ours_x, up_x)
    for w, b in zip(windows, before, strict=True):
        assert np.array_equal(w.waveform, b)  # the caller's arrays are left alone
    ours = emb.embed_audio(windows)
    up = _model_out(emb.model, "audio", up_x)
    np.testing.assert_allclose(ours, up, rtol=0, atol=1e-5)  # embeddings of norm ~20
    assert ours.dtype == np.float32 and ours.shape == (2, TINY_KWARGS["out_embed_dim"])


def test_stereo_file_parity_with_upstream_loader(
    emb: ImageBindEmbedder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stereo 44.1 kHz file (as every AVSBench clip is) read by avseg's reader, cut by the
    pipeline's audio spec with ``channels: first``, equals ``load_and_transform_audio_data`` on
    the same file: upstream keeps both channels, resamples them with torchaudio, and
    ``kaldi.fbank`` reads channel 0. Mixing the channels (the old behaviour) does not."""
    import soundfile as sf

    from avseg.audio import AudioSpec, clip_windows, load_audio

    sr, n = 44100, 44100  # one 1-s window per file, as avseg makes them
    t = np.arange(n) / sr
    rng = np.random.default_rng(7)
    left = 0.3 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 0.02, n)
    right = 0.3 * np.sin(2 * np.pi * 2500 * t + 1.0) + rng.normal(0, 0.02, n)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1).astype(np.float32), sr, subtype="FLOAT")

    def torchaudio_load(p: str) -> tuple[torch.Tensor, int]:  # torchaudio.load: (channels, frames)
        data, rate = sf.read(p, dtype="float32", always_2d=True)
        return torch.from_numpy(np.ascontiguousarray(data.T)), rate

    monkeypatch.setattr(ib_data.torchaudio, "load", torchaudio_load)
    up_x = ib_data.load_and_transform_audio_data([str(path)], "cpu")
    wave, rate = load_audio(path)
    assert wave.shape == (2, n) and rate == sr
    first = clip_windows(wave, rate, [15 / 16], AudioSpec(channels="first"))
    ours_x = emb.audio_inputs(first)
    assert ours_x.shape == up_x.shape == (1, 3, 1, 128, 204)
    # Upstream subtracts the mean over *both* channels before kaldi.fbank, whose per-frame DC
    # removal cancels that constant again: equal up to float rounding (measured 2.1e-5).
    torch.testing.assert_close(ours_x, up_x, rtol=0, atol=1e-4)
    np.testing.assert_allclose(emb.embed_audio(first), _model_out(emb.model, "audio", up_x), rtol=0, atol=1e-5)
    mixed = emb.audio_inputs(clip_windows(wave, rate, [15 / 16], AudioSpec(channels="mix")))
    assert float((mixed - up_x).abs().max()) > 0.1  # the mean of the channels is another input


def test_audio_pad_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    """'repeat' / 'zero' equal ImageBind on the waveform tiled / zero-padded to 2 s."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal(16000) * 0.1).astype(np.float32)
    win = [AudioWindow(w, 16000)]
    rep = _embedder(pad_mode="repeat").audio_inputs(win)
    zero = _embedder(pad_mode="zero").audio_inputs(win)
    up = _embedder().audio_inputs(win)
    expected = _upstream_audio(
        monkeypatch, [(np.tile(w, 2), 16000), (np.concatenate([w, np.zeros(16000, np.float32)]), 16000)]
    )
    assert torch.equal(rep[0], expected[0])
    assert torch.equal(zero[0], expected[1])
    assert not torch.equal(up, rep) and not torch.equal(up, zero)
    # 'upstream': ImageBind's own handling of a 1-s file: fbank of 98 frames, then constant padding
    pad = up[0, :, 0, :, 98:]
    assert torch.allclose(pad, torch.full_like(pad, (0 - (-4.268)) / 9.138), rtol=0, atol=1e-6)
    assert not torch.allclose(up[0, :, 0, :, 97], pad[..., 0], rtol=0, atol=1e-3)


def test_audio_batched_once_and_short_windows() -> None:
    rt = Runtime(device="cpu", tiny=True, seed=0)
    e = _embedder(rt)
    rng = np.random.default_rng(1)
    windows = [AudioWindow((rng.standard_normal(16000) * 0.1).astype(np.float32), 16000) for _ in range(4)]
    windows.append(AudioWindow(np.zeros(100, np.float32), 16000))  # under one 25 ms frame
    windows.append(AudioWindow(np.zeros(0, np.float32), 16000))  # empty
    out = e.embed_audio(windows)
    assert out.shape == (6, TINY_KWARGS["out_embed_dim"]) and np.isfinite(out).all()
    assert rt.counters["imagebind.audio_forwards"] == 1 and rt.counters["imagebind.audio_windows"] == 6
    # ImageBind's audio output: per clip L2-normalised x 20 (fixed logit scale), averaged over
    # the 3 clips, which are identical for a 1-s window
    np.testing.assert_allclose(np.linalg.norm(out[:4], axis=1), 20.0, rtol=1e-5)
    assert e.embed_audio([]).shape == (0, TINY_KWARGS["out_embed_dim"])


# ------------------------------------------------------------- weights, errors
def test_missing_weights_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    with pytest.raises(WeightsMissing) as ei:
        ImageBindEmbedder(ImageBindEmbedder.Config(), Runtime(device="cpu"))
    msg = str(ei.value)
    assert "\n" not in msg and "imagebind_huge.pth" in msg and "avseg weights fetch imagebind" in msg
    wrong = tmp_path / "nope" / "imagebind_huge.pth"
    with pytest.raises(WeightsMissing) as ei:
        ImageBindEmbedder(ImageBindEmbedder.Config(checkpoint=str(wrong)), Runtime(device="cpu"))
    assert str(wrong) in str(ei.value) and str(tmp_path / "w") not in str(ei.value)


def test_checkpoint_loading(tmp_path: Path) -> None:
    """The load path of the real checkpoint (strict state-dict load), exercised at tiny size."""
    src = build_model(ib_model, TINY_KWARGS, seed=7).eval()
    path = tmp_path / "tiny.pth"
    torch.save(src.state_dict(), path)
    dst = build_model(ib_model, TINY_KWARGS, seed=8).eval()
    load_checkpoint(dst, path)
    x = torch.randn(2, 3, 224, 224)
    np.testing.assert_array_equal(_model_out(src, "vision", x), _model_out(dst, "vision", x))
    # a checkpoint of another shape, or of another model: one-line errors
    other = build_model(ib_model, {**TINY_KWARGS, "out_embed_dim": 8}, seed=0)
    bad = tmp_path / "bad.pth"
    torch.save(other.state_dict(), bad)
    with pytest.raises(AvsegError) as ei:
        load_checkpoint(dst, bad)
    assert "\n" not in str(ei.value) and "size mismatch" in str(ei.value)
    junk = tmp_path / "junk.pth"
    torch.save({"foo.weight": torch.zeros(2)}, junk)
    with pytest.raises(AvsegError, match="not an ImageBind checkpoint"):
        load_checkpoint(dst, junk)


@pytest.mark.parametrize("blocked", ["torch", "pytorchvideo"])
def test_dependency_missing_is_one_line(blocked: str) -> None:
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "from avseg.runtime import Runtime\n"
        "from avseg.errors import DependencyMissing\n"
        "from avseg_imagebind.embedder import ImageBindEmbedder as E\n"
        "try:\n    E(E.Config(), Runtime(device='cpu', tiny=True))\n"
        "except DependencyMissing as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out.startswith(f"embedder 'imagebind' needs {blocked}") and "avseg[imagebind]" in out
    assert "\n" not in out
    assert issubclass(DependencyMissing, AvsegError)
