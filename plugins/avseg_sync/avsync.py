"""``av-sync``: keep the objects whose visual change follows the sound (audio-visual synchrony).

No weights. After any proposer (and segmenter), the clip's objects are linked into tracks
across the sampled frames (mask IoU, boxes when there are no masks). For each track, the
visual change inside its region is measured on every frame of the full-rate video (largest
per-channel absolute difference between consecutive blurred frames, inside the track's mask from the nearest
sampled frame, dilated by ``dilate`` px so a growing rim counts); the audio is reduced to the
same rate (RMS energy around each video frame, and its frame-to-frame change, the onset curve).
The track's synchrony is the best Pearson correlation between the two curves over lags of up
to ``max_lag`` seconds either way (Hershey & Movellan 1999; Kidron, Schechner & Elad 2005):
positive when the object changes when the sound does.

``keep: threshold`` keeps the tracks whose synchrony is at least ``threshold``; ``keep: best``
keeps the single best track (the first seen on a tie). Each object's score, lag and both curves
go into the trace (``--debug``), where the debug view plots them.

A clip with no full-rate video (a frames folder) is measured on its sampled frames, which is
coarse; the clip's warnings say so once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from avseg.components import ClipContext, ClipFilter, ComponentConfig
from avseg.types import BoolArray, Drop, FilterResult, FloatArray, FullRateVideo, Proposals
from avseg_sync.motion import _resize_mask, frame_changes


class AVSyncConfig(ComponentConfig):
    threshold: float = Field(0.3, ge=-1.0, le=1.0, description="keep tracks whose synchrony (correlation) is >= this")
    keep: Literal["threshold", "best"] = Field(
        "threshold", description="threshold: every track passing the threshold; best: the single best track")
    max_lag: float = Field(0.2, ge=0.0, le=2.0, description="seconds the picture may lead or lag the sound")
    audio_feature: Literal["onset", "energy"] = Field(
        "onset", description="onset: frame-to-frame change of the audio energy; energy: the RMS energy itself")
    iou_threshold: float = Field(0.3, ge=0.0, le=1.0, description="mask (or box) IoU linking an object across frames")
    dilate: int = Field(3, ge=0, le=50, description="px added around a region so that changes at its rim count")


@dataclass
class SyncTrack:
    members: dict[int, int] = field(default_factory=dict)  # sampled frame -> proposal index
    last: BoolArray | None = None
    score: float = 0.0
    lag: int = 0
    visual: FloatArray = field(default_factory=lambda: np.zeros(0, np.float32))


def _region(props: Proposals, j: int, h: int, w: int) -> BoolArray:
    if props.masks is not None:
        return np.asarray(props.masks[j], bool)
    m = np.zeros((h, w), bool)
    x0, y0, x1, y1 = (int(round(float(v))) for v in props.boxes[j])
    m[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return m


def _iou(a: BoolArray, b: BoolArray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 0.0


def audio_envelope(wave: FloatArray, sr: int, times: Sequence[float]) -> FloatArray:
    """RMS energy of ``wave`` around each time (half a frame interval either side)."""
    t = np.asarray(times, np.float64)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    out = np.zeros(len(t), np.float32)
    for k, tk in enumerate(t):
        a, b = int(max(0.0, tk - step / 2) * sr), int(max(0.0, tk + step / 2) * sr)
        seg = wave[a:max(b, a + 1)]
        out[k] = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) if len(seg) else 0.0
    return out


def best_lagged_correlation(v: FloatArray, a: FloatArray, max_lag: int) -> tuple[float, int]:
    """(max Pearson correlation of v[k] with a[k + lag] over |lag| <= max_lag, that lag); 0 for a
    flat curve or fewer than three overlapping points. The smallest |lag| wins a tie."""
    best, best_lag = -np.inf, 0
    n = min(len(v), len(a))
    for lag in sorted(range(-max_lag, max_lag + 1), key=abs):
        lo, hi = max(0, -lag), min(n, n - lag)
        if hi - lo < 3:
            continue
        x, y = v[lo:hi].astype(np.float64), a[lo + lag:hi + lag].astype(np.float64)
        sx, sy = x.std(), y.std()
        r = 0.0 if sx < 1e-9 or sy < 1e-9 else float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))
        if r > best + 1e-12:
            best, best_lag = r, lag
    return (0.0, 0) if not np.isfinite(best) else (best, best_lag)


def _clip_audio(ctx: ClipContext) -> tuple[FloatArray, int]:
    if ctx.audio is not None:
        return np.asarray(ctx.audio[0], np.float32).reshape(-1), int(ctx.audio[1])
    # a context built by hand: lay the frames' windows back on the clip's time line
    sr = ctx.audio_windows[0].sample_rate if ctx.audio_windows else 16000
    end = max((w.start + w.duration for w in ctx.audio_windows), default=0.0)
    wave = np.zeros(int(np.ceil(end * sr)) + 1, np.float32)
    for w in ctx.audio_windows:
        a = int(w.start * sr)
        seg = w.waveform[: max(0, len(wave) - a)]
        wave[a:a + len(seg)] = seg
    return wave, sr


class AVSync(ClipFilter):
    name: ClassVar[str] = "av-sync"
    description: ClassVar[str] = (
        "Clip scope, no weights: keep the tracked objects whose visual change at the video's frame rate "
        "correlates with the audio onsets/energy (audio-visual synchrony), over a small lag window."
    )
    Config = AVSyncConfig
    target: ClassVar[Literal["tags", "proposals"]] = "proposals"
    uses_video: ClassVar[bool] = True
    config: AVSyncConfig

    def link(self, ctx: ClipContext) -> list[SyncTrack]:
        """Tracks over the sampled frames: each object joins the unmatched track it overlaps most."""
        tracks: list[SyncTrack] = []
        for t, props in enumerate(ctx.proposals):
            h, w = ctx.frames[t].shape[:2]
            regions = [_region(props, j, h, w) for j in range(len(props))]
            pairs = sorted(((_iou(tr.last, r), k, j) for k, tr in enumerate(tracks) if tr.last is not None
                            for j, r in enumerate(regions)), key=lambda x: (-x[0], x[1], x[2]))
            used_t: set[int] = set()
            used_p: set[int] = set()
            for iou, k, j in pairs:
                if iou < self.config.iou_threshold or iou <= 0 or k in used_t or j in used_p:
                    continue
                tracks[k].members[t], tracks[k].last = j, regions[j]
                used_t.add(k)
                used_p.add(j)
            for j, r in enumerate(regions):
                if j not in used_p:
                    tracks.append(SyncTrack({t: j}, r))
        return tracks

    def _video(self, ctx: ClipContext) -> FullRateVideo:
        if ctx.video is not None and len(ctx.video) >= 2:
            return ctx.video
        ctx.warn_once(f"{self.name}: no full-rate video for this clip; synchrony is measured on its "
                      f"{ctx.num_frames} sampled frames only (coarse)")
        return FullRateVideo(list(ctx.frames), list(ctx.timestamps))

    def measure(self, ctx: ClipContext, tracks: list[SyncTrack]) -> tuple[FloatArray, float]:
        """Set each track's visual curve, score and lag; return the audio curve and the frame rate."""
        import cv2

        cfg = self.config
        video = self._video(ctx)
        diff = frame_changes(video.frames)
        times = np.asarray(video.times, np.float64)
        mid = (times[:-1] + times[1:]) / 2
        wave, sr = _clip_audio(ctx)
        energy = audio_envelope(wave, sr, times)
        audio = np.abs(np.diff(energy)) if cfg.audio_feature == "onset" else (energy[:-1] + energy[1:]) / 2
        fps = video.fps
        max_lag = int(round(cfg.max_lag * fps))
        vh, vw = video.frames[0].shape[:2]
        ts = np.asarray(ctx.timestamps, np.float64)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cfg.dilate + 1,) * 2) if cfg.dilate else None
        flat = diff.reshape(len(diff), vh * vw)
        for tr in tracks:
            frames = sorted(tr.members)
            regions = {}
            for t in frames:
                h, w = ctx.frames[t].shape[:2]
                r = _region(ctx.proposals[t], tr.members[t], h, w)
                if (h, w) != (vh, vw):
                    r = _resize_mask(r, vh, vw)
                if kernel is not None:
                    r = cv2.dilate(r.astype(np.uint8), kernel).astype(bool)
                regions[t] = r.reshape(-1)
            # each full-rate step is measured inside the member mask of the nearest sampled frame
            near = np.asarray([frames[int(np.argmin(np.abs(ts[frames] - m)))] for m in mid], np.int64)
            v = np.zeros(len(mid), np.float32)
            for t in frames:
                ks = np.nonzero(near == t)[0]
                if len(ks) and regions[t].any():
                    v[ks] = flat[ks][:, regions[t]].mean(axis=1)
            tr.visual = v
            tr.score, tr.lag = best_lagged_correlation(v, audio.astype(np.float32), max_lag)
        return audio.astype(np.float32), fps

    def filter_clip(self, ctx: ClipContext) -> list[FilterResult]:
        cfg = self.config
        tracks = self.link(ctx)
        audio, fps = self.measure(ctx, tracks) if tracks else (np.zeros(0, np.float32), 0.0)
        if cfg.keep == "best":
            best = max(range(len(tracks)), key=lambda k: (tracks[k].score, -k)) if tracks else -1
            kept = {best} if best >= 0 else set()
        else:
            kept = {k for k, tr in enumerate(tracks) if tr.score >= cfg.threshold}
        owner: list[dict[int, int]] = [{} for _ in range(ctx.num_frames)]
        for k, tr in enumerate(tracks):
            for t, j in tr.members.items():
                owner[t][j] = k
        audio_curve = [round(float(x), 5) for x in audio]
        results = []
        for t, props in enumerate(ctx.proposals):
            keep: list[int] = []
            drops: dict[int, Drop] = {}
            scores: list[float] = []
            extra: list[dict[str, Any]] = []
            for j in range(len(props)):
                k = owner[t][j]
                tr = tracks[k]
                lag_s = tr.lag / fps if fps else 0.0
                scores.append(tr.score)
                extra.append({"track": k, "sync": round(tr.score, 4), "lag_frames": tr.lag,
                              "lag_s": round(lag_s, 4), "fps": round(fps, 3), "frames": len(tr.members),
                              "curves": {"visual": [round(float(x), 4) for x in tr.visual], "audio": audio_curve}})
                if k in kept:
                    keep.append(j)
                elif cfg.keep == "best":
                    drops[j] = Drop(self.name, f"track {k}: synchrony {tr.score:.3f} is not the clip's best "
                                    f"({tracks[best].score:.3f}, track {best})", tr.score)
                else:
                    drops[j] = Drop(self.name, f"track {k}: synchrony {tr.score:.3f} < {cfg.threshold} "
                                    f"(best lag {lag_s:+.2f} s)", tr.score)
            results.append(FilterResult(keep, drops, scores, extra))
        return results
