"""Shared machinery of the AVSBench readers: metadata discovery, id validation, lazy clips.

A reader lists its clips from the metadata CSV (cheap) and decodes nothing until a frame,
the audio or a mask is asked for. Clips keep the CSV order because the official batch-wise
F-score depends on it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from avseg.audio import load_audio
from avseg.data import audiocheck, images
from avseg.data.timing import FRAME_OFFSET as FRAME_OFFSET  # re-exported: readers import it from here
from avseg.errors import InputError, UsageError, did_you_mean, one_line
from avseg.types import BoolArray, Clip, FloatArray, FullRateVideo, Image

SPLITS = ("train", "val", "test")

#: AVSBench samples frame ``i`` at frame index ``int(i*fps + 15/16*fps)`` of the trimmed video
#: (``preprocess_s4.py``, 16 sub-samples per second, the 16th kept): near the end of second ``i``.


def avsbench_timestamps(n: int) -> list[float]:
    """Sampling times of AVSBench's 1 fps frames: ``i + 15/16`` s."""
    return [i + FRAME_OFFSET for i in range(n)]


def read_rgb(path: Path, what: str = "frame", size: tuple[int, int] | None = None) -> Image:
    """Decode an image file as RGB uint8 (any bit depth or mode, see :mod:`avseg.data.images`);
    a missing, corrupt or oversized file is an InputError naming it."""
    return images.read_rgb(path, what, size)


def read_binary_mask(path: Path) -> BoolArray:
    """Read a binary GT mask by the one mask rule of :mod:`avseg.data.images` (8/16-bit scaled to
    [0, 1] and thresholded at 0.5, so >= 128 for 0/255 masks as the official loader reads them;
    palette indices non-zero = foreground; colour masks with differing channels refused)."""
    return images.read_mask(path, "mask")


def read_audio_file(path: Path) -> tuple[FloatArray, int]:
    return load_audio(path)


def find_metadata(root: str | Path, csv_name: str, folder_hint: str | None = None) -> Path:
    """Find ``csv_name`` at ``root`` or one or two levels below it.

    ``root`` may be the subset's own folder (holding the CSV) or a parent of it. When several
    copies are found, the one inside ``folder_hint`` (e.g. ``Single-source``) wins; otherwise
    the choice is ambiguous and the user must point at one.
    """
    r = Path(root)
    if not r.exists():
        raise InputError(f"dataset root {r} does not exist")
    if r.is_file():
        if r.name == csv_name:
            return r
        raise InputError(f"dataset root {r} is a file; point at the folder holding {csv_name}")
    direct = r / csv_name
    if direct.is_file():
        return direct
    found = sorted(p for p in r.glob(f"*/{csv_name}") if p.is_file())
    if not found:
        found = sorted(p for p in r.glob(f"*/*/{csv_name}") if p.is_file())
    if not found:
        raise InputError(
            f"no {csv_name} in {r} or two levels below it; point the root at the folder holding {csv_name}"
        )
    if len(found) > 1 and folder_hint is not None:
        hinted = [p for p in found if p.parent.name == folder_hint]
        if len(hinted) == 1:
            return hinted[0]
    if len(found) > 1:
        names = ", ".join(str(p.parent) for p in found[:4])
        raise InputError(f"several {csv_name} under {r} ({names}); point the root at one of them")
    return found[0]


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, cells)]) of a metadata CSV; blank lines are skipped."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except Exception as exc:
        raise InputError(f"cannot read metadata {path}: {one_line(exc, with_type=False)}") from exc
    if not rows:
        raise InputError(f"metadata {path} is empty")
    header = [c.strip() for c in rows[0]]
    body = [(n, [c.strip() for c in row]) for n, row in enumerate(rows[1:], start=2) if any(row)]
    return header, body


def check_path_part(value: str, csv_path: Path, line: int, column: str) -> str:
    """Reject values that would escape the dataset tree once joined into a path."""
    if not value or "/" in value or "\\" in value or ".." in value or value in (".",) or "\x00" in value:
        raise InputError(
            f"{csv_path}: row {line}: invalid {column} {value!r} (empty, or contains a path separator or '..')"
        )
    return value


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}{did_you_mean(split, SPLITS)}")
    return split


@dataclass(frozen=True)
class Record:
    """One metadata row: enough to build every path of the clip without touching the disk."""

    clip_id: str
    split: str
    line: int
    category: str | None = None
    label: str | None = None
    num_frames: int = 5
    extra: dict[str, str] = field(default_factory=dict)


class Dataset:
    """Base of the AVSBench readers: an ordered, lazy collection of clips.

    Subclasses set ``subset``/``csv_name`` and implement :meth:`_load_records` and the path
    methods. Clips are yielded in metadata CSV order.
    """

    subset: ClassVar[str] = ""
    csv_name: ClassVar[str] = ""
    folder_hint: ClassVar[str | None] = None

    def __init__(self, root: str | Path, split: str = "test") -> None:
        self.split = check_split(split)
        self.csv_path = find_metadata(root, self.csv_name, self.folder_hint)
        self.root = self.csv_path.parent
        self._records: list[Record] = self._load_records()
        self._by_id: dict[str, Record] = {}
        for rec in self._records:
            if rec.clip_id in self._by_id:
                raise InputError(f"{self.csv_path}: row {rec.line}: duplicate clip id {rec.clip_id!r}")
            self._by_id[rec.clip_id] = rec

    # -- subclass hooks -------------------------------------------------------------------
    def _load_records(self) -> list[Record]:
        raise NotImplementedError

    def frame_path(self, rec: Record, i: int) -> Path:
        raise NotImplementedError

    def audio_path(self, rec: Record) -> Path:
        raise NotImplementedError

    def mask_path(self, rec: Record, i: int) -> Path:
        raise NotImplementedError

    def video_path(self, rec: Record) -> Path | None:
        """Where the clip's raw full-rate video lies when the dataset ships it (AVSBench's
        ``raw_videos``), else None. Read only when a component asks for the full-rate frames."""
        return None

    def pred_relpath(self, clip: Clip | str, i: int) -> str:
        """Relative path of the predicted mask of frame ``i`` (0-based), as the official scripts lay it out."""
        raise NotImplementedError

    def annotated_frames(self, clip: Clip | str) -> list[int]:
        """0-based indices of the frames that have a GT mask."""
        rec = self.record(clip)
        return list(range(rec.num_frames))

    def gt_mask(self, clip: Clip | str, i: int) -> BoolArray | None:
        """Binary GT mask (H, W) of frame ``i``, or None when that frame is not annotated."""
        rec = self.record(clip)
        self._check_index(rec, i)
        if i not in self.annotated_frames(rec.clip_id):
            return None
        return read_binary_mask(self.mask_path(rec, i))

    # -- public API -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.subset

    @property
    def ids(self) -> list[str]:
        return [r.clip_id for r in self._records]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Clip]:
        for rec in self._records:
            yield self._make_clip(rec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, clips={len(self)})"

    def record(self, clip: Clip | str) -> Record:
        cid = clip.clip_id if isinstance(clip, Clip) else clip
        rec = self._by_id.get(cid)
        if rec is None:
            raise UsageError(
                f"no clip {cid!r} in {self.subset} {self.split}{did_you_mean(cid, self._by_id) if len(self._by_id) < 5000 else ''}"
            )
        return rec

    def clip(self, clip_id: str) -> Clip:
        return self._make_clip(self.record(clip_id))

    def select(self, limit: int | None = None, clips: Iterable[str] | None = None) -> Dataset:
        """A view on some clips, still in CSV order: those named in ``clips`` and/or the first ``limit``."""
        recs = self._records
        if clips is not None:
            wanted = list(clips)
            for cid in wanted:
                self.record(cid)  # unknown ids fail with close matches
            keep = set(wanted)
            recs = [r for r in recs if r.clip_id in keep]
        if limit is not None:
            if limit < 0:
                raise UsageError(f"limit must be >= 0, got {limit}")
            recs = recs[:limit]
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._records = list(recs)
        view._by_id = {r.clip_id: r for r in recs}
        return view

    # -- helpers --------------------------------------------------------------------------
    def _check_index(self, rec: Record, i: int) -> None:
        if not 0 <= i < rec.num_frames:
            raise IndexError(f"frame {i} out of range for clip {rec.clip_id!r} ({rec.num_frames} frames)")

    def _meta(self, rec: Record) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "dataset": self.subset,
            "split": rec.split,
            "csv_row": rec.line,
            "annotated_frames": self.annotated_frames(rec.clip_id),
        }
        if rec.label is not None:
            meta["label"] = rec.label
        meta.update(rec.extra)
        return meta

    def _make_clip(self, rec: Record) -> Clip:
        def frame_loader(i: int) -> Image:
            self._check_index(rec, i)
            return read_rgb(self.frame_path(rec, i), "frame")

        def audio_loader() -> tuple[FloatArray, int]:
            return read_audio_file(self.audio_path(rec))

        meta = self._meta(rec)
        timestamps = avsbench_timestamps(rec.num_frames)
        video = self.video_path(rec)
        video_loader = None
        if video is not None and video.is_file():
            from avseg.data.video import decode_all

            def video_loader() -> FullRateVideo:
                return decode_all(video)

        return Clip(
            clip_id=rec.clip_id,
            timestamps=timestamps,
            audio_loader=audiocheck.checked(audio_loader, self.audio_path(rec).name, timestamps, meta),
            frame_loader=frame_loader,
            category=rec.category,
            meta=meta,
            video_loader=video_loader,
        )


def column(header: Sequence[str], name: str, default: int) -> int:
    """Index of ``name`` in the header, or the official position when the header differs."""
    return header.index(name) if name in header else default
