"""Checks on decoded audio, applied by every reader: what is repaired is also said.

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

from avseg.types import FloatArray

Loader = Callable[[], tuple[FloatArray, int]]


def n_samples(wave: np.ndarray) -> int:
    """Samples per channel of a mono (N,) or a (channels, N) waveform (the ``Clip.audio`` layout)."""
    return int(wave.shape[-1]) if wave.ndim else 0


def check_audio(wave: FloatArray, sr: int, source: str, timestamps: Sequence[float],
                warnings: list[str]) -> tuple[FloatArray, int]:
    """``wave`` with non-finite samples silenced; appends a line to ``warnings`` per problem."""
    arr = np.asarray(wave)
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
