"""Inputs: AVSBench readers (S4, MS3, AVSS), video files and frame folders, all as lazy Clips."""

from __future__ import annotations

from pathlib import Path

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
from avseg.data.s4 import S4Dataset, s4_categories
from avseg.data.video import read_video, write_overlay_video
from avseg.errors import InputError, UsageError, did_you_mean
from avseg.types import Clip

SUBSETS = ("s4", "ms3", "avss-v1s", "avss-v1m", "avss-v2", "avss")

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")

__all__ = [
    "AVSS_LABELS",
    "AVSSDataset",
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


def open_dataset(root: str | Path, subset: str, split: str = "test") -> Dataset:
    """Open an AVSBench subset: ``s4``, ``ms3``, ``avss-v1s``, ``avss-v1m``, ``avss-v2`` or ``avss`` (all).

    ``root`` may be the subset's folder (holding its metadata CSV) or a parent of it.
    """
    key = subset.strip().lower()
    if key == "s4":
        return S4Dataset(root, split)
    if key == "ms3":
        return MS3Dataset(root, split)
    if key == "avss":
        return AVSSDataset(root, split)
    if key.startswith("avss-") and key[5:] in AVSS_LABELS:
        return AVSSDataset(root, split, label=key[5:])
    raise UsageError(f"unknown dataset subset {subset!r}{did_you_mean(key, SUBSETS)}")


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
