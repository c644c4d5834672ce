"""bind, avis (and its audio-visual tree), av-sync and the refiners at their boundaries, called
directly: the fast tests ``make mutants`` adds to each module's own (scripts/mutants.py)."""

from __future__ import annotations

import numpy as np
import pytest
from avseg_filters.bind import BindFilter, bind_scores
from pydantic import ValidationError


# -- bind ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["cosine", "softmax", "minmax"])
def test_bind_scores_of_no_regions_are_empty(mode: str) -> None:
    out = bind_scores(np.zeros((0, 3), np.float32), np.ones(3, np.float32), mode)
    assert out.shape == (0,)


@pytest.mark.parametrize(("field", "ok", "bad"), [
    ("cosine_threshold", [-1.0, 1.0], [-1.25, 1.25]),
    ("softmax_threshold", [0.0, 1.0], [-0.25, 1.25]),
    ("minmax_threshold", [0.0, 1.0], [-0.25, 1.25]),
    ("temperature", [0.0078125], [0.0, -1.0]),
])
def test_bind_threshold_bounds(field: str, ok: list[float], bad: list[float]) -> None:
    mode = {"cosine_threshold": "cosine", "minmax_threshold": "minmax"}.get(field, "softmax")
    for v in ok:
        assert getattr(BindFilter.Config(mode=mode, **{field: v}), field) == v
    for v in bad:
        with pytest.raises(ValidationError, match=field):
            BindFilter.Config(mode=mode, **{field: v})


def test_bind_refuses_the_removed_parameter_threshold_but_not_none() -> None:
    with pytest.raises(ValidationError, match="use cosine_threshold=0.6 for mode 'cosine'"):
        BindFilter.Config(threshold=0.6)
    cfg = BindFilter.Config(threshold=None, mode="minmax")
    assert cfg.threshold is None and cfg.effective_threshold == 0.5


def test_bind_drop_reason_shows_as_many_digits_as_tell_score_and_threshold_apart() -> None:
    from avseg_filters.bind import _two_different

    assert _two_different(0.699, 0.7) == ("0.699", "0.700")
    below = float(np.nextafter(0.7, 0.0))  # differs from 0.7 in the 16th decimal only
    assert _two_different(below, 0.7) == ("0.6999999999999998", "0.7000000000000000")
    assert _two_different(0.7, 0.7) == ("0.7", "0.7")
    # the same to 16 decimals: both as repr, not 17 fixed decimals
    above = float(np.nextafter(0.1, 1.0))
    assert _two_different(0.1, above) == ("0.1", "0.10000000000000002")


# -- refiners ----------------------------------------------------------------------------------------
def _refiners() -> list:  # type: ignore[type-arg]
    from avseg_refiners.clip_to_box import ClipToBox
    from avseg_refiners.fill_holes import FillHoles
    from avseg_refiners.largest_component import LargestComponent
    from avseg_refiners.merge_parts import MergeParts

    return [cls(cls.Config(), None) for cls in (FillHoles, LargestComponent, ClipToBox, MergeParts)]


def test_refiners_leave_a_frame_without_objects_as_it_is() -> None:
    from avseg.types import Proposals

    frame = np.zeros((6, 8, 3), np.uint8)
    empty = Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [], np.zeros((0, 6, 8), bool))
    for r in _refiners():
        out = r.refine(frame, empty)
        assert len(out) == 0 and out.masks is not None and out.masks.shape == (0, 6, 8), r.name
        assert len(r.refine(frame, Proposals.empty())) == 0, r.name
