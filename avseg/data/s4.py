"""AVSBench-object single-source (S4) reader.

Layout (``Single-source/``): ``s4_meta_data.csv`` (name, start_time, category, split),
``s4_data/visual_frames/{split}/{category}/{name}/{name}_{1..5}.png``,
``s4_data/gt_masks/{split}/{category}/{name}/{name}_{1..5}.png`` (train: only frame 1),
``s4_data/audio_wav/{split}/{category}/{name}.wav``; when present, the raw 5 s videos
``s4_data/raw_videos/{split}/{category}/{name}.mp4`` give clip-scope components the full-rate frames. The ``audio_log_mel`` pickles are never read.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from avseg.data.base import Dataset, Record, check_path_part, column, read_csv_rows
from avseg.errors import InputError
from avseg.types import Clip


@lru_cache(maxsize=1)
def s4_categories() -> list[str]:
    """The 23 S4 categories, in the official order."""
    with open(Path(__file__).with_name("s4_categories.json"), encoding="utf-8") as f:
        return list(json.load(f)["categories"])


class S4Dataset(Dataset):
    """Single-source AVSBench: 5 frames per clip; train has only frame 0 annotated."""

    subset = "s4"
    csv_name = "s4_meta_data.csv"
    folder_hint = "Single-source"

    def _load_records(self) -> list[Record]:
        header, rows = read_csv_rows(self.csv_path)
        c_name, c_start = column(header, "name", 0), column(header, "start_time", 1)
        c_cat, c_split = column(header, "category", 2), column(header, "split", 3)
        out: list[Record] = []
        for line, cells in rows:
            if len(cells) <= max(c_name, c_cat, c_split):
                raise InputError(f"{self.csv_path}: row {line}: expected 4 columns, got {len(cells)}")
            if cells[c_split] != self.split:
                continue
            name = check_path_part(cells[c_name], self.csv_path, line, "clip name")
            cat = check_path_part(cells[c_cat], self.csv_path, line, "category")
            start = cells[c_start] if len(cells) > c_start else ""
            out.append(Record(name, self.split, line, category=cat, extra={"start_time": start}))
        return out

    def _dir(self, kind: str, rec: Record) -> Path:
        assert rec.category is not None
        return self.root / "s4_data" / kind / rec.split / rec.category / rec.clip_id

    def frame_path(self, rec: Record, i: int) -> Path:
        return self._dir("visual_frames", rec) / f"{rec.clip_id}_{i + 1}.png"

    def mask_path(self, rec: Record, i: int) -> Path:
        return self._dir("gt_masks", rec) / f"{rec.clip_id}_{i + 1}.png"

    def audio_path(self, rec: Record) -> Path:
        assert rec.category is not None
        return self.root / "s4_data" / "audio_wav" / rec.split / rec.category / f"{rec.clip_id}.wav"

    def video_path(self, rec: Record) -> Path | None:
        """``s4_data/raw_videos/{split}/{category}/{name}.mp4`` (the trimmed 5 s source video)."""
        assert rec.category is not None
        return self.root / "s4_data" / "raw_videos" / rec.split / rec.category / f"{rec.clip_id}.mp4"

    def annotated_frames(self, clip: Clip | str) -> list[int]:
        rec = self.record(clip)
        return [0] if rec.split == "train" else list(range(rec.num_frames))

    def pred_relpath(self, clip: Clip | str, i: int) -> str:
        """``{split}/{category}/{name}/{name}_{i+1}.png`` (frame numbers 1-based, like the GT)."""
        rec = self.record(clip)
        self._check_index(rec, i)
        return f"{rec.split}/{rec.category}/{rec.clip_id}/{rec.clip_id}_{i + 1}.png"
