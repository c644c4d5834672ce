"""The debug plot of a clip filter's per-object time curves (``detail[filter]["curves"]``).

The ``av-sync`` filter records, for each object, the visual change inside it and the audio
onset curve at the video's frame rate; ``--debug`` draws them next to the frame's debug view
(``debug/NNNNN_curves.png``): one panel per object (kept first), each curve scaled to its panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from avseg.types import Image

MAX_PANELS = 6
AUDIO = (150, 150, 150)


def _curves(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for name, detail in (record.get("detail") or {}).items():
        if isinstance(detail, dict) and isinstance(detail.get("curves"), dict):
            return str(name), detail
    return None


def curves_view(trace: Sequence[Mapping[str, Any]], width: int = 420, panel_h: int = 70) -> Image | None:
    """A plot of every traced object's curves, or None when no record carries any."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from avseg.palette import PALETTE, _font

    rows = [(r, c) for r in trace if "box" in r and (c := _curves(r)) is not None]
    if not rows:
        return None
    rows.sort(key=lambda rc: (not rc[0].get("kept"), rc[0].get("id", 0)))
    rows = rows[:MAX_PANELS]
    canvas = PILImage.new("RGB", (width, panel_h * len(rows)), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    font = _font(11)
    for p, (rec, (name, detail)) in enumerate(rows):
        top = p * panel_h
        colour = PALETTE[p % len(PALETTE)] if rec.get("kept") else (200, 120, 120)
        for key, col in (("audio", AUDIO), ("visual", colour)):
            ys = np.asarray([v for v in detail["curves"].get(key, []) if isinstance(v, (int, float))], np.float64)
            if len(ys) < 2 or not np.all(np.isfinite(ys)):
                continue
            span = ys.max() - ys.min()
            ys = (ys - ys.min()) / span if span > 0 else np.zeros_like(ys)
            xs = np.linspace(4, width - 4, len(ys))
            pts = [(float(x), float(top + panel_h - 6 - y * (panel_h - 22))) for x, y in zip(xs, ys)]
            draw.line(pts, fill=col, width=1)
        sync = detail.get("sync")
        lag = detail.get("lag_s")
        state = "kept" if rec.get("kept") else "dropped"
        title = f"#{rec.get('id')} {name} {sync if sync is not None else ''} lag {lag} s ({state}); grey: audio"
        draw.text((4, top + 2), title, fill=(235, 235, 235), font=font)
    return np.asarray(canvas)
