"""What a loaded pipeline returns for one input: masks as arrays, every proposal's story, views.

Built from the pipeline's :class:`~avseg.types.FrameResult`, whose ``trace`` holds the typed
records of avseg/trace.py (every proposal with each filter's score and, when dropped, which step
dropped it and why): read as they are, never re-parsed.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avseg.trace import ObjectTrace, TagTrace
from avseg.types import BoolArray, Clip, FrameResult, Image

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage


@dataclass
class ObjectRecord:
    """One proposal of one frame: where, what, how each filter scored it, and its fate.

    ``mask`` is set for kept objects once a segmenter (or a masking proposer) ran; dropped
    proposals have none. ``dropped_by``/``reason`` say which filter removed it and why.
    """

    id: int
    box: tuple[float, float, float, float]
    label: str | None
    score: float
    scores: dict[str, float]
    kept: bool
    dropped_by: str | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    mask: BoolArray | None = field(default=None, repr=False)


@dataclass
class FrameView:
    """One frame's output: its mask (and label map when labelled), audio tags and objects."""

    index: int
    time: float
    mask: BoolArray = field(repr=False)
    objects: list[ObjectRecord]
    tags: dict[str, float]
    dropped_tags: list[dict[str, Any]]
    labels: list[str]
    label_map: np.ndarray | None = field(default=None, repr=False)

    @property
    def kept(self) -> list[ObjectRecord]:
        return [o for o in self.objects if o.kept]

    @property
    def dropped(self) -> list[ObjectRecord]:
        return [o for o in self.objects if not o.kept]


def _objects(fr: FrameResult) -> list[ObjectRecord]:
    objs = [ObjectRecord(id=r.id, box=(r.box[0], r.box[1], r.box[2], r.box[3]), label=r.label, score=r.score,
                         scores=dict(r.scores), kept=r.kept, dropped_by=r.dropped_by, reason=r.reason,
                         detail=dict(r.detail))
            for r in fr.trace if isinstance(r, ObjectTrace)]
    # The kept proposals carry the masks; pair each with its trace record by box (the trace rounds boxes).
    if fr.kept.masks is not None:
        free = [o for o in objs if o.kept]
        for j in range(len(fr.kept)):
            if not free:
                break
            b = fr.kept.boxes[j]
            best = min(free, key=lambda o: float(np.abs(np.asarray(o.box) - b).sum()))
            best.mask = fr.kept.masks[j]
            free.remove(best)
    return objs


class Result:
    """A pipeline's output for one clip.

    - ``masks``: (T, H, W) bool; ``label_maps``: (T, H, W) int32 (0 background, ``k`` is
      ``frames[i].labels[k-1]``) when the pipeline labels its objects, else None;
    - ``frames[i]``: a :class:`FrameView` with ``objects`` (every proposal: box, label, each
      filter's score, kept or dropped and why), ``tags`` and ``mask``;
    - ``timings`` (seconds per stage) and ``counters`` of this call (the first call also counts
      the model loads); ``meta`` is what run.json records;
    - ``overlay(i)``/``debug_view(i)`` are PIL images; ``save(dir)`` writes what ``avseg run`` writes.
    """

    def __init__(self, clip: Clip, frames: list[FrameResult], meta: dict[str, Any], *,
                 video_fps: float | None = None, wall_time: float = 0.0) -> None:
        self.clip = clip
        self.frame_results = frames
        self.meta = meta
        self.video_fps = video_fps
        self.wall_time = wall_time
        self.frames = [
            FrameView(index=fr.index, time=float(clip.timestamps[fr.index]), mask=fr.mask, objects=_objects(fr),
                      tags=fr.tags.as_dict() if fr.tags is not None else {},
                      dropped_tags=[{"tag": r.tag, "p": r.p, "dropped_by": r.dropped_by, "reason": r.reason}
                                    for r in fr.trace if isinstance(r, TagTrace)],
                      labels=list(fr.labels), label_map=fr.label_map)
            for fr in frames
        ]

    @property
    def clip_id(self) -> str:
        return self.clip.clip_id

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.meta.get("config", {}))

    @property
    def timings(self) -> dict[str, float]:
        return dict(self.meta.get("timings", {}))

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.meta.get("counters", {}))

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def masks(self) -> BoolArray:
        shapes = {f.mask.shape for f in self.frames}
        if len(shapes) > 1:
            raise ValueError(f"frames differ in size ({sorted(shapes)}): use result.frames[i].mask")
        if not self.frames:
            return np.zeros((0, 0, 0), bool)
        return np.stack([f.mask for f in self.frames]).astype(bool)

    @property
    def label_maps(self) -> np.ndarray | None:
        if all(f.label_map is None for f in self.frames):
            return None
        maps = [f.label_map if f.label_map is not None else np.zeros(f.mask.shape, np.int32) for f in self.frames]
        return np.stack(maps)

    # -- views -----------------------------------------------------------------------------
    def image(self, i: int) -> Image:
        """Frame ``i`` as the pipeline saw it (RGB uint8)."""
        return self.clip.frame(self.frame_results[i].index)

    def overlay(self, i: int) -> PILImage:
        """Frame ``i`` with its mask tinted and the kept boxes labelled (what overlays/ holds)."""
        from PIL import Image as PILImageModule

        from avseg.outputs import overlay

        return PILImageModule.fromarray(overlay(self.image(i), self.frame_results[i]))

    def debug_view(self, i: int) -> PILImage:
        """Frame ``i`` with every proposal numbered and a legend beside it (what debug/ holds)."""
        from PIL import Image as PILImageModule

        from avseg.outputs import debug_view

        return PILImageModule.fromarray(debug_view(self.image(i), self.frame_results[i]))

    def contact_sheet(self, max_frames: int = 8, height: int = 160) -> PILImage:
        """The first ``max_frames`` overlays side by side, each ``height`` pixels tall."""
        from PIL import Image as PILImageModule

        tiles = []
        for i in range(min(max_frames, len(self.frames))):
            im = self.overlay(i)
            w = max(1, round(im.width * height / max(1, im.height)))
            tiles.append(im.resize((w, height)))
        sheet = PILImageModule.new("RGB", (max(1, sum(t.width for t in tiles) + 4 * max(0, len(tiles) - 1)), height),
                                   (255, 255, 255))
        x = 0
        for t in tiles:
            sheet.paste(t, (x, 0))
            x += t.width + 4
        return sheet

    def save(self, out_dir: str | Path, *, debug: bool = False) -> Path:
        """Write masks/, overlays/, run.json (and overlay.mp4 for a video, debug/ with ``debug``): as ``avseg run``."""
        from avseg.run_record import write_run_dir

        out = Path(out_dir)
        write_run_dir(out, self.clip, self.frame_results, self.meta, debug=debug, video_fps=self.video_fps,
                      wall_time=self.wall_time)
        return out

    # -- display -----------------------------------------------------------------------------
    def __repr__(self) -> str:
        kept = sum(len(f.kept) for f in self.frames)
        return f"<avseg Result {self.clip_id}: {len(self.frames)} frames, {kept} kept objects>"

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.contact_sheet().save(buf, format="PNG")
        return buf.getvalue()

    def _repr_html_(self) -> str:
        png = base64.b64encode(self._repr_png_()).decode()
        rows = []
        for f in self.frames:
            tags = ", ".join(f"{html.escape(n)} {p:.2f}" for n, p in list(f.tags.items())[:3])
            kept = ", ".join(html.escape(o.label or f"#{o.id}") for o in f.kept)
            rows.append(f"<tr><td>{f.index}</td><td>{f.time:.2f}</td><td>{len(f.objects)}</td>"
                        f"<td>{kept or '-'}</td><td>{int(f.mask.sum())}</td><td>{tags or '-'}</td></tr>")
        return (f"<div><b>{html.escape(self.clip_id)}</b>: {len(self.frames)} frames"
                f"<br><img src='data:image/png;base64,{png}' alt='overlays'>"
                "<table><tr><th>frame</th><th>t (s)</th><th>proposals</th><th>kept</th><th>mask px</th>"
                f"<th>top tags</th></tr>{''.join(rows)}</table></div>")
