"""Checks on decoded audio and frame times, applied by every reader and to in-memory inputs
(``avseg.load(...)((frames, (wave, sr)))``) alike: what is repaired is also said.

- a sample rate outside :data:`MIN_SAMPLE_RATE`..:data:`MAX_SAMPLE_RATE` Hz, complex samples, and
  timestamps that are NaN, infinite or negative are refused (:class:`~avseg.errors.InputError`);
- NaN or infinite samples (a broken encoder, a float WAV written from a failed computation)
  become silence (0.0); otherwise every audio score of the frames that hear them is lost;
- audio with no samples, or so short that the last frame's one-second window lies wholly past
  its end, is used as it is (such frames hear its last full window, or silence; see
  :func:`avseg.audio.frame_windows`).

Each case adds one line to the clip's ``meta["warnings"]``, which ``run.json`` and
``metrics.json`` save and the CLI prints once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from avseg.errors import InputError
from avseg.types import FloatArray

#: accepted audio sample rates (Hz): the range real recordings use; a rate far above it only
#: asks the resamplers for an impossible amount of memory
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000

Loader = Callable[[], tuple[FloatArray, int]]


def n_samples(wave: np.ndarray) -> int:
    """Samples per channel of a mono (N,) or a (channels, N) waveform (the ``Clip.audio`` layout)."""
    return int(wave.shape[-1]) if wave.ndim else 0


def check_sample_rate(sr: Any, source: str) -> int:
    """``sr`` as an int when it is a whole number of Hz within the accepted range."""
    ok = not isinstance(sr, bool) and isinstance(sr, (int, float, np.integer, np.floating))
    if ok and (not math.isfinite(float(sr)) or float(sr) != int(sr)):
        ok = False
    if not ok or not MIN_SAMPLE_RATE <= int(sr) <= MAX_SAMPLE_RATE:
        raise InputError(f"{source}: sample rate {sr!r}: expected a whole number of Hz from {MIN_SAMPLE_RATE:,} "
                         f"to {MAX_SAMPLE_RATE:,}")
    return int(sr)


def check_timestamps(timestamps: Any, source: str) -> list[float]:
    """Frame times (s) as floats: each finite and >= 0 (later than the audio is a warning of
    :func:`check_audio`, as for files)."""
    try:
        ts = [float(t) for t in timestamps]
    except (TypeError, ValueError):
        raise InputError(f"{source}: timestamps must be numbers (seconds), got {timestamps!r:.80}") from None
    bad = next((i for i, t in enumerate(ts) if not math.isfinite(t) or t < 0), None)
    if bad is not None:
        raise InputError(f"{source}: timestamp {bad} is {ts[bad]}; expected a finite time >= 0 (seconds)")
    return ts


def check_audio(wave: FloatArray, sr: int, source: str, timestamps: Sequence[float],
                warnings: list[str]) -> tuple[FloatArray, int]:
    """``wave`` with non-finite samples silenced; appends a line to ``warnings`` per problem.
    A complex waveform or a sample rate out of range is refused (:class:`InputError`)."""
    arr = np.asarray(wave)
    if arr.dtype.kind == "c":
        raise InputError(f"{source}: the audio samples are complex numbers; pass real samples (e.g. wave.real)")
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{source}: the audio samples are {arr.dtype}, not numbers")
    sr = check_sample_rate(sr, source)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - np.count_nonzero(finite))
        arr = np.where(finite, arr, 0.0).astype(arr.dtype if arr.dtype.kind == "f" else np.float32)
        warnings.append(f"{source}: {bad} NaN or infinite audio samples replaced by silence")
    n = n_samples(arr)
    last = max((float(t) for t in timestamps), default=0.0)
    if n == 0:
        warnings.append(f"{source}: the audio has no samples; every frame hears silence")
    elif sr > 0 and math.floor(last) >= n / sr:  # the last frame's 1 s window lies wholly past the end
        warnings.append(f"{source}: the audio lasts {n / sr:.2f} s but the last frame is at {last:.2f} s; "
                        "later frames hear the last full window (or silence)")
    return arr, sr


def checked(loader: Loader, source: str, timestamps: Sequence[float], meta: dict[str, Any]) -> Loader:
    """Wrap an audio loader so that its result goes through :func:`check_audio` (warnings into
    ``meta["warnings"]``, each said once however often the audio is loaded)."""

    def load() -> tuple[FloatArray, int]:
        wave, sr = loader()
        found: list[str] = []
        wave, sr = check_audio(wave, sr, source, timestamps, found)
        warnings = meta.setdefault("warnings", [])
        warnings.extend(w for w in found if w not in warnings)
        return wave, sr

    return load
