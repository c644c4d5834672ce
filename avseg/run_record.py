"""What a run records and writes: run.json metadata (versions, steps, timings, counters), each
component's provider, version and source fingerprint, and the `avseg run` output folder."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from avseg import __version__
from avseg.outputs import atomic_write_json, overlay, write_frame_outputs
from avseg.pipeline import Pipeline
from avseg.spec import ResolvedSpec
from avseg.types import Clip, FrameResult

Progress = Callable[[str, int, int], None]


def component_versions(spec: ResolvedSpec) -> dict[str, dict[str, str]]:
    """Who made each stage's output: provider, version and source fingerprint, by "kind:name"."""
    stages = spec.steps + ([spec.combiner] if spec.combiner is not None else [])
    return {f"{s.kind}:{s.name}": s.identity() for s in stages}


def run_metadata(pipeline: Pipeline, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What run.json and metrics.json record about how results were made."""
    rt = pipeline.runtime
    meta: dict[str, Any] = {
        "avseg_version": __version__,
        "python": platform.python_version(),
        "config": pipeline.spec.as_dict(),
        "steps": pipeline.spec.step_names(),
        "components": component_versions(pipeline.spec),
        "weights": {f"{s.kind}:{s.name}": c.weights_used() for s, c in zip(
            pipeline.spec.steps, pipeline.components())},
        "device": rt.resolved_device(),
        "dtype": rt.dtype,
        "tiny": rt.tiny,
        "weights_mode": rt.weights_mode,
        "timings": {k: round(v, 4) for k, v in sorted(rt.timings.items())},
        "counters": dict(sorted(rt.counters.items())),
        "cache_dir": str(rt.cache.root) if rt.cache is not None else None,
        "warnings": list(pipeline.spec.warnings),
    }
    torch = sys.modules.get("torch")  # only recorded when a model plugin already imported it (never imported here)
    if torch is not None:
        meta["torch_version"] = getattr(torch, "__version__", "?")
    meta.update(extra or {})
    return meta


def write_run_dir(out_dir: Path, clip: Clip, frames: Sequence[FrameResult], meta: dict[str, Any], *,
                  debug: bool = False, video_fps: float | None = None, wall_time: float = 0.0) -> dict[str, Any]:
    """What ``avseg run`` and ``Result.save`` write: masks/, overlays/, (debug/), overlay.mp4 for a
    video, and run.json (``meta`` from :func:`run_metadata` plus per-frame records); returns run.json."""
    stems = [f"{i:05d}" for i in range(len(frames))]
    for stem, fr in zip(stems, frames):
        write_frame_outputs(out_dir, stem, clip.frame(fr.index), fr, debug=debug)
    video = None
    if video_fps is not None:
        from avseg.data.video import write_overlay_video

        wave, sr = clip.audio
        video = out_dir / "overlay.mp4"
        write_overlay_video([overlay(clip.frame(fr.index), fr) for fr in frames], video_fps, wave, sr, video)
    frames_meta = [
        {"frame": fr.index, "time": clip.timestamps[fr.index], "kept": len(fr.kept),
         "labels": fr.labels, "mask_pixels": int(fr.mask.sum()),
         "tags": (dict(list(fr.tags.as_dict().items())[:10]) if fr.tags is not None else None)}
        for fr in frames
    ]
    meta = {**meta, "n_frames": len(frames), "frames": frames_meta, "overlay_video": str(video) if video else None,
            "wall_time": round(wall_time, 4)}
    meta["warnings"] = list(meta.get("warnings", [])) + [w for w in clip.meta.get("warnings", [])
                                                         if w not in meta.get("warnings", [])]
    atomic_write_json(out_dir / "run.json", meta)
    return meta
