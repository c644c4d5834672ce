"""Weights-free audio-visual synchrony: the ``motion`` proposer and the clip-scope ``av-sync`` filter
(docs/av-sync.md). Needs only NumPy and OpenCV, both core dependencies."""

from __future__ import annotations

from avseg.hookspecs import Register, hookimpl


@hookimpl
def register_components(register: Register) -> None:
    from avseg_sync.avsync import AVSync
    from avseg_sync.motion import MotionProposer

    register(MotionProposer)
    register(AVSync)
