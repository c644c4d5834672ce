"""``top-k`` at its boundaries: k = 1, ties, one proposal, the default k of 100, and through a
pipeline (what a user sees: the kept objects and each dropped one's rank)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from avseg_filters.topk import TopK
from pydantic import ValidationError

from avseg.components import FrameContext
from avseg.types import Proposals

FRAME = np.zeros((20, 20, 3), np.uint8)


def top(scores: list[float], **cfg: Any) -> Any:
    props = Proposals(np.zeros((len(scores), 4), np.float32), np.array(scores, np.float32))
    return TopK(TopK.Config(**cfg), runtime=None)(FrameContext("c", 0, FRAME, proposals=props))  # type: ignore[arg-type]


def test_k_one_keeps_the_best_wherever_it_is() -> None:
    r = top([0.2, 0.3, 0.9, 0.1], k=1)
    assert r.keep == [2]
    assert {i: d.reason for i, d in r.drops.items()} == {1: "rank 2 by score, beyond top-1",
                                                         0: "rank 3 by score, beyond top-1",
                                                         3: "rank 4 by score, beyond top-1"}
    assert r.drops[1].score == pytest.approx(0.3) and r.drops[1].filter == "top-k"
    assert r.scores == pytest.approx([0.2, 0.3, 0.9, 0.1])


def test_exactly_k_proposals_are_all_kept() -> None:
    r = top([0.5, 0.4], k=2)
    assert r.keep == [0, 1] and r.drops == {}
    assert top([0.7], k=1).keep == [0]


def test_ties_keep_the_earlier_one() -> None:
    assert top([0.5, 0.9, 0.5, 0.5], k=2).keep == [0, 1]


def test_the_default_keeps_a_hundred() -> None:
    r = top([1.0 - i / 1000 for i in range(101)])
    assert r.keep == list(range(100)) and list(r.drops) == [100]


def test_nothing_to_rank() -> None:
    assert top([], k=3).keep == []
    assert TopK(TopK.Config(), runtime=None)(FrameContext("c", 0, FRAME)).keep == []  # type: ignore[arg-type]


def test_k_must_be_at_least_one() -> None:
    assert TopK.Config(k=1).k == 1
    with pytest.raises(ValidationError):
        TopK.Config(k=0)
