"""Seeded synthetic audio-visual scenes with ground truth (``avseg synth``).

Each scene (``seconds`` long, ``fps`` frames per second) holds, on a static textured background:

- the **sounding** objects (one in S4, two in MS3): each has its own bursty loudness envelope,
  which drives both its sound (a harmonic tone times the envelope) and its picture (its size
  grows, or it jumps up, with the envelope);
- a **steady mover**: a shape that slides across the bottom of the frame at constant speed;
- an **out-of-sync pulser**: a shape whose size follows another envelope that is not heard;
- a **static** shape that never changes;
- optionally an **off-screen** sound (bursty noise nobody in the picture makes), ``offscreen``
  times the loudness of the sounding objects.

The ground truth of a frame is the union of the sounding objects' visible masks. Scenes are
written in the AVSBench layouts (S4 ``Single-source``, MS3 ``Multi-sources``): frames at the
official timestamps (``i + 15/16`` s, the last full-rate frame at or before it), 16 kHz wavs,
GT masks, and the raw full-rate video under ``raw_videos`` (which the readers pick up), or as a
single mp4 (``layout="video"``). Everything is a function of ``seed``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from avseg.data.base import FRAME_OFFSET
from avseg.errors import UsageError
from avseg.types import BoolArray, FloatArray, Image

SR = 16000
Layout = Literal["s4", "ms3", "video"]
S4_CATEGORIES = ("playing_tabla", "dog_barking", "playing_piano", "male_speech", "lawn_mowing", "playing_ukulele")


@dataclass
class Scene:
    """A rendered scene: every full-rate frame, its time, the GT of each frame, the audio."""

    frames: list[Image]
    times: list[float]
    gt: list[BoolArray]
    audio: FloatArray
    sr: int
    objects: list[dict[str, object]]


def _envelope(rng: np.random.Generator, t: np.ndarray, seconds: float) -> np.ndarray:
    """Bursts: a fast attack, an exponential decay, loudness 0.6-1, about 1.3 bursts a second."""
    env = np.zeros_like(t)
    n = max(3, int(rng.poisson(1.3 * seconds)))
    for onset in np.sort(rng.uniform(0.0, seconds - 0.3, n)):
        amp, tau = rng.uniform(0.6, 1.0), rng.uniform(0.12, 0.3)
        d = t - onset
        env += np.where(d >= 0, amp * np.minimum(d / 0.03, 1.0) * np.exp(-np.maximum(d - 0.03, 0) / tau), 0.0)
    return np.asarray(np.minimum(env, 1.0))


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth colour gradient with blotches and fine grain: texture for the differencing to ignore."""
    import cv2

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([90 + 50 * xx / w, 100 + 40 * yy / h, 120 - 30 * xx / w], axis=-1)
    blot = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), max(2.0, w / 40))
    base += 25 * blot / (np.abs(blot).max() + 1e-6)
    base += rng.normal(0, 6, base.shape)
    return np.asarray(np.clip(base, 0, 255), np.float32)


def _shape(kind: str, cx: float, cy: float, r: float, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    if kind == "circle":
        return np.asarray((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r)
    return np.asarray((np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= 0.8 * r))


def render_scene(seed: int = 0, *, size: tuple[int, int] = (320, 240), fps: float = 25.0, seconds: float = 5.0,
                 n_sounding: int = 1, offscreen: float = 0.0) -> Scene:
    """One scene (see the module docstring); deterministic for a seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    n_frames = int(round(seconds * fps))
    times = [k / fps for k in range(n_frames)]
    ta = np.arange(int(round(seconds * SR))) / SR
    tv = np.asarray(times)
    bg = _background(rng, w, h)
    r0 = 0.09 * min(w, h) * 1.0
    palette = [(230, 40, 40), (40, 200, 60), (240, 200, 30), (200, 50, 220), (30, 210, 220), (250, 120, 20)]
    order = rng.permutation(len(palette))
    # top row: sounding objects, the pulser and the static shape in separate cells; bottom band: the mover
    roles = ["sounding"] * n_sounding + ["pulser", "static"]
    cells = rng.permutation(len(roles))
    objects: list[dict[str, object]] = []
    audio = np.zeros_like(ta)
    for k, role in enumerate(roles):
        cx = (cells[k] + 0.5) * w / len(roles)
        cy = h * rng.uniform(0.3, 0.42)
        kind = "circle" if rng.random() < 0.6 else "rect"
        obj: dict[str, object] = {"role": role, "kind": kind, "color": palette[int(order[k])], "cx": cx, "cy": cy,
                                  "r": r0 * rng.uniform(0.9, 1.15), "mode": "still", "env": np.zeros_like(tv)}
        if role in ("sounding", "pulser"):
            env_a = _envelope(rng, ta, seconds)
            obj["env"] = np.interp(tv, ta, env_a)
            obj["mode"] = "size" if role == "pulser" or rng.random() < 0.6 else "jump"
            if role == "sounding":
                f0 = rng.uniform(150, 400)
                carrier = sum(np.sin(2 * np.pi * f0 * m * ta + rng.uniform(0, 6.28)) / m for m in (1, 2, 3))
                audio += 0.25 * env_a * carrier
        objects.append(obj)
    mover: dict[str, object] = {"role": "mover", "kind": "rect" if rng.random() < 0.5 else "circle", "color": palette[int(order[len(roles)])],
             "cx": 0.0, "cy": h * 0.78, "r": r0 * 0.9, "mode": "slide", "speed": w * rng.uniform(0.15, 0.3),
             "x0": w * rng.uniform(0.15, 0.85), "env": np.zeros_like(tv)}
    objects.append(mover)
    if offscreen > 0:
        audio += offscreen * 0.25 * _envelope(rng, ta, seconds) * rng.normal(0, 0.6, len(ta))
    audio += rng.normal(0, 0.002, len(ta))  # a faint noise floor: silence is never digital zero
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames, gts = [], []
    for k, t in enumerate(times):
        img = bg.copy()
        gt = np.zeros((h, w), bool)
        masks: list[tuple[np.ndarray, bool]] = []
        for obj in objects:
            env = float(np.asarray(obj["env"])[k])
            cx, cy, r = float(obj["cx"]), float(obj["cy"]), float(obj["r"])  # type: ignore[arg-type]
            if obj["mode"] == "size":
                r *= 1.0 + 0.45 * env
            elif obj["mode"] == "jump":
                cy -= 0.6 * float(obj["r"]) * env  # type: ignore[arg-type]
            elif obj["mode"] == "slide":
                span = w - 2.5 * r
                pos = (float(obj["x0"]) + float(obj["speed"]) * t) % (2 * span)  # type: ignore[arg-type]
                cx = 1.25 * r + (pos if pos < span else 2 * span - pos)
            m = _shape(str(obj["kind"]), cx, cy, r, xx, yy)
            for prev, _ in masks:
                prev &= ~m
            masks.append((m, obj["role"] == "sounding"))
            img[m] = np.asarray(obj["color"], np.float32) * (0.9 + 0.1 * (yy[m] / h))[:, None]
        for m, sounding in masks:
            if sounding:
                gt |= m
        img += rng.normal(0, 1.5, img.shape)  # sensor noise
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        gts.append(gt)
    peak = float(np.abs(audio).max()) or 1.0
    audio = (audio * min(1.0, 0.9 / peak)).astype(np.float32)
    info = [{k: v for k, v in o.items() if k != "env"} for o in objects]
    return Scene(frames, times, gts, np.asarray(audio, np.float32), SR, info)


def sampled_indices(scene: Scene, n: int) -> list[int]:
    """The full-rate frame shown at each official timestamp ``i + 15/16`` s."""
    t = np.asarray(scene.times)
    return [max(0, int(np.searchsorted(t, i + FRAME_OFFSET + 1e-6, side="right")) - 1) for i in range(n)]


def _png(arr: np.ndarray, path: Path) -> None:
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(arr).save(path)


def _wav(wave: FloatArray, path: Path, sr: int) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sr, subtype="PCM_16")


def _video(scene: Scene, path: Path, fps: float) -> None:
    from avseg.data.video import write_overlay_video

    path.parent.mkdir(parents=True, exist_ok=True)
    write_overlay_video(scene.frames, fps, scene.audio, scene.sr, path)


def synth(out: str | Path, *, layout: Layout = "s4", clips: int = 4, seed: int = 0, size: tuple[int, int] = (320, 240),
          fps: float = 25.0, seconds: float = 5.0, offscreen: float = 0.0, split: str = "test") -> Path:
    """Write ``clips`` scenes under ``out`` in ``layout``; returns the dataset folder (or the mp4
    for ``layout="video"``, which writes one scene to ``out`` itself). Scene ``c`` uses seed ``seed * 1000 + c``."""
    if layout not in ("s4", "ms3", "video"):
        raise UsageError(f"--layout {layout!r}: expected s4, ms3 or video")
    if clips < 1:
        raise UsageError(f"--clips must be >= 1, got {clips}")
    if min(size) < 32 or max(size) > 1920:
        raise UsageError(f"--size {size[0]}x{size[1]}: each side must be 32 to 1920 px")
    if not 5 <= fps <= 60:
        raise UsageError(f"--fps {fps}: expected 5 to 60")
    if not 2 <= seconds <= 30:
        raise UsageError(f"--seconds {seconds}: expected 2 to 30")
    if not 0 <= offscreen <= 10:
        raise UsageError(f"--offscreen {offscreen}: expected 0 to 10")
    root = Path(out)
    n_sounding = 2 if layout == "ms3" else 1
    if layout == "video":
        if root.suffix.lower() != ".mp4":
            raise UsageError(f"synth --layout video writes one mp4: give a path ending in .mp4, not {root}")
        scene = render_scene(seed, size=size, fps=fps, seconds=seconds, n_sounding=1, offscreen=offscreen)
        _video(scene, root, fps)
        return root
    n = int(seconds)
    rows: list[list[object]] = []
    base = root / ("Single-source" if layout == "s4" else "Multi-sources")
    for c in range(clips):
        scene = render_scene(seed * 1000 + c, size=size, fps=fps, seconds=seconds, n_sounding=n_sounding,
                             offscreen=offscreen)
        idx = sampled_indices(scene, n)
        name = f"synth{seed}_{c:03d}"
        if layout == "s4":
            cat = S4_CATEGORIES[c % len(S4_CATEGORIES)]
            d = base / "s4_data"
            rows.append([name, 0, cat, split])
            for i, k in enumerate(idx):
                _png(scene.frames[k], d / "visual_frames" / split / cat / name / f"{name}_{i + 1}.png")
                _png(scene.gt[k].astype(np.uint8) * 255, d / "gt_masks" / split / cat / name / f"{name}_{i + 1}.png")
            _wav(scene.audio, d / "audio_wav" / split / cat / f"{name}.wav", scene.sr)
            _video(scene, d / "raw_videos" / split / cat / f"{name}.mp4", fps)
        else:
            d = base / "ms3_data"
            rows.append([name, split])
            for i, k in enumerate(idx):
                _png(scene.frames[k], d / "visual_frames" / name / f"{name}.mp4_{i + 1}.png")
                _png(scene.gt[k].astype(np.uint8) * 255, d / "gt_masks" / split / name / f"{name}_{i + 1}.png")
            _wav(scene.audio, d / "audio_wav" / split / f"{name}.wav", scene.sr)
            _video(scene, d / "raw_videos" / f"{name}.mp4", fps)
    header = ["name", "start_time", "category", "split"] if layout == "s4" else ["video_id", "split"]
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ("s4_meta_data.csv" if layout == "s4" else "ms3_meta_data.csv"), "w", newline="",
              encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return base


def parse_size(text: str) -> tuple[int, int]:
    """``"320x240"`` -> (320, 240); a one-line UsageError otherwise."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 320x240")
    return int(parts[0]), int(parts[1])
