"""The one audio preparation: readers keep channels, the spec's channel rule and windows, resamplers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avseg.audio import AudioSpec, clip_windows, frame_windows, load_audio, resample, to_mono
from avseg.data import read_video
from avseg.types import Clip
from tests.deps import requires


def stereo(sr: int, seconds: float) -> np.ndarray:
    n = int(sr * seconds)
    t = np.arange(n) / sr
    return np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 1000 * t)]).astype(np.float32)


def test_readers_keep_the_channels(tmp_path: Path) -> None:
    import av
    import soundfile as sf

    data = stereo(22050, 2.0)
    sf.write(tmp_path / "s.wav", data.T, 22050, subtype="FLOAT")
    wave, sr = load_audio(tmp_path / "s.wav")
    assert sr == 22050 and wave.shape == (2, data.shape[1]) and wave.dtype == np.float32
    np.testing.assert_array_equal(wave, data)
    mono = data[0]
    sf.write(tmp_path / "m.wav", mono, 22050, subtype="FLOAT")
    assert load_audio(tmp_path / "m.wav")[0].shape == (1, len(mono))
    # a video's stereo track through PyAV: both channels, left and right kept apart
    path = tmp_path / "v.mp4"
    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=1)
        vs.width = vs.height = 32
        a = c.add_stream("aac", rate=22050)
        a.layout = "stereo"
        for i in range(2):
            f = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        for s in range(0, data.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, s : s + 1024]), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 22050, s
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    clip = read_video(path)
    wave, sr = clip.audio
    assert wave.ndim == 2 and wave.shape[0] == 2 and sr == 22050
    left, right = wave[0, 4000:30000], wave[1, 4000:30000]
    assert np.abs(left).max() > 0.8 and 0.35 < np.abs(right).max() < 0.65  # the channels were not mixed


def test_clip_audio_is_channels_first_even_from_a_mono_loader() -> None:
    clip = Clip.from_arrays("c", [np.zeros((4, 4, 3), np.uint8)], np.ones(100, np.float32), 100)
    wave, sr = clip.audio
    assert wave.shape == (1, 100) and sr == 100


def test_channel_rule() -> None:
    data = stereo(100, 3.0)
    np.testing.assert_array_equal(to_mono(data, "first"), data[0])
    np.testing.assert_array_equal(to_mono(data, "mix"), (data[0] + data[1]) / 2)
    np.testing.assert_array_equal(to_mono(data[:1], "mix"), data[0])
    np.testing.assert_array_equal(to_mono(data[0], "first"), data[0])  # mono stays mono
    first = clip_windows(data, 100, [0.9375, 1.9375], AudioSpec(channels="first"))
    mix = clip_windows(data, 100, [0.9375, 1.9375], AudioSpec(channels="mix"))
    np.testing.assert_array_equal(first[1].waveform, data[0, 100:200])
    np.testing.assert_array_equal(mix[1].waveform, (data[0, 100:200] + data[1, 100:200]) / 2)
    assert first[1].key != mix[1].key  # so cached stages never mix the two rules up
    with pytest.raises(ValueError):
        AudioSpec(channels="left")  # type: ignore[arg-type]


def test_window_and_offset_cut_each_frames_second() -> None:
    sr = 100
    wave = np.arange(500, dtype=np.float32)  # 5 s
    ts = [i + 15 / 16 for i in range(5)]  # AVSBench: frame i near the end of second i
    default = clip_windows(wave, sr, ts, AudioSpec())
    assert [w.start for w in default] == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(default[2].waveform, wave[200:300])
    # the default spec is the 1-s window of before: second i for frame i
    for a, b in zip(default, frame_windows(wave, sr, ts), strict=True):
        np.testing.assert_array_equal(a.waveform, b.waveform)
    paper = clip_windows(wave, sr, ts, AudioSpec(window=0.96))
    assert [len(w.waveform) for w in paper] == [96] * 5
    for i, w in enumerate(paper):  # the first 960 ms of second i, never the next second
        np.testing.assert_array_equal(w.waveform, wave[100 * i : 100 * i + 96])
        assert (w.start, w.end) == pytest.approx((i, i + 0.96))
    shifted = clip_windows(wave, sr, ts, AudioSpec(window=0.5, offset=0.25))
    np.testing.assert_array_equal(shifted[1].waveform, wave[125:175])
    assert (shifted[1].start, shifted[1].end) == pytest.approx((1.25, 1.75))
    # past the end: the last window that fits, at the same place in its second
    late = clip_windows(wave[:420], sr, ts, AudioSpec(window=0.96, offset=0.02))
    np.testing.assert_array_equal(late[4].waveform, wave[302:398])
    np.testing.assert_array_equal(late[3].waveform, wave[302:398])
    # no full window at all: cut from the offset, zero-padded
    short = clip_windows(wave[:50], sr, [0.9], AudioSpec(window=0.96, offset=0.1))
    assert len(short[0].waveform) == 96
    np.testing.assert_array_equal(short[0].waveform[:40], wave[10:50])
    assert not short[0].waveform[40:].any()


def test_resamplers_are_the_upstream_ones() -> None:
    torch = requires("torch")
    torchaudio = requires("torchaudio")
    librosa = requires("librosa")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(44100).astype(np.float32) * 0.1
    ta = resample(x, 44100, 16000, "torchaudio")
    np.testing.assert_array_equal(ta, torchaudio.functional.resample(torch.from_numpy(x)[None], 44100, 16000)[0].numpy())
    sx = resample(x, 44100, 16000, "soxr_hq")
    np.testing.assert_array_equal(sx, librosa.resample(x, orig_sr=44100, target_sr=16000))
    poly = resample(x, 44100, 16000)
    assert len(ta) == len(sx) == len(poly) == 16000 and ta.dtype == sx.dtype == np.float32
    assert np.abs(ta - poly).max() > 1e-3 and np.abs(sx - poly).max() > 1e-3  # three different filters
    np.testing.assert_array_equal(resample(x, 16000, 16000, "soxr_hq"), x)
    assert len(resample(x[:0], 44100, 16000, "torchaudio")) == 0


def test_resampling_with_torch_is_the_torch_resampler() -> None:
    """``method="torchaudio"`` (ImageBind's and AST's loaders): torchaudio's filter, one batch row out.
    Last in the file: the only audio-window test that imports torch (``make mutants`` reaches it last)."""
    torch = requires("torch")
    ta = requires("torchaudio")
    x = np.random.default_rng(3).standard_normal(300).astype(np.float32)
    y = resample(x, 8000, 16000, "torchaudio")
    want = ta.functional.resample(torch.from_numpy(x)[None], 8000, 16000)[0].numpy()
    assert y.dtype == np.float32 and y.shape == (600,) and y.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(y, want)
