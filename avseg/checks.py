"""Checks of numeric options, run before anything is loaded or decoded (one-line UsageErrors)."""

from __future__ import annotations

import math

from avseg.errors import UsageError

#: sampling rates outside this range are refused: below it a clip is one frame sampled long
#: after its end, above it a short video becomes millions of frames
MIN_FPS, MAX_FPS = 0.01, 240.0


def check_fps(fps: float) -> float:
    if not isinstance(fps, int | float) or not math.isfinite(fps) or not MIN_FPS <= fps <= MAX_FPS:
        raise UsageError(f"--fps {fps}: expected a number from {MIN_FPS:g} to {MAX_FPS:g} (frames sampled per second)")
    return float(fps)


def check_batch_videos(n: int) -> int:
    if n < 1:
        raise UsageError(f"--batch-videos {n}: expected at least 1 (videos per batch of the official F-score)")
    return n


def check_limit(limit: int | None) -> int | None:
    if limit is not None and limit < 1:
        raise UsageError(f"--limit {limit}: expected at least 1 clip")
    return limit


#: GPUs one Ray worker may ask for: fractions share a GPU; above 1, Ray wants whole GPUs
MAX_GPUS_PER_WORKER = 64


def check_gpus_per_worker(gpus: float | None) -> float | None:
    """A finite share from 0 to :data:`MAX_GPUS_PER_WORKER`, whole above 1 (NaN or inf would
    pass ``< 0`` and then wait forever for a worker no node can hold)."""
    if gpus is None:
        return None
    ok = isinstance(gpus, int | float) and not isinstance(gpus, bool) and math.isfinite(gpus)
    if not ok or not 0 <= gpus <= MAX_GPUS_PER_WORKER or (gpus > 1 and gpus != int(gpus)):
        raise UsageError(f"--gpus-per-worker {gpus}: expected a number from 0 to {MAX_GPUS_PER_WORKER} "
                         "(fractions up to 1 share a GPU; above 1, whole GPUs)")
    return float(gpus)
