"""Inputs: AVSBench readers (S4, MS3, AVSS), video files and frame folders, all as lazy Clips."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from avseg.data.avss import (
    AVSS_LABELS,
    AVSSDataset,
    avss_label_index,
    avss_label_names,
    build_palette,
    decode_color_mask,
    encode_label_map,
)
from avseg.data.base import SPLITS, Dataset, Record, avsbench_timestamps
from avseg.data.folder import AUDIO_EXTS, FRAME_EXTS, read_frames_folder
from avseg.data.ms3 import MS3Dataset
from avseg.data.readers import BUILTIN_READERS, SUBSETS
from avseg.data.s4 import S4Dataset, s4_categories
from avseg.data.video import read_video, write_overlay_video
from avseg.errors import InputError, UsageError, did_you_mean
from avseg.types import Clip

if TYPE_CHECKING:
    from avseg.registry import Registry

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")

__all__ = [
    "AVSS_LABELS",
    "AVSSDataset",
    "BUILTIN_READERS",
    "Dataset",
    "MS3Dataset",
    "Record",
    "S4Dataset",
    "SPLITS",
    "SUBSETS",
    "VIDEO_EXTS",
    "avsbench_timestamps",
    "avss_label_index",
    "avss_label_names",
    "build_palette",
    "decode_color_mask",
    "encode_label_map",
    "open_dataset",
    "open_input",
    "read_frames_folder",
    "read_video",
    "s4_categories",
    "write_overlay_video",
]


def open_dataset(root: str | Path, subset: str, split: str = "test", *, registry: Registry | None = None) -> Dataset:
    """Open an AVSBench subset: ``s4``, ``ms3``, ``avss-v1s``, ``avss-v1m``, ``avss-v2`` or ``avss`` (all),
    or a dataset a plugin registered (``NAME`` or ``dist:NAME``; ``registry`` defaults to the installed plugins).

    ``root`` may be the subset's folder (holding its metadata CSV) or a parent of it.
    """
    key = subset.strip().lower()
    if key in BUILTIN_READERS:
        return BUILTIN_READERS[key](root, split)
    from avseg.registry import load_registry

    registry = registry or load_registry()
    names = [*BUILTIN_READERS, *registry.datasets]
    if subset.split(":")[-1] not in registry.datasets:
        gone = ""
        if registry.broken:
            gone = f"; broken plugins: {', '.join(b.plugin for b in registry.broken)} (see 'avseg plugins')"
        raise UsageError(f"unknown dataset subset {subset!r}{did_you_mean(key, names)}{gone}")
    entry = registry.dataset(subset.strip())
    from avseg.registry import plugin_call

    with plugin_call(f"dataset {entry.name!r} of plugin {entry.plugin!r} (from {entry.provider}) could not open {root}"):
        dataset = entry.obj(root, split)
    if not isinstance(dataset, Dataset):
        raise UsageError(f"dataset {subset!r}: its reader returned {type(dataset).__name__}, not an avseg.data.Dataset")
    return dataset


def open_input(path: str | Path, fps: float = 1.0) -> Clip:
    """One clip from a video file, a folder of frames + one audio file, or an AVSS clip folder
    (``frames/`` + ``audio.wav``)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"input {p} does not exist")
    if p.is_file():
        if p.suffix.lower() in VIDEO_EXTS or p.suffix.lower() not in AUDIO_EXTS + FRAME_EXTS:
            return read_video(p, fps=fps)
        raise InputError(
            f"input {p} is a single {p.suffix} file; give a video or a folder of frames with its audio"
        )
    if (p / "frames").is_dir() and (p / "audio.wav").is_file():
        clip = read_frames_folder(p / "frames", audio=p / "audio.wav")
        clip.clip_id = p.name
        return clip
    return read_frames_folder(p)
