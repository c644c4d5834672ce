"""Which samples each frame hears, at the boundaries: the window and offset of ``audio:``, a window
that runs past the end of the clip, padding to a model's length, the channel rule and the
resampled length. Fast (no torch), so that ``make mutants`` can judge avseg/audio.py with it.
A 10 Hz "waveform" whose sample ``i`` has the value ``i`` shows exactly which samples a window took.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from avseg.audio import (
    MAX_WINDOW,
    AudioSpec,
    as_channels,
    clip_windows,
    frame_windows,
    load_audio,
    resample,
    to_mono,
    window_at,
)
from avseg.types import AudioWindow

SR = 10
AVS = [i + 15 / 16 for i in range(5)]  # AVSBench's frame times


def ramp(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float32)


def taken(windows: list[AudioWindow]) -> list[list[int]]:
    return [w.waveform.astype(int).tolist() for w in windows]


def test_each_frame_hears_its_second() -> None:
    ws = frame_windows(ramp(50), SR, AVS)
    assert taken(ws) == [list(range(10 * i, 10 * i + 10)) for i in range(5)]
    assert [(w.start, w.end, w.sample_rate) for w in ws] == [(i, i + 1, SR) for i in range(5)]


def test_window_and_offset() -> None:
    ws = frame_windows(ramp(50), SR, AVS[:2], window=0.5, offset=0.2)
    assert taken(ws) == [[2, 3, 4, 5, 6], [12, 13, 14, 15, 16]]
    assert [(w.start, w.end) for w in ws] == [(0.2, 0.7), (1.2, pytest.approx(1.7))]


@pytest.mark.parametrize(("t", "k"), [(2.0, 2), (2.5, 2), (2.999, 2), (-0.5, 0), (2 - 1e-12, 2)])
def test_a_frame_time_falls_in_its_second(t: float, k: int) -> None:
    assert taken(frame_windows(ramp(50), SR, [t])) == [list(range(10 * k, 10 * k + 10))]


def test_a_window_past_the_end_is_the_last_full_window() -> None:
    ws = frame_windows(ramp(45), SR, AVS)  # 4.5 s: second 4 is not whole
    assert taken(ws)[3:] == [list(range(30, 40))] * 2
    assert (ws[4].start, ws[4].end) == (4, 5)  # the window the frame asked for
    # with an offset, the last full window is at the same place in an earlier second
    ws = frame_windows(ramp(50), SR, AVS, window=0.5, offset=0.6)
    assert taken(ws) == [[6, 7, 8, 9, 10], [16, 17, 18, 19, 20], [26, 27, 28, 29, 30], [36, 37, 38, 39, 40],
                         [36, 37, 38, 39, 40]]
    # exactly long enough: the last window is its own
    assert taken(frame_windows(ramp(50), SR, AVS, window=0.5, offset=0.5))[4] == [45, 46, 47, 48, 49]


def test_a_clip_shorter_than_a_window_is_zero_padded() -> None:
    assert taken(frame_windows(ramp(7), SR, AVS[:2])) == [[0, 1, 2, 3, 4, 5, 6, 0, 0, 0]] * 2
    assert taken(frame_windows(ramp(7), SR, [0.5], offset=0.2)) == [[2, 3, 4, 5, 6, 0, 0, 0, 0, 0]]
    assert taken(frame_windows(ramp(0), SR, [0.5])) == [[0] * 10]


def test_a_window_shorter_than_a_sample_is_one_sample() -> None:
    assert taken(frame_windows(ramp(50), SR, [1.5], window=0.01)) == [[10]]


@pytest.mark.parametrize(("window", "offset", "message"), [
    (0.0, 0.0, f"window must be in (0, {MAX_WINDOW:g}] seconds, got 0.0"),
    (MAX_WINDOW + 0.5, 0.0, f"window must be in (0, {MAX_WINDOW:g}] seconds, got 60.5"),
    (-1.0, 0.0, f"window must be in (0, {MAX_WINDOW:g}] seconds, got -1.0"),
    (1.0, -0.1, "offset must be >= 0, got -0.1"),
])
def test_window_bounds(window: float, offset: float, message: str) -> None:
    with pytest.raises(ValueError) as e:
        frame_windows(ramp(50), SR, [0.5], window=window, offset=offset)
    assert str(e.value) == message


def test_the_longest_window_is_accepted() -> None:
    [w] = frame_windows(ramp(50), 1, [0.5], window=MAX_WINDOW)
    assert len(w.waveform) == 60 and w.waveform[:50].tolist() == list(range(50))


# -- a model's length and rate -------------------------------------------------------------------
def win(values: np.ndarray, sr: int = SR) -> AudioWindow:
    return AudioWindow(waveform=values, sample_rate=sr, start=0.0, end=1.0)


def test_padding_to_a_models_length() -> None:
    assert window_at(win(ramp(10)), SR, 1.5).astype(int).tolist() == [*range(10), *range(5)]
    assert window_at(win(ramp(4)), SR, 1.0).astype(int).tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert window_at(win(ramp(10)), SR, 1.5, "zero").astype(int).tolist() == [*range(10), 0, 0, 0, 0, 0]
    assert window_at(win(ramp(10)), SR, 1.0).astype(int).tolist() == list(range(10))  # exactly long enough
    assert window_at(win(ramp(10)), SR, 0.5).astype(int).tolist() == list(range(10))  # longer: whole
    assert window_at(win(ramp(10)), SR, 1.0, min_samples=12).astype(int).tolist() == [*range(10), 0, 1]
    assert window_at(win(ramp(0)), SR, 0.3).tolist() == [0.0, 0.0, 0.0]  # empty: silence
    out = window_at(win(ramp(10)), SR, 1.5)
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]


def test_a_window_is_resampled_to_the_models_rate() -> None:
    t = np.arange(200) / 200
    sine = np.sin(2 * np.pi * 3 * t).astype(np.float32)
    out = window_at(win(sine, 200), 100, 1.0)
    assert len(out) == 100
    np.testing.assert_allclose(out[10:90], np.sin(2 * np.pi * 3 * np.arange(100) / 100)[10:90], atol=0.02)


@pytest.mark.parametrize("method", ["polyphase", "soxr_hq"])
def test_resampled_lengths_and_content(method: str) -> None:
    x = np.sin(2 * np.pi * 5 * np.arange(4410) / 4410).astype(np.float32)
    y = resample(x, 4410, 1600, method)
    assert len(y) == 1600 and y.dtype == np.float32
    np.testing.assert_allclose(y[100:1500], np.sin(2 * np.pi * 5 * np.arange(1600) / 1600)[100:1500], atol=0.02)
    if method == "soxr_hq":  # librosa's length: ceil(n * to / from)
        assert len(resample(x[:4409], 4410, 1600, method)) == int(np.ceil(4409 * 1600 / 4410))
        assert len(resample(np.ones(4411, np.float32), 4410, 1600, method)) == 1601


def test_resampling_to_the_same_rate_or_of_nothing() -> None:
    x = ramp(7)
    assert resample(x, 16000, 16000).tolist() == x.tolist()
    assert len(resample(x[:0], 16000, 8000)) == 0
    for bad in ((0, 16000), (16000, 0), (-5, 16000)):
        with pytest.raises(ValueError, match=rf"sample rates must be positive, got {bad[0]} -> {bad[1]}"):
            resample(x, *bad)


# -- channels ------------------------------------------------------------------------------------
def test_channel_rule_and_shapes() -> None:
    stereo = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 8.0]], np.float32)
    assert to_mono(stereo, "first").tolist() == [1.0, 2.0, 3.0]
    assert to_mono(stereo, "mix").tolist() == [2.0, 3.0, 5.5]
    assert to_mono(stereo[:1], "mix").tolist() == [1.0, 2.0, 3.0]
    assert to_mono(np.array([1.0, 2.0])).tolist() == [1.0, 2.0]
    assert as_channels(np.array([1.0, 2.0])).shape == (1, 2)
    assert as_channels(np.float32(3.0)).shape == (1, 1)
    assert as_channels(stereo).shape == (2, 3)
    with pytest.raises(ValueError, match=r"audio must be \(channels, samples\), got shape \(1, 2, 3\)"):
        as_channels(np.zeros((1, 2, 3)))


def test_clip_windows_apply_the_spec() -> None:
    stereo = np.stack([ramp(50), ramp(50) + 100])
    assert taken(clip_windows(stereo, SR, AVS[:1], AudioSpec(window=0.3, offset=0.1, channels="first"))) == [[1, 2, 3]]
    assert taken(clip_windows(stereo, SR, AVS[1:2], AudioSpec(window=0.2, channels="mix"))) == [[60, 61]]
    assert taken(clip_windows(ramp(50), SR, AVS[2:3])) == [list(range(20, 30))]  # default: 1 s, mixed


@pytest.mark.parametrize(("fields", "ok"), [
    ({"window": MAX_WINDOW}, True), ({"window": 0.0}, False), ({"window": MAX_WINDOW + 0.1}, False),
    ({"offset": 0.0}, True), ({"offset": MAX_WINDOW}, True), ({"offset": -0.1}, False),
    ({"offset": MAX_WINDOW + 0.1}, False), ({"window": float("nan")}, False),
    ({"noise": "white", "snr": -60.0}, True), ({"noise": "white", "snr": 120.0}, True),
    ({"noise": "white", "snr": -60.5}, False), ({"noise": "white", "snr": 120.5}, False),
    ({"noise": "white"}, False), ({"snr": 10.0}, False),
])
def test_audio_spec_bounds(fields: dict[str, object], ok: bool) -> None:
    if ok:
        AudioSpec(**fields)  # type: ignore[arg-type]
    else:
        with pytest.raises(ValidationError):
            AudioSpec(**fields)  # type: ignore[arg-type]


def test_a_spec_without_noise_dumps_without_its_fields() -> None:
    assert AudioSpec().model_dump() == {"window": 1.0, "offset": 0.0, "channels": "mix"}
    assert AudioSpec(noise="pink", snr=3.0).model_dump()["noise_seed"] == 0


def test_the_last_full_window_counts_a_window_the_rounding_allows() -> None:
    """With an offset of 0.04 s at 10 Hz, second 1 starts at sample 10 (rounded) and ends exactly at
    the end of 20 samples: it is the last full window, although (20 - 10) / 10 - 0.04 < 1."""
    ws = frame_windows(ramp(20), SR, [0.5, 1.5, 2.5], offset=0.04)
    assert taken(ws) == [list(range(10)), list(range(10, 20)), list(range(10, 20))]


def write_mka(path: Path, tracks: list[tuple[int, int]], n: int = 1600, rate: int = 8000) -> None:
    """A Matroska file (read through PyAV, not soundfile) with one stereo PCM track per (left, right)
    value pair."""
    import av

    with av.open(str(path), "w", format="matroska") as c:
        streams = [c.add_stream("pcm_s16le", rate=rate, layout="stereo") for _ in tracks]
        for s, (left, right) in zip(streams, tracks):
            pcm = np.empty((1, 2 * n), np.int16)
            pcm[0, 0::2], pcm[0, 1::2] = left, right  # packed: left, right, left, right, ...
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
            frame.rate = rate
            for packet in [*s.encode(frame), *s.encode(None)]:
                c.mux(packet)


def test_a_compressed_audio_file_keeps_its_channels(tmp_path: Path) -> None:
    path = tmp_path / "a.mka"
    write_mka(path, [(16384, -8192), (0, 0)])  # the second track is never read
    wave, sr = load_audio(path)
    assert sr == 8000 and wave.shape == (2, 1600)
    assert np.allclose(wave[0], 0.5) and np.allclose(wave[1], -0.25)

