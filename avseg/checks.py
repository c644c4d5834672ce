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
