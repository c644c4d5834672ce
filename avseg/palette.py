"""Colours and the font of every picture avseg draws (overlays, debug views, curve plots)."""

from __future__ import annotations

from typing import Any

PALETTE = [(0, 220, 0), (255, 200, 0), (0, 200, 255), (255, 90, 200), (255, 140, 0), (170, 120, 255)]


def _font(size: int) -> Any:
    """Pillow's default font at ``size`` px (one bitmap size on older Pillow)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one small bitmap font
        return ImageFont.load_default()
