"""Read a video file as a :class:`Clip`, and write frames plus audio back to an mp4.

Frame sampling follows AVSBench (``preprocess_s4.py`` keeps, for second ``i``, frame
``int(i*fps + 15/16*fps)``): at ``fps`` samples per second, frame ``i`` is the last decoded
frame whose time is <= ``(i + 15/16) / fps``, i.e. near the end of interval ``i``. The clip has
``round(duration * fps)`` frames (at least 1); targets past the end use the last frame, as the
official script clamps to the last frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from avseg.checks import check_fps
from avseg.data import audiocheck
from avseg.data.images import MAX_SIDE
from avseg.data.timing import FRAME_OFFSET
from avseg.errors import InputError, one_line
from avseg.types import Clip, FloatArray, FullRateVideo, Image

SILENCE_RATE = 16000


def _stream_time(stream: Any, pts: int | None) -> float | None:
    if pts is None:
        return None
    start = stream.start_time or 0
    return float((pts - start) * stream.time_base)


def _timed_frames(container: Any) -> Iterator[tuple[Any, float]]:
    """Each decoded frame of the first video stream with its time (s); a frame without a pts
    gets a time just after the previous one, so times stay increasing."""
    stream = container.streams.video[0]
    last: float | None = None
    for frame in container.decode(stream):
        t = _stream_time(stream, frame.pts)
        if t is None:
            t = last + 1e-6 if last is not None else 0.0
        last = t
        yield frame, t


def _duration(container: Any) -> float:
    """Clip length in seconds from the container, else the video stream."""
    if container.duration:
        return float(container.duration) / 1_000_000.0
    vs = container.streams.video[0]
    if vs.duration and vs.time_base:
        return float(vs.duration * vs.time_base)
    if vs.frames and vs.average_rate:
        return float(vs.frames / vs.average_rate)
    return 0.0


def _decode_frames(path: Path, targets: Sequence[float]) -> tuple[list[Image], list[float]]:
    """Decode once, keeping for each target time the last frame at or before it."""
    import av

    chosen: list[Any] = [None] * len(targets)
    times: list[float] = [0.0] * len(targets)
    prev: tuple[Any, float] | None = None
    k = 0
    try:
        with av.open(str(path)) as container:
            for frame, t in _timed_frames(container):
                while k < len(targets) and t > targets[k] + 1e-6:
                    # The previous frame is the last one at or before the target.
                    src = prev if prev is not None else (frame, t)
                    chosen[k] = src[0].to_ndarray(format="rgb24")
                    times[k] = src[1]
                    k += 1
                if k >= len(targets):
                    break
                prev = (frame, t)
            while k < len(targets) and prev is not None:  # targets past the last frame
                chosen[k] = prev[0].to_ndarray(format="rgb24")
                times[k] = prev[1]
                k += 1
    except Exception as exc:
        raise InputError(f"cannot read video {path}: {one_line(exc, with_type=False)}") from exc
    if any(c is None for c in chosen):
        raise InputError(f"cannot read video {path}: no decodable video frames")
    return [np.ascontiguousarray(c, dtype=np.uint8) for c in chosen if c is not None], times


#: the most bytes of RGB frames a full-rate decode may hold (about 4 min of 320x240 at 25 fps)
MAX_VIDEO_BYTES = 2_000_000_000


def decode_all(path: Path) -> FullRateVideo:
    """Every frame of the video stream, RGB, with its time (s): one decode of the file."""
    import av

    frames: list[Image] = []
    times: list[float] = []
    total = 0
    try:
        with av.open(str(path)) as container:
            for frame, t in _timed_frames(container):
                arr = np.ascontiguousarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                total += arr.nbytes
                if total > MAX_VIDEO_BYTES:
                    raise InputError(f"video {path} is too long to hold at its full frame rate "
                                     f"(> {MAX_VIDEO_BYTES // 1_000_000} MB of frames); cut it first")
                frames.append(arr)
                times.append(t)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read video {path}: {one_line(exc, with_type=False)}") from exc
    if not frames:
        raise InputError(f"cannot read video {path}: no decodable video frames")
    return FullRateVideo(frames, times)


def pick_frames(video: FullRateVideo, targets: Sequence[float]) -> tuple[list[Image], list[float]]:
    """The sampled frames from a full-rate decode, by the rule of :func:`_decode_frames`."""
    idx = [video.index_at(t) for t in targets]
    return [video.frames[k] for k in idx], [video.times[k] for k in idx]


def _decode_audio(path: Path) -> tuple[FloatArray, int]:
    from avseg.audio import load_audio

    return load_audio(path)


def read_video(path: str | Path, fps: float = 1.0) -> Clip:
    """Open a video lazily: the file is probed now, frames and audio are decoded on first use.

    Audio of any rate keeps its channels: float32 ``(channels, samples)`` at the file's rate. A video with
    no audio stream gets silence (16 kHz) and a note in ``clip.meta['warnings']``.
    """
    import av

    p = Path(path)
    check_fps(fps)
    if not p.is_file():
        raise InputError(f"cannot read video {p}: file not found")
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise InputError(f"cannot read video {p}: no video stream")
            duration = _duration(container)
            has_audio = bool(container.streams.audio)
            vstream = container.streams.video[0]
            native_fps = float(vstream.average_rate) if vstream.average_rate else None
            width, height = vstream.codec_context.width, vstream.codec_context.height
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read video {p}: {one_line(exc, with_type=False)}") from exc
    if max(width or 0, height or 0) > MAX_SIDE:
        raise InputError(f"video {p} is {width}x{height}; the largest accepted side is {MAX_SIDE} px "
                         "(downscale it first)")

    n = max(1, int(round(duration * fps)))
    targets = [(i + FRAME_OFFSET) / fps for i in range(n)]
    meta: dict[str, Any] = {
        "source": str(p),
        "duration": duration,
        "fps": fps,
        "native_fps": native_fps,
        "size": (width, height),
        "warnings": [],
    }
    cache: dict[str, Any] = {}

    def frame_loader(i: int) -> Image:
        if not 0 <= i < n:
            raise IndexError(f"frame {i} out of range for {p.name} ({n} frames)")
        if "frames" not in cache:
            # the full-rate decode, when a component already asked for it, holds the sampled frames
            frames, times = pick_frames(cache["video"], targets) if "video" in cache else _decode_frames(p, targets)
            cache["frames"] = frames
            meta["frame_times"] = times
        frames_list: list[Image] = cache["frames"]
        return frames_list[i]

    def video_loader() -> FullRateVideo:
        if "video" not in cache:
            cache["video"] = decode_all(p)
        video: FullRateVideo = cache["video"]
        return video

    if has_audio:

        def audio_loader() -> tuple[FloatArray, int]:
            return _decode_audio(p)

    else:
        meta["warnings"].append(f"{p.name} has no audio stream; using silence")
        n_samples = int(math.ceil(max(duration, n / fps) * SILENCE_RATE))

        def audio_loader() -> tuple[FloatArray, int]:
            return np.zeros(n_samples, np.float32), SILENCE_RATE

    return Clip(
        clip_id=p.stem,
        timestamps=targets,
        audio_loader=audiocheck.checked(audio_loader, p.name, targets, meta),
        frame_loader=frame_loader,
        meta=meta,
        video_loader=video_loader,
    )


def _even(frame: Image) -> Image:
    """yuv420p needs even sides: repeat the last row/column when odd."""
    h, w = frame.shape[:2]
    if h % 2:
        frame = np.concatenate([frame, frame[-1:]], axis=0)
    if w % 2:
        frame = np.concatenate([frame, frame[:, -1:]], axis=1)
    return np.ascontiguousarray(frame)


def write_overlay_video(
    frames: Sequence[Image],
    fps: float,
    audio_waveform: FloatArray | None,
    sr: int,
    out_path: str | Path,
) -> Path:
    """Write RGB frames as an mp4 (h264 when libx264 exists, else mpeg4) with the audio muxed as AAC.

    ``fps`` may be fractional (1 fps overlays of AVSBench frames are fine). Pass
    ``audio_waveform=None`` for a silent video.
    """
    import av

    if not frames:
        raise ValueError("write_overlay_video: no frames")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    first = _even(np.asarray(frames[0], dtype=np.uint8))
    h, w = first.shape[:2]
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(out), mode="w") as container:
        vs: Any = container.add_stream(codec, rate=rate)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv420p"
        if codec == "libx264":
            vs.options = {"crf": "20", "preset": "veryfast"}
        else:
            vs.bit_rate = 2_000_000
        astream: Any = None
        wave = None
        if audio_waveform is not None and np.asarray(audio_waveform).size > 0:
            wave = np.asarray(audio_waveform, dtype=np.float32)
            wave = wave.mean(axis=0, dtype=np.float32) if wave.ndim == 2 else wave.reshape(-1)  # (channels, samples)
            astream = container.add_stream("aac", rate=int(sr))
            astream.layout = "mono"
        for i, f in enumerate(frames):
            arr = _even(np.asarray(f, dtype=np.uint8)[..., :3])
            if arr.shape[:2] != (h, w):
                raise ValueError(f"write_overlay_video: frame {i} is {arr.shape[:2]}, expected {(h, w)}")
            vf = av.VideoFrame.from_ndarray(arr, format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, 1) / rate
            for packet in vs.encode(vf):
                container.mux(packet)
        for packet in vs.encode(None):
            container.mux(packet)
        if astream is not None and wave is not None:
            chunk = 1024
            for k, s in enumerate(range(0, len(wave), chunk)):
                piece = np.clip(wave[s : s + chunk], -1.0, 1.0).reshape(1, -1)
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="fltp", layout="mono")
                af.sample_rate = int(sr)
                af.pts = k * chunk
                af.time_base = Fraction(1, int(sr))
                for packet in astream.encode(af):
                    container.mux(packet)
            for packet in astream.encode(None):
                container.mux(packet)
    return out
