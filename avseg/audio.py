"""Audio loading, resampling and per-frame windows.

Everything returns mono ``float32`` waveforms at the file's own rate; models resample to what
they need with :func:`resample`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from avseg.components import ComponentConfig
from avseg.errors import InputError, one_line
from avseg.types import AudioWindow, FloatArray

PadMode = Literal["repeat", "zero"]

_SOUNDFILE_EXTS = {".wav", ".flac", ".ogg", ".aiff", ".aif"}


def _to_mono(data: np.ndarray) -> FloatArray:
    """Average channels; soundfile gives (samples, channels)."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(data.reshape(-1), dtype=np.float32)


def _load_with_pyav(path: Path) -> tuple[FloatArray, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        # Planar float keeps each channel separate so that we average them ourselves
        # (ffmpeg's own downmix applies a -3 dB matrix).
        resampler = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        rate = int(stream.rate or stream.codec_context.sample_rate)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(len(out.layout.channels), -1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(len(out.layout.channels), -1))
    if not chunks:
        return np.zeros(0, np.float32), rate
    data = np.concatenate(chunks, axis=1)
    return np.ascontiguousarray(data.mean(axis=0), dtype=np.float32), rate


def load_audio(path: str | Path) -> tuple[FloatArray, int]:
    """Read an audio file (or a video's audio track) as (mono float32 waveform, sample rate).

    soundfile handles wav/flac/ogg; anything else (mp3, m4a, mp4, ...) goes through PyAV.
    Raises :class:`InputError` naming the file when it is missing or cannot be decoded.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"cannot read audio {p}: file not found")
    if p.suffix.lower() in _SOUNDFILE_EXTS:
        try:
            import soundfile as sf

            data, sr = sf.read(str(p), dtype="float32", always_2d=False)
            return _to_mono(data), int(sr)
        except Exception as exc:  # soundfile raises several types; all mean "unreadable"
            sf_error = exc
        try:  # e.g. a .wav holding a codec libsndfile lacks
            return _load_with_pyav(p)
        except Exception:
            raise InputError(f"cannot read audio {p}: {one_line(sf_error, with_type=False)}") from sf_error
    try:
        return _load_with_pyav(p)
    except Exception as exc:
        raise InputError(f"cannot read audio {p}: {one_line(exc, with_type=False)}") from exc


def resample(wave: FloatArray, sr_from: int, sr_to: int) -> FloatArray:
    """Resample a mono waveform; polyphase filtering (scipy) when available, else linear interpolation."""
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if sr_from == sr_to or len(wave) == 0:
        return wave.copy() if len(wave) == 0 else np.ascontiguousarray(wave)
    if sr_from <= 0 or sr_to <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_from} -> {sr_to}")
    g = math.gcd(int(sr_from), int(sr_to))
    up, down = int(sr_to) // g, int(sr_from) // g
    try:
        from scipy.signal import resample_poly
    except ImportError:  # pragma: no cover - scipy is normally present
        n_out = int(round(len(wave) * sr_to / sr_from))
        x_new = np.arange(n_out, dtype=np.float64) * (sr_from / sr_to)
        out = np.interp(x_new, np.arange(len(wave), dtype=np.float64), wave.astype(np.float64))
        return out.astype(np.float32)
    out = resample_poly(wave.astype(np.float64), up, down)
    return np.ascontiguousarray(out, dtype=np.float32)


def frame_windows(
    waveform: FloatArray, sr: int, timestamps: Sequence[float], window: float = 1.0
) -> list[AudioWindow]:
    """The audio window of each frame: frame ``i`` sampled at ``t`` gets ``[k*window, (k+1)*window)``
    with ``k = floor(t / window)``.

    AVSBench samples frame ``i`` near the end of second ``i`` (t = i + 15/16), so with the
    default 1 s window frame ``i`` hears second ``i``.

    Padding follows the official AVSBench preprocessing (``preprocess_s4.py``: when VGGish
    yields fewer than 5 examples the last one is repeated): a window that runs past the end of
    the audio is replaced by the **last full window** of the clip. If the clip is shorter than
    one window, the whole clip is zero-padded at the end. ``start``/``end`` of each
    :class:`AudioWindow` always report the window the frame asked for.
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    wave = np.asarray(waveform, dtype=np.float32).reshape(-1)
    win = max(1, int(round(window * sr)))
    n_full = len(wave) // win
    out: list[AudioWindow] = []
    for t in timestamps:
        k = max(0, int(math.floor(float(t) / window + 1e-9)))
        start = k * win
        if start + win <= len(wave):
            seg = wave[start : start + win]
        elif n_full > 0:
            seg = wave[(n_full - 1) * win : n_full * win]
        else:
            seg = np.zeros(win, np.float32)
            seg[: len(wave)] = wave
        out.append(
            AudioWindow(
                waveform=np.ascontiguousarray(seg, dtype=np.float32),
                sample_rate=int(sr),
                start=k * window,
                end=(k + 1) * window,
            )
        )
    return out


def window_at(
    window: AudioWindow, sr: int, pad_to: float, pad_mode: PadMode = "repeat", min_samples: int = 0
) -> FloatArray:
    """``window`` as a mono float32 waveform at ``sr`` Hz, at least ``pad_to`` seconds long.

    The waveform is resampled with :func:`resample` when its rate differs from ``sr``. When it is
    shorter than ``ceil(pad_to * sr)`` samples (and at least ``min_samples``), ``pad_mode="repeat"``
    tiles it and cuts at that length, ``"zero"`` appends silence; an empty window becomes silence.
    Longer windows are returned whole. The result is C-contiguous.
    """
    wave = np.asarray(window.waveform, dtype=np.float32).reshape(-1)
    if int(window.sample_rate) != sr and len(wave):
        wave = resample(wave, int(window.sample_rate), sr)
    target = max(int(min_samples), int(math.ceil(pad_to * sr - 1e-6)))
    if len(wave) < target:
        if pad_mode == "repeat" and len(wave):
            wave = np.tile(wave, int(math.ceil(target / len(wave))))[:target]
        else:
            wave = np.concatenate([wave, np.zeros(target - len(wave), np.float32)])
    return np.ascontiguousarray(wave, dtype=np.float32)


class AudioSpec(BaseModel):
    """The spec-level ``audio:`` setting: how each frame's audio window is cut from the clip.

    One value per pipeline, shared by every tagger and embedder, so that all of them hear the
    same audio.
    """

    model_config = ConfigDict(extra="forbid")

    window: float = Field(default=1.0, gt=0.0, allow_inf_nan=False, description="window length (seconds)")
    offset: float = Field(default=0.0, ge=0.0, allow_inf_nan=False, description="window start offset (seconds)")
    channels: Literal["first", "mix"] = Field(default="mix", description="stereo to mono: first channel, or the mean")


def clip_windows(
    waveform: FloatArray, sr: int, timestamps: Sequence[float], spec: AudioSpec | None = None
) -> list[AudioWindow]:
    """Every frame's audio window under the pipeline's :class:`AudioSpec` (the executor calls this)."""
    spec = spec or AudioSpec()
    return frame_windows(waveform, sr, timestamps, window=spec.window)


class WindowConfig(ComponentConfig):
    """Config base of audio-window models: how short windows are padded (see :func:`window_at`)
    and how many windows go through the model at once.

    Subclasses narrow ``pad_to``'s range (and may change its default) by redeclaring it.
    """

    pad_to: float = Field(1.0, ge=0.0, description="pad windows shorter than this (seconds)")
    pad_mode: PadMode = Field("repeat", description="how short windows are padded")
    batch_size: int = Field(16, ge=1, json_schema_extra={"affects_output": False})
