"""Tiny synthetic inputs in the official AVSBench layouts, for tests, demos and plugin authors.

Every builder is deterministic for a given ``seed``. Frames show filled shapes (circles and
rectangles, one distinct colour per category) that move a little from frame to frame over a
smooth background; GT masks match the shapes pixel for pixel; the audio is a sine tone per
category (16 kHz mono, 5 s for S4/MS3/v1s/v1m and 10 s for AVSS v2).

Public API:

- :func:`make_s4_tree` (returns the ``Single-source`` folder),
- :func:`make_ms3_tree` (returns ``Multi-sources``),
- :func:`make_avss_tree` (returns ``AVSBench-semantic``),
- :func:`make_frames_folder` (frames + ``audio.wav``),
- :func:`make_video` (an mp4 with an audio track; frame ``k`` carries its index as grey level),
- :func:`corrupt_file` (overwrite a file with garbage, for error-path tests),
- :func:`make_registry` (the bundled components plus given plugins, for plugin authors' tests),
- :func:`tone`, :func:`draw_shapes`, :data:`S4_TEST_CATEGORIES`.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from avseg.types import BoolArray, FloatArray, Image

if TYPE_CHECKING:
    from avseg.registry import Registry

SR = 16000
DEFAULT_SPLITS: dict[str, int] = {"train": 1, "val": 1, "test": 2}

#: Real S4 category names cycled through by :func:`make_s4_tree`.
S4_TEST_CATEGORIES = (
    "dog_barking",
    "horse_clip-clop",
    "playing_violin",
    "male_speech",
    "helicopter",
    "cat_meowing",
)
#: AVSS labels cycled through by :func:`make_avss_tree` (all exist in the 71-label list).
AVSS_TEST_LABELS = ("dog", "guitar", "piano", "car", "violin", "cat", "helicopter", "bird")

_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


@dataclass(frozen=True)
class Shape:
    """A filled circle (``kind='circle'``, radius ``r``) or square (half side ``r``) at (cx, cy)."""

    kind: str
    color: tuple[int, int, int]
    cx: float
    cy: float
    r: float


def _color(k: int) -> tuple[int, int, int]:
    """Distinct saturated colours, away from the grey background."""
    base = [
        (230, 40, 40),
        (40, 200, 60),
        (50, 80, 235),
        (240, 200, 30),
        (200, 50, 220),
        (30, 210, 220),
        (250, 120, 20),
        (120, 60, 20),
    ]
    return base[k % len(base)]


def _yt_id(rng: np.random.Generator) -> str:
    s = "".join(_ID_CHARS[i] for i in rng.integers(0, len(_ID_CHARS), 11))
    return s.replace("--", "-a")


def tone(freqs: Sequence[float], seconds: float, sr: int = SR, amp: float = 0.3) -> FloatArray:
    """A sum of sine tones, mono float32."""
    t = np.arange(int(round(seconds * sr)), dtype=np.float64) / sr
    y = np.zeros_like(t)
    for f in freqs:
        y += np.sin(2 * np.pi * f * t)
    y *= amp / max(1, len(freqs))
    return y.astype(np.float32)


def _freq(k: int) -> float:
    return float(220.0 * 2 ** (k / 4.0))


def draw_shapes(size: int, shapes: Sequence[Shape], seed: int = 0) -> tuple[Image, list[BoolArray]]:
    """An RGB frame with the shapes painted in order, and each shape's visible mask."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    rng = np.random.default_rng(seed)
    bg = np.stack([60 + 60 * xx / size, 90 + 40 * yy / size, 110 + 0 * xx], axis=-1)
    bg += rng.normal(0, 2.0, bg.shape)
    img = np.clip(bg, 0, 255).astype(np.uint8)
    masks: list[BoolArray] = []
    for s in shapes:
        if s.kind == "circle":
            m = (xx - s.cx) ** 2 + (yy - s.cy) ** 2 <= s.r**2
        else:
            m = (np.abs(xx - s.cx) <= s.r) & (np.abs(yy - s.cy) <= s.r)
        for prev in masks:  # later shapes occlude earlier ones
            prev &= ~m
        img[m] = s.color
        masks.append(np.asarray(m, dtype=bool))
    return img, masks


def _moving(k: int, i: int, size: int, kind: str | None = None, n_obj: int = 1, j: int = 0) -> Shape:
    """Object ``j`` of clip ``k`` at frame ``i``: drifts right/down by ~size/32 per frame."""
    step = size / 32.0
    cx = size * (0.3 + 0.4 * j / max(1, n_obj)) + step * i
    cy = size * (0.35 + 0.1 * ((k + j) % 3)) + 0.5 * step * i
    kind = kind or ("circle" if (k + j) % 2 == 0 else "rect")
    return Shape(kind, _color(k + 3 * j), cx, cy, size * 0.14)


def _save_png(arr: npt.NDArray[np.uint8], path: Path) -> None:
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(arr).save(path)


def _save_jpg(arr: Image, path: Path) -> None:
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(arr).save(path, quality=95)


def _save_wav(wave: FloatArray, path: Path, sr: int = SR) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sr, subtype="PCM_16")


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _splits(n_per_split: Mapping[str, int] | None) -> dict[str, int]:
    return dict(DEFAULT_SPLITS if n_per_split is None else n_per_split)


def make_s4_tree(
    root: str | Path,
    n_per_split: Mapping[str, int] | None = None,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``root/Single-source`` in the official S4 layout and return that folder.

    One object per clip (category ``S4_TEST_CATEGORIES[k % 6]``); train clips have only
    ``{name}_1.png`` masks, val/test all five. Default ``n_per_split``: train 1, val 1, test 2.
    """
    base = Path(root) / "Single-source"
    data = base / "s4_data"
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    k = 0
    for split, n in _splits(n_per_split).items():
        for _ in range(n):
            cat = S4_TEST_CATEGORIES[k % len(S4_TEST_CATEGORIES)]
            start = k % 5
            name = f"{_yt_id(rng)}_{start * 1000}_{(start + 5) * 1000}"
            rows.append([name, start, cat, split])
            for i in range(5):
                img, masks = draw_shapes(size, [_moving(k, i, size)], seed=seed * 1000 + k * 10 + i)
                _save_png(img, data / "visual_frames" / split / cat / name / f"{name}_{i + 1}.png")
                if split != "train" or i == 0:
                    _save_png(
                        masks[0].astype(np.uint8) * 255,
                        data / "gt_masks" / split / cat / name / f"{name}_{i + 1}.png",
                    )
            _save_wav(tone([_freq(k)], 5.0), data / "audio_wav" / split / cat / f"{name}.wav")
            k += 1
    _write_csv(base / "s4_meta_data.csv", ["name", "start_time", "category", "split"], rows)
    return base


def make_ms3_tree(
    root: str | Path,
    n_per_split: Mapping[str, int] | None = None,
    size: int = 64,
    seed: int = 0,
    empty_last_frame: bool = True,
) -> Path:
    """Write ``root/Multi-sources`` in the official MS3 layout and return that folder.

    Two objects per clip (two tones mixed); masks are their union, for all 5 frames. With
    ``empty_last_frame`` the first test clip's frame 4 shows no object (an empty GT).
    """
    base = Path(root) / "Multi-sources"
    data = base / "ms3_data"
    rng = np.random.default_rng(seed + 1)
    rows: list[list[object]] = []
    k = 0
    for split, n in _splits(n_per_split).items():
        for c in range(n):
            vid = _yt_id(rng)
            rows.append([vid, split])
            for i in range(5):
                shapes = [_moving(k, i, size, n_obj=2, j=j) for j in range(2)]
                if empty_last_frame and split == "test" and c == 0 and i == 4:
                    shapes = []
                img, masks = draw_shapes(size, shapes, seed=seed * 1000 + k * 10 + i)
                union = np.zeros((size, size), bool)
                for m in masks:
                    union |= m
                _save_png(img, data / "visual_frames" / vid / f"{vid}.mp4_{i + 1}.png")
                _save_png(
                    union.astype(np.uint8) * 255, data / "gt_masks" / split / vid / f"{vid}_{i + 1}.png"
                )
            _save_wav(tone([_freq(k), _freq(k + 7)], 5.0), data / "audio_wav" / split / f"{vid}.wav")
            k += 1
    _write_csv(base / "ms3_meta_data.csv", ["video_id", "split"], rows)
    return base


def make_avss_tree(
    root: str | Path,
    labels: Sequence[str] = ("v1s", "v1m", "v2"),
    n_per_split: Mapping[str, int] | None = None,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``root/AVSBench-semantic`` in the official AVSS layout and return that folder.

    v1s clips hold one object, v1m and v2 two, each of an AVSS class from ``AVSS_TEST_LABELS``;
    colour masks use the official palette. v1s train clips have only ``labels_rgb/0.png``.
    Rows are written label by label, split by split.
    """
    from avseg.data.avss import avss_label_index, encode_label_map

    base = Path(root) / "AVSBench-semantic"
    rng = np.random.default_rng(seed + 2)
    rows: list[list[object]] = []
    k = 0
    for label in labels:
        n_frames = 10 if label == "v2" else 5
        n_obj = 1 if label == "v1s" else 2
        for split, n in _splits(n_per_split).items():
            for c in range(n):
                vid = _yt_id(rng)
                uid = f"{vid}_{c}"
                names = [AVSS_TEST_LABELS[(k + 2 * j) % len(AVSS_TEST_LABELS)] for j in range(n_obj)]
                rows.append([vid, uid, 0, c, "_".join(names), split, label])
                clip_dir = base / label / uid
                for i in range(n_frames):
                    shapes = [_moving(k, i, size, n_obj=n_obj, j=j) for j in range(n_obj)]
                    img, masks = draw_shapes(size, shapes, seed=seed * 1000 + k * 10 + i)
                    _save_jpg(img, clip_dir / "frames" / f"{i}.jpg")
                    if label == "v1s" and split == "train" and i > 0:
                        continue
                    lm = np.zeros((size, size), np.int32)
                    for m, nm in zip(masks, names, strict=False):
                        lm[m] = avss_label_index(nm)
                    _save_png(encode_label_map(lm), clip_dir / "labels_rgb" / f"{i}.png")
                _save_wav(tone([_freq(k + j) for j in range(n_obj)], float(n_frames)), clip_dir / "audio.wav")
                k += 1
    _write_csv(base / "metadata.csv", ["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"], rows)
    return base


def make_frames_folder(path: str | Path, n: int = 5, size: int = 64, seed: int = 0) -> Path:
    """``frame_0.png .. frame_{n-1}.png`` plus an ``audio.wav`` of ``n`` seconds (1 fps)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, _ = draw_shapes(size, [_moving(seed, i, size)], seed=seed * 1000 + i)
        _save_png(img, folder / f"frame_{i}.png")
    _save_wav(tone([_freq(seed)], float(n)), folder / "audio.wav")
    return folder


def video_grey(k: int) -> int:
    """Grey level that :func:`make_video` paints into the top half of frame ``k``."""
    return int(20 + (7 * k) % 220)


def make_video(
    path: str | Path,
    seconds: float = 3,
    size: int = 64,
    fps: int = 10,
    sr: int = 22050,
    channels: int = 2,
    audio: bool = True,
) -> Path:
    """An mp4 (mpeg4 video + AAC audio) with a moving shape and a stereo tone.

    The top half of frame ``k`` is the uniform grey :func:`video_grey` ``(k)``, so a reader's frame
    choice can be checked; the bottom half shows a moving circle. ``audio=False`` omits the track.
    """
    import av

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * fps))
    with av.open(str(out), mode="w") as container:
        vs = container.add_stream("mpeg4", rate=fps)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.bit_rate = 4_000_000
        astream = None
        if audio:
            astream = container.add_stream("aac", rate=sr)
            astream.layout = "stereo" if channels == 2 else "mono"
        for k in range(n):
            img, _ = draw_shapes(size, [_moving(0, k, size)], seed=k)
            img[: size // 2] = video_grey(k)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = k
            vf.time_base = Fraction(1, fps)
            for packet in vs.encode(vf):
                container.mux(packet)
        for packet in vs.encode(None):
            container.mux(packet)
        if astream is not None:
            wave = tone([440.0], seconds, sr=sr)
            chans = np.stack([wave, 0.5 * wave] if channels == 2 else [wave]).astype(np.float32)
            chunk = 1024
            for c, s in enumerate(range(0, chans.shape[1], chunk)):
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(chans[:, s : s + chunk]), format="fltp", layout=astream.layout.name
                )
                af.sample_rate = sr
                af.pts = c * chunk
                af.time_base = Fraction(1, sr)
                for packet in astream.encode(af):
                    container.mux(packet)
            for packet in astream.encode(None):
                container.mux(packet)
    return out


def corrupt_file(path: str | Path, n_bytes: int = 64, seed: int = 0) -> Path:
    """Overwrite ``path`` with ``n_bytes`` of random garbage (the file then fails to decode)."""
    p = Path(path)
    rng = np.random.default_rng(seed)
    p.write_bytes(b"\x00garbage\x00" + rng.integers(0, 256, n_bytes, dtype=np.uint8).tobytes())
    return p


def make_registry(*plugins: object, entry_points: bool = False) -> Registry:
    """A registry of the bundled components plus ``plugins`` (modules or objects whose methods
    carry ``@avseg.hookimpl``), for plugin authors' tests.

    Installed third-party plugins are not loaded unless ``entry_points=True``, so a test sees
    the same components whether or not its package is installed, and never registers it twice.
    """
    from avseg.registry import load_registry

    named = [(str(getattr(p, "__name__", None) or type(p).__name__), p) for p in plugins]
    return load_registry(named, entry_points=entry_points)
