"""A test plugin that uses the extension hooks: a CLI command, a dataset reader and two metrics.

Registered in fixtures, directly and as an installed-looking distribution (tests/fakes.FakeDist).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer

from avseg import hookimpl
from avseg.data import Dataset, S4Dataset


def s4_every_other(root: str | Path, split: str) -> Dataset:
    """S4 clips 0, 2, 4, ... of the split (a dataset reader: root, split -> Dataset)."""
    full = S4Dataset(root, split)
    return full.select(clips=full.ids[::2])


def fg_fraction(pred: np.ndarray, gt: np.ndarray) -> float:
    """Per frame: the share of the frame predicted as foreground."""
    return float(pred.mean())


def any_hit(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> float:
    """Per clip: 1 when some frame's IoU is at least 0.5."""
    ious = [(p & g).sum() / max((p | g).sum(), 1) for p, g in zip(preds, gts)]
    return float(max(ious, default=0.0) >= 0.5)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("frame-count")
    def frame_count(input: Path = typer.Argument(..., help="A video or frames folder.")) -> None:
        """Print how many frames an input has."""
        from avseg.data import open_input

        typer.echo(f"{input.name}: {open_input(input).num_frames} frames")


@hookimpl
def register_datasets(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("s4-every-other", s4_every_other)


@hookimpl
def register_metrics(register: Callable[..., None]) -> None:
    register("fg-fraction", fg_fraction, per="frame")
    register("any-hit", any_hit, per="clip")
