"""AVSBench-object multi-source (MS3) reader.

Layout (``Multi-sources/``): ``ms3_meta_data.csv`` (video_id, split),
``ms3_data/visual_frames/{vid}/{vid}.mp4_{1..5}.png`` (no split folder),
``ms3_data/gt_masks/{split}/{vid}/{vid}_{1..5}.png`` (all 5 annotated),
``ms3_data/audio_wav/{split}/{vid}.wav``; when present, ``ms3_data/raw_videos/{vid}.mp4`` gives
clip-scope components the full-rate frames.
"""

from __future__ import annotations

from pathlib import Path

from avseg.data.base import Dataset, Record, check_path_part, column, read_csv_rows
from avseg.errors import InputError
from avseg.types import Clip


class MS3Dataset(Dataset):
    """Multi-source AVSBench: 5 frames per clip, all annotated, no category."""

    subset = "ms3"
    csv_name = "ms3_meta_data.csv"
    folder_hint = "Multi-sources"

    def _load_records(self) -> list[Record]:
        header, rows = read_csv_rows(self.csv_path)
        c_vid, c_split = column(header, "video_id", 0), column(header, "split", 1)
        out: list[Record] = []
        for line, cells in rows:
            if len(cells) <= max(c_vid, c_split):
                raise InputError(f"{self.csv_path}: row {line}: expected 2 columns, got {len(cells)}")
            if cells[c_split] != self.split:
                continue
            vid = check_path_part(cells[c_vid], self.csv_path, line, "video id")
            out.append(Record(vid, self.split, line))
        return out

    def frame_path(self, rec: Record, i: int) -> Path:
        return self.root / "ms3_data" / "visual_frames" / rec.clip_id / f"{rec.clip_id}.mp4_{i + 1}.png"

    def mask_path(self, rec: Record, i: int) -> Path:
        return self.root / "ms3_data" / "gt_masks" / rec.split / rec.clip_id / f"{rec.clip_id}_{i + 1}.png"

    def audio_path(self, rec: Record) -> Path:
        return self.root / "ms3_data" / "audio_wav" / rec.split / f"{rec.clip_id}.wav"

    def video_path(self, rec: Record) -> Path | None:
        """``ms3_data/raw_videos/{vid}.mp4`` (the trimmed 5 s source video), when present."""
        return self.root / "ms3_data" / "raw_videos" / f"{rec.clip_id}.mp4"

    def pred_relpath(self, clip: Clip | str, i: int) -> str:
        """``{split}/{vid}/{vid}_{i+1}.png`` (frame numbers 1-based, like the GT)."""
        rec = self.record(clip)
        self._check_index(rec, i)
        return f"{rec.split}/{rec.clip_id}/{rec.clip_id}_{i + 1}.png"
