"""Small helpers shared by test files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def one_line(err: str) -> str:
    """The single non-empty stderr line (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def step_of(config: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The first ``kind`` step's mapping (``{type: NAME, ...}``) of a composed spec or a recorded config."""
    return next((body for x in config["steps"] for k, body in x.items() if k == kind), None)


def steps_of(config: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Every ``kind`` step's mapping, in order."""
    return [body for x in config["steps"] for k, body in x.items() if k == kind]
