"""The five bundled presets give exactly the masks they gave before the executor refactor.

tests/regression/presets.json holds each case's composed spec and presets.npz its masks on a
synthetic 3-frame clip, both saved by ``python -m tests.regression.generate`` with the
frame-local executor. The specs run here through today's executor.

History: the clip-level executor, the registry rework and the hostile-input checks were merged
with this snapshot unchanged. Then the tiny GroundingDINO's width changed (d_model 32 -> 64, to
fix a GroupNorm crash on one-frame batches), so the two gdino cases (at-gdino-sam, bavs) were
re-snapshotted; at-gdino-sam's stored spec carries the old 31-tag deny list, which is no longer a
default. The stored specs use today's parameter names (bind's mode-named thresholds; owod's
in-proposer NMS/top-k written out, as they were the old defaults).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.regression.generate import make_clip, run_case

HERE = Path(__file__).parent / "regression"
SPECS = json.loads((HERE / "presets.json").read_text())


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_clip(tmp_path_factory.mktemp("regression"))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_preset_masks_unchanged(clip, name: str) -> None:  # type: ignore[no-untyped-def]
    expected = np.load(HERE / "presets.npz")[name]
    assert expected.any(), "a snapshot of empty masks could not catch a change"
    got = np.stack(run_case(SPECS[name], clip))
    assert got.shape == expected.shape
    assert np.array_equal(got, expected), f"{name}: {int((got != expected).sum())} pixels differ"
