"""Audio loading, channels, resampling and per-frame windows: the one audio preparation.

Files are read keeping their channels: ``(channels, samples)`` ``float32`` at the file's own
rate. :func:`clip_windows` applies the pipeline's :class:`AudioSpec` (the channel rule, then
each frame's window); every tagger and embedder then gets its model's rate and length from
:func:`window_at` with the resampler its upstream uses (:data:`Resampler`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from avseg.errors import InputError, one_line
from avseg.types import AudioWindow, FloatArray

PadMode = Literal["repeat", "zero"]
ChannelRule = Literal["first", "mix"]
#: ``polyphase``: scipy ``resample_poly``; ``torchaudio``: ``torchaudio.functional.resample``
#: with its defaults (ImageBind's loader, transformers' audio pipelines); ``soxr_hq``:
#: ``librosa.resample``'s default (``librosa.load(sr=...)``, used by PANNs' and LAION-CLAP's code).
Resampler = Literal["polyphase", "torchaudio", "soxr_hq"]

#: the longest audio window and offset (s) a pipeline may ask for: every frame's window is held
#: in memory at the audio's rate (a 1e9 s window would ask numpy for terabytes)
MAX_WINDOW = 60.0

_SOUNDFILE_EXTS = {".wav", ".flac", ".ogg", ".aiff", ".aif"}


def as_channels(data: np.ndarray) -> FloatArray:
    """A waveform as C-contiguous float32 ``(channels, samples)``; a 1-D array is one channel.
    No channel at all (``(0, n)``) is refused: its mean would be NaN audio."""
    a = np.asarray(data, dtype=np.float32)
    if a.ndim <= 1:
        a = a.reshape(1, -1)
    elif a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"audio must be (channels, samples), got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def to_mono(data: np.ndarray, channels: ChannelRule = "mix") -> FloatArray:
    """``(channels, samples)`` (or 1-D) -> mono: the first channel, or the mean of all channels.

    ``first`` is what ImageBind's loader and AST's authors give their models (``kaldi.fbank``
    reads channel 0 of a ``torchaudio.load`` result); ``mix`` is ``librosa.load(mono=True)``
    (PANNs, LAION-CLAP): the plain mean, not ffmpeg's downmix matrix.
    """
    a = as_channels(data)
    if channels == "first" or a.shape[0] == 1:
        return np.ascontiguousarray(a[0], dtype=np.float32)
    return np.ascontiguousarray(a.mean(axis=0, dtype=np.float32), dtype=np.float32)


def _load_with_pyav(path: Path) -> tuple[FloatArray, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        # Planar float keeps each channel separate (no ffmpeg downmix): the channel rule is ours.
        resampler = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        rate = int(stream.rate or stream.codec_context.sample_rate)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(len(out.layout.channels), -1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(len(out.layout.channels), -1))
    if not chunks:
        return np.zeros((1, 0), np.float32), rate
    return as_channels(np.concatenate(chunks, axis=1)), rate


def load_audio(path: str | Path) -> tuple[FloatArray, int]:
    """Read an audio file (or a video's audio track) as (float32 ``(channels, samples)``, rate).

    soundfile handles wav/flac/ogg; anything else (mp3, m4a, mp4, ...) goes through PyAV.
    Raises :class:`InputError` naming the file when it is missing or cannot be decoded.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"cannot read audio {p}: file not found")
    if p.suffix.lower() in _SOUNDFILE_EXTS:
        try:
            import soundfile as sf

            data, sr = sf.read(str(p), dtype="float32", always_2d=True)  # (samples, channels)
            return as_channels(data.T), int(sr)
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


def resample(wave: FloatArray, sr_from: int, sr_to: int, method: Resampler = "polyphase") -> FloatArray:
    """Resample a mono waveform with ``method`` (see :data:`Resampler`); float32 out.

    ``polyphase`` falls back to linear interpolation without scipy; ``soxr_hq`` returns
    ``ceil(n * sr_to / sr_from)`` samples as ``librosa.resample`` does.
    """
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if sr_from == sr_to or len(wave) == 0:
        return wave.copy() if len(wave) == 0 else np.ascontiguousarray(wave)
    if sr_from <= 0 or sr_to <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_from} -> {sr_to}")
    if method == "torchaudio":
        import torch
        import torchaudio

        out_t = torchaudio.functional.resample(torch.from_numpy(wave.copy())[None], int(sr_from), int(sr_to))
        return np.ascontiguousarray(out_t[0].numpy(), dtype=np.float32)
    if method == "soxr_hq":
        import soxr

        y = np.asarray(soxr.resample(wave, int(sr_from), int(sr_to), quality="soxr_hq"), dtype=np.float32)
        n = int(np.ceil(len(wave) * float(sr_to) / sr_from))  # librosa's fix_length
        y = y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), np.float32)])
        return np.ascontiguousarray(y, dtype=np.float32)
    g = math.gcd(int(sr_from), int(sr_to))
    up, down = int(sr_to) // g, int(sr_from) // g
    try:
        from scipy.signal import resample_poly
    except ImportError:  # scipy is optional (not a core dependency): linear interpolation
        n_out = int(round(len(wave) * sr_to / sr_from))
        x_new = np.arange(n_out, dtype=np.float64) * (sr_from / sr_to)
        out = np.interp(x_new, np.arange(len(wave), dtype=np.float64), wave.astype(np.float64))
        return out.astype(np.float32)
    out = resample_poly(wave.astype(np.float64), up, down)
    return np.ascontiguousarray(out, dtype=np.float32)


def frame_windows(
    waveform: FloatArray, sr: int, timestamps: Sequence[float], window: float = 1.0, offset: float = 0.0
) -> list[AudioWindow]:
    """The audio window of each frame: a frame sampled at ``t`` lies in second ``k = floor(t)``
    and hears ``[k + offset, k + offset + window)``.

    AVSBench samples frame ``i`` near the end of second ``i`` (t = i + 15/16), so with the
    default 1 s window frame ``i`` hears second ``i``; with ``window=0.96`` (the paper presets,
    VGGish's example length) it hears the first 960 ms of that second.

    Padding follows the official AVSBench preprocessing (``preprocess_s4.py``: when VGGish
    yields fewer than 5 examples the last one is repeated): a window that runs past the end of
    the audio is replaced by the **last full window** of the clip (the same place in the last
    second that holds one). If the clip holds no full window, the window is cut from
    ``offset`` and zero-padded at the end. ``start``/``end`` of each :class:`AudioWindow`
    always report the window the frame asked for. ``waveform`` is mono (see :func:`to_mono`).
    """
    if not 0 < window <= MAX_WINDOW:
        raise ValueError(f"window must be in (0, {MAX_WINDOW:g}] seconds, got {window}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    wave = np.asarray(waveform, dtype=np.float32).reshape(-1)
    win = max(1, int(round(window * sr)))

    def first_sample(k: int) -> int:
        return int(round((k + offset) * sr))

    # the last second whose window ends inside the audio (-1: none does)
    k_last = int(math.floor((len(wave) - win) / sr - offset + 1e-9)) if len(wave) >= win else -1
    while k_last >= 0 and first_sample(k_last) + win > len(wave):
        k_last -= 1
    while k_last >= -1 and first_sample(k_last + 1) + win <= len(wave):  # rounding, either way
        k_last += 1
    out: list[AudioWindow] = []
    for t in timestamps:
        k = max(0, int(math.floor(float(t) + 1e-9)))
        start = first_sample(k)
        if start + win <= len(wave):
            seg = wave[start : start + win]
        elif k_last >= 0:
            seg = wave[first_sample(k_last) : first_sample(k_last) + win]
        else:
            seg = np.zeros(win, np.float32)
            part = wave[first_sample(0) : first_sample(0) + win]
            seg[: len(part)] = part
        out.append(
            AudioWindow(
                waveform=np.ascontiguousarray(seg, dtype=np.float32),
                sample_rate=int(sr),
                start=k + offset,
                end=k + offset + window,
            )
        )
    return out


def window_at(
    window: AudioWindow,
    sr: int,
    pad_to: float,
    pad_mode: PadMode = "repeat",
    min_samples: int = 0,
    resampler: Resampler = "polyphase",
) -> FloatArray:
    """``window`` as a mono float32 waveform at ``sr`` Hz, at least ``pad_to`` seconds long: the
    audio preparation every tagger and embedder uses.

    The waveform is resampled with :func:`resample` (``resampler``: the one the model's upstream
    code uses) when its rate differs from ``sr``. When it is
    shorter than ``ceil(pad_to * sr)`` samples (and at least ``min_samples``), ``pad_mode="repeat"``
    tiles it and cuts at that length, ``"zero"`` appends silence; an empty window becomes silence.
    Longer windows are returned whole. The result is C-contiguous.
    """
    wave = np.asarray(window.waveform, dtype=np.float32).reshape(-1)
    if int(window.sample_rate) != sr and len(wave):
        wave = resample(wave, int(window.sample_rate), sr, resampler)
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
    same audio: ``channels`` turns the clip's channels into one (:func:`to_mono`), then frame
    ``i`` sampled in second ``k`` hears ``[k + offset, k + offset + window)``
    (:func:`frame_windows`). The paper presets use ``{window: 0.96, channels: first}``.
    """

    model_config = ConfigDict(extra="forbid")

    window: float = Field(default=1.0, gt=0.0, le=MAX_WINDOW, allow_inf_nan=False, description="window length (seconds)")
    offset: float = Field(default=0.0, ge=0.0, le=MAX_WINDOW, allow_inf_nan=False,
                          description="window start offset (seconds)")
    channels: ChannelRule = Field(default="mix", description="stereo to mono: first channel, or the mean")
    #: off-screen noise mixed into every clip before anything hears it (avseg/noise.py)
    noise: str | None = Field(default=None, description="white, pink or an audio file; needs snr")
    snr: float | None = Field(default=None, allow_inf_nan=False, ge=-60.0, le=120.0,
                              description="signal-to-noise ratio (dB) of the mixed noise, over the clip")
    noise_seed: int = Field(default=0, description="seed of the noise (with the clip id)")

    @model_serializer(mode="wrap")
    def _without_unset_noise(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a spec without noise dumps exactly as before the noise fields existed (frozen plans, cache keys)
        data: dict[str, Any] = handler(self)
        if self.noise is None:
            for k in ("noise", "snr", "noise_seed"):
                data.pop(k, None)
        return data

    @model_validator(mode="after")
    def _noise_needs_snr(self) -> AudioSpec:
        if (self.noise is None) != (self.snr is None):
            raise ValueError("noise and snr go together: give both (e.g. noise: white, snr: 10) or neither")
        return self


def clip_windows(
    waveform: FloatArray, sr: int, timestamps: Sequence[float], spec: AudioSpec | None = None
) -> list[AudioWindow]:
    """Every frame's audio window under the pipeline's :class:`AudioSpec` (the pipeline calls this).

    ``waveform`` is a clip's audio, ``(channels, samples)`` or mono 1-D (see ``Clip.audio``).
    """
    spec = spec or AudioSpec()
    return frame_windows(to_mono(waveform, spec.channels), sr, timestamps, window=spec.window, offset=spec.offset)
