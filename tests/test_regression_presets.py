"""Every bundled preset gives exactly the masks, counters and eval metrics it gave before the refactors.

tests/regression/presets.json holds each case's composed spec and presets.npz its masks on a
synthetic 3-frame clip, both saved by ``python -m tests.regression.generate`` with the
frame-local executor. The specs run here through today's executor.

History: the clip-level executor, the registry rework and the hostile-input checks were merged
with this snapshot unchanged. Then the tiny GroundingDINO's width changed (d_model 32 -> 64, to
fix a GroupNorm crash on one-frame batches), so the two gdino cases (at-gdino-sam, bavs) were
re-snapshotted; at-gdino-sam's stored spec carries the old 31-tag deny list, which is no longer a
default. The stored specs use today's parameter names (bind's mode-named thresholds; owod's
in-proposer NMS/top-k written out, as they were the old defaults).

Issue 22 (steps-only specs, the kinds table, one executor path) froze every bundled preset, the
run counters (counters.json) and eval's metrics on a synthetic S4 tree (eval.json) before touching
the core; the preset files must still compose to what the stored specs execute.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.regression.generate import EVAL_CASES, eval_case, make_clip, make_s4, run_case_full

HERE = Path(__file__).parent / "regression"
SPECS = json.loads((HERE / "presets.json").read_text())
COUNTERS = json.loads((HERE / "counters.json").read_text())
EVALS = json.loads((HERE / "eval.json").read_text())


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_clip(tmp_path_factory.mktemp("regression"))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_preset_masks_unchanged(clip, name: str) -> None:  # type: ignore[no-untyped-def]
    expected = np.load(HERE / "presets.npz")[name]
    assert expected.any(), "a snapshot of empty masks could not catch a change"
    masks, counters = run_case_full(SPECS[name], clip)
    got = np.stack(masks)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected), f"{name}: {int((got != expected).sum())} pixels differ"
    # the counters' names and values: what was computed, and how often (one batch per clip, ...)
    assert counters == COUNTERS[name]


def test_every_bundled_preset_is_frozen() -> None:
    presets = {p.stem for p in (Path(__file__).parents[1] / "avseg" / "presets").glob("*.yaml")}
    assert presets <= set(SPECS), f"not in the regression snapshot: {sorted(presets - set(SPECS))}"


@pytest.mark.parametrize("name", sorted(EVAL_CASES))
def test_eval_metrics_unchanged(tmp_path: Path, name: str) -> None:
    preset, sets = EVAL_CASES[name]
    got = eval_case(preset, sets, make_s4(tmp_path), tmp_path / "out")
    assert got == EVALS[name]


PLANS = json.loads((HERE / "plans.json").read_text())


@pytest.mark.parametrize("name", sorted(PLANS))
def test_preset_files_still_compose_to_the_frozen_plans(name: str) -> None:
    """Each preset file (with its case's overrides) executes exactly the frozen plan: every
    step's kind, name and full config in order, the combiner, the audio windows."""
    from avseg.registry import load_registry
    from avseg.spec import compose
    from tests.regression.generate import CASES, plan

    preset, sets = CASES[name]
    assert plan(compose(preset, sets=sets, registry=load_registry())) == PLANS[name]
