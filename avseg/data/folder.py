"""Read a folder of frames plus one audio file as a :class:`Clip`.

Frames (png/jpg) are ordered naturally by the numbers in their names (``2.png`` before
``10.png``). The folder is taken to be 1 fps: frame ``i`` is sampled near the end of second
``i`` (t = i + 15/16, as AVSBench frames are), so its audio window is ``[i, i+1)`` s.
"""

from __future__ import annotations

import re
from pathlib import Path

from avseg.audio import load_audio
from avseg.data import audiocheck
from avseg.data.base import FRAME_OFFSET, read_rgb
from avseg.data.images import image_size
from avseg.errors import InputError
from avseg.types import Clip, FloatArray, Image

FRAME_EXTS = (".png", ".jpg", ".jpeg")
AUDIO_EXTS = (".wav", ".flac", ".mp3")


def natural_key(name: str) -> list[tuple[int, int | str]]:
    """Sort key that compares digit runs as numbers: ``f2`` < ``f10``."""
    return [(0, int(t)) if t.isdigit() else (1, t.lower()) for t in re.split(r"(\d+)", name) if t]


def list_frames(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTS),
        key=lambda p: natural_key(p.name),
    )


def read_frames_folder(path: str | Path, audio: str | Path | None = None) -> Clip:
    """A lazy clip from ``path``'s frames and its single audio file (or ``audio`` when given)."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"cannot read frames folder {folder}: not a folder")
    frames = list_frames(folder)
    if not frames:
        raise InputError(f"no frames (png/jpg) in folder {folder}")
    if audio is None:
        audios = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTS)
        if not audios:
            raise InputError(f"no audio file (wav/flac/mp3) in folder {folder}")
        if len(audios) > 1:
            names = ", ".join(p.name for p in audios)
            raise InputError(f"several audio files in folder {folder} ({names}); keep exactly one")
        audio_path = audios[0]
    else:
        audio_path = Path(audio)

    # Headers only: oversized frames are refused and mixed sizes found before anything is decoded.
    sizes = [image_size(p, "frame") for p in frames]
    warnings: list[str] = []
    if len(set(sizes)) > 1:
        odd = next(p for p, s in zip(frames, sizes) if s != sizes[0])
        warnings.append(f"frames in {folder} have {len(set(sizes))} different sizes (e.g. {odd.name}); "
                        f"all are resized to {sizes[0][0]}x{sizes[0][1]}, the first frame's size")
    target = sizes[0] if warnings else None

    def frame_loader(i: int) -> Image:
        if not 0 <= i < len(frames):
            raise IndexError(f"frame {i} out of range for {folder} ({len(frames)} frames)")
        return read_rgb(frames[i], "frame", size=target)

    def audio_loader() -> tuple[FloatArray, int]:
        return load_audio(audio_path)

    timestamps = [i + FRAME_OFFSET for i in range(len(frames))]
    meta = {"source": str(folder), "frame_files": [p.name for p in frames], "audio_file": audio_path.name,
            "warnings": warnings}
    return Clip(
        clip_id=folder.name,
        timestamps=timestamps,
        audio_loader=audiocheck.checked(audio_loader, audio_path.name, timestamps, meta),
        frame_loader=frame_loader,
        meta=meta,
    )
