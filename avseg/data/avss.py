"""AVSBench-semantic (AVSS) reader, its 71 labels and its colour palette.

Layout (``AVSBench-semantic/``): ``metadata.csv`` (vid, uid, s_min, s_sec, a_obj, split, label)
with label ``v1s``/``v1m`` (5 s, 5 frames) or ``v2`` (10 s, 10 frames);
``{label}/{uid}/frames/{i}.jpg``, ``{label}/{uid}/audio.wav`` and colour masks
``{label}/{uid}/labels_rgb/{i}.png`` (0-based). v1s train clips have only frame 0 annotated.

Colour masks are decoded as the official ``color_mask_to_label`` does: the colour of palette
entry ``j`` means class ``j``; a colour matching no entry becomes class 0 (background), as the
official argmax over an all-false match does. Class ``j`` is the label whose ``label2idx``
value is ``j + 1`` (background = 0).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from avseg.data.base import Dataset, Record, check_path_part, column, read_csv_rows
from avseg.data.images import open_image
from avseg.errors import InputError, UsageError, did_you_mean, one_line
from avseg.types import BoolArray, Clip, Image

AVSS_LABELS = ("v1s", "v1m", "v2")
NUM_CLASSES = 71
BACKGROUND = 0

LabelMap = npt.NDArray[np.int32]


@lru_cache(maxsize=1)
def avss_label_names() -> list[str]:
    """The 71 AVSS class names, indexed by class index (0 = background)."""
    with open(Path(__file__).with_name("avss_labels.json"), encoding="utf-8") as f:
        label2idx: dict[str, int] = json.load(f)["label2idx"]
    names = [""] * len(label2idx)
    for name, idx in label2idx.items():
        names[idx - 1] = name
    return names


def avss_label_index(name: str) -> int:
    """Class index (0-based, background = 0) of an AVSS label name."""
    names = avss_label_names()
    try:
        return names.index(name)
    except ValueError:
        raise UsageError(f"unknown AVSS label {name!r}{did_you_mean(name, names)}") from None


def build_palette(n: int = NUM_CLASSES) -> npt.NDArray[np.uint8]:
    """The PASCAL-VOC style bit-shift palette of the official ``get_v2_pallete``: (n, 3) uint8."""
    pal = np.zeros((n, 3), dtype=np.uint8)
    for j in range(n):
        lab, i = j, 0
        c = [0, 0, 0]
        while lab > 0:
            c[0] |= ((lab >> 0) & 1) << (7 - i)
            c[1] |= ((lab >> 1) & 1) << (7 - i)
            c[2] |= ((lab >> 2) & 1) << (7 - i)
            i += 1
            lab >>= 3
        pal[j] = c
    return pal


def _rgb_keys(rgb: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    a = rgb.astype(np.int64)
    return np.asarray((a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2], dtype=np.int64)


def decode_color_mask(rgb: Image, palette: npt.NDArray[np.uint8] | None = None) -> LabelMap:
    """Colour mask (H, W, 3) -> class-index map (H, W) int32; unknown colours -> background."""
    pal = build_palette() if palette is None else palette
    keys = _rgb_keys(np.asarray(rgb)[..., :3])
    pal_keys = _rgb_keys(pal)
    order = np.argsort(pal_keys, kind="stable")
    sorted_keys = pal_keys[order]
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    hit = sorted_keys[pos] == keys
    out = np.where(hit, order[pos], BACKGROUND)
    return out.astype(np.int32)


def encode_label_map(
    label_map: npt.NDArray[np.integer], palette: npt.NDArray[np.uint8] | None = None
) -> Image:
    """Class-index map (H, W) -> colour mask (H, W, 3) uint8, the inverse of :func:`decode_color_mask`."""
    pal = build_palette() if palette is None else palette
    lm = np.asarray(label_map)
    if lm.size and (lm.min() < 0 or lm.max() >= len(pal)):
        raise ValueError(f"label map values must be in [0, {len(pal) - 1}]")
    return np.ascontiguousarray(pal[lm.astype(np.int64)], dtype=np.uint8)


class AVSSDataset(Dataset):
    """AVSBench-semantic; ``label`` restricts to ``v1s``, ``v1m`` or ``v2`` (None = all)."""

    subset = "avss"
    csv_name = "metadata.csv"
    folder_hint = "AVSBench-semantic"

    def __init__(self, root: str | Path, split: str = "test", label: str | None = None) -> None:
        if label is not None and label not in AVSS_LABELS:
            raise UsageError(f"unknown AVSS label set {label!r}{did_you_mean(label, AVSS_LABELS)}")
        self.label = label
        self.palette = build_palette()
        super().__init__(root, split)

    @property
    def name(self) -> str:
        return f"avss-{self.label}" if self.label else "avss"

    @property
    def label_names(self) -> list[str]:
        return avss_label_names()

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES

    def _load_records(self) -> list[Record]:
        header, rows = read_csv_rows(self.csv_path)
        c_vid, c_uid = column(header, "vid", 0), column(header, "uid", 1)
        c_obj, c_split, c_label = (
            column(header, "a_obj", 4),
            column(header, "split", 5),
            column(header, "label", 6),
        )
        out: list[Record] = []
        for line, cells in rows:
            if len(cells) <= max(c_uid, c_split, c_label):
                raise InputError(f"{self.csv_path}: row {line}: expected 7 columns, got {len(cells)}")
            if cells[c_split] != self.split:
                continue
            label = cells[c_label]
            if label not in AVSS_LABELS:
                raise InputError(
                    f"{self.csv_path}: row {line}: unknown label {label!r} (expected v1s, v1m or v2)"
                )
            if self.label is not None and label != self.label:
                continue
            uid = check_path_part(cells[c_uid], self.csv_path, line, "uid")
            extra = {"vid": cells[c_vid] if len(cells) > c_vid else ""}
            if len(cells) > c_obj:
                extra["a_obj"] = cells[c_obj]
            n = 10 if label == "v2" else 5
            out.append(Record(uid, self.split, line, label=label, num_frames=n, extra=extra))
        return out

    def _dir(self, rec: Record) -> Path:
        assert rec.label is not None
        return self.root / rec.label / rec.clip_id

    def frame_path(self, rec: Record, i: int) -> Path:
        return self._dir(rec) / "frames" / f"{i}.jpg"

    def mask_path(self, rec: Record, i: int) -> Path:
        return self._dir(rec) / "labels_rgb" / f"{i}.png"

    def audio_path(self, rec: Record) -> Path:
        return self._dir(rec) / "audio.wav"

    def annotated_frames(self, clip: Clip | str) -> list[int]:
        rec = self.record(clip)
        if rec.label == "v1s" and rec.split == "train":
            return [0]
        return list(range(rec.num_frames))

    def gt_label_map(self, clip: Clip | str, i: int) -> LabelMap | None:
        """Class-index map (H, W) int32 of frame ``i`` (background 0), or None if not annotated."""
        rec = self.record(clip)
        self._check_index(rec, i)
        if i not in self.annotated_frames(rec.clip_id):
            return None
        path = self.mask_path(rec, i)
        try:
            with open_image(path, "mask") as im:  # refuses oversized images before decoding
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except InputError:
            raise
        except FileNotFoundError:
            raise InputError(f"cannot read mask {path}: file not found") from None
        except Exception as exc:
            raise InputError(f"cannot read mask {path}: {one_line(exc, with_type=False)}") from exc
        return decode_color_mask(rgb, self.palette)

    def gt_mask(self, clip: Clip | str, i: int) -> BoolArray | None:
        """Binary GT: any non-background class."""
        lm = self.gt_label_map(clip, i)
        return None if lm is None else lm != BACKGROUND

    def pred_relpath(self, clip: Clip | str, i: int) -> str:
        """``{label}/{uid}/{i}.png`` (frame numbers 0-based, like the GT)."""
        rec = self.record(clip)
        self._check_index(rec, i)
        return f"{rec.label}/{rec.clip_id}/{i}.png"
