"""Small helpers shared by test files."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from avseg.cli import main


def random_frames(shapes: Sequence[tuple[int, int]], seed: int = 0) -> list[np.ndarray]:
    """Seeded noise frames (uint8 RGB) of the given (height, width) shapes."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the avseg CLI in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err
