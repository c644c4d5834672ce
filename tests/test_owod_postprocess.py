"""owod's post-processing and frame shrinking at their boundaries, computed by hand.

``postprocess`` turns one frame's raw OWLv2 outputs (objectness logits, cxcywh boxes normalised
to the bottom/right-padded square) into pixel boxes and scores; these tests feed it chosen
numbers, so every expected box, score and order is written out below (the model itself is
compared with upstream transformers in tests/test_plugin_owod.py). Fast: no model is built.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.deps import requires

torch = requires("torch")
requires("torchvision")

from avseg_owod.proposer import SHRINK_ABOVE, postprocess, shrink_for  # noqa: E402


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def raw(rows: list[tuple[float, float, float, float, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, cxcywh boxes) from rows of (score, cx, cy, w, h)."""
    a = np.array(rows, dtype=np.float64)
    return (torch.tensor([logit(s) for s in a[:, 0]], dtype=torch.float32),
            torch.tensor(a[:, 1:], dtype=torch.float32))


def test_boxes_scale_by_the_long_side_of_a_wide_frame_and_clip_to_it() -> None:
    # 40 x 80 frame (h, w): padded to an 80 x 80 square, so every coordinate is x 80
    logits, boxes = raw([
        (0.9, 0.25, 0.25, 0.5, 0.25),  # -> 0, 10, 40, 30
        (0.6, 0.5, 0.5, 0.5, 0.5),  # -> 20, 20, 60, 60 -> y clipped at h=40: 20, 20, 60, 40
        (0.7, 0.9, 0.1, 0.4, 0.1),  # -> 56, 4, 88, 12 -> x clipped at w=80
        (0.5, 0.1, 0.1, 0.4, 0.4),  # -> -8, -8, 24, 24 -> clipped at 0
    ])
    b, s = postprocess(logits, boxes, (40, 80))
    np.testing.assert_allclose(b, [[0, 10, 40, 30], [56, 4, 80, 12], [20, 20, 60, 40], [0, 0, 24, 24]], atol=1e-4)
    np.testing.assert_allclose(s, [0.9, 0.7, 0.6, 0.5], atol=1e-6)
    assert b.dtype == s.dtype == np.float32


def test_boxes_scale_by_the_long_side_of_a_tall_frame() -> None:
    # 100 x 50 frame: side 100; x is clipped at 50, y at 100
    logits, boxes = raw([(0.8, 0.3, 0.6, 0.4, 0.2), (0.3, 0.1, 0.05, 0.2, 0.1)])
    b, s = postprocess(logits, boxes, (100, 50))
    np.testing.assert_allclose(b, [[10, 50, 50, 70], [0, 0, 20, 10]], atol=1e-4)
    np.testing.assert_allclose(s, [0.8, 0.3], atol=1e-6)


def test_boxes_wholly_in_the_padding_or_of_zero_width_are_dropped() -> None:
    # 40 x 80 frame: rows 40..80 of the square are padding
    logits, boxes = raw([
        (0.9, 0.5, 0.75, 0.2, 0.2),  # y 52..68: in the padding -> dropped
        (0.8, 0.5, 0.625, 0.2, 0.25),  # y 40..60: touches the frame's bottom edge only -> dropped
        (0.7, 0.5, 0.5, 0.0, 0.2),  # zero width -> dropped
        (0.6, 0.5, 0.5, 0.2, 0.0),  # zero height -> dropped
        (0.5, 0.5, 0.4875, 0.2, 0.025),  # y 38..40: the last two rows -> kept
        (0.4, 1.1, 0.25, 0.1, 0.1),  # x 84..92: right of the frame -> dropped
    ])
    b, s = postprocess(logits, boxes, (40, 80))
    np.testing.assert_allclose(b, [[32, 38, 48, 40]], atol=1e-4)
    np.testing.assert_allclose(s, [0.5], atol=1e-6)


def test_sorted_by_score_wherever_the_best_box_is() -> None:
    rows = [(0.2, 0.2, 0.2, 0.1, 0.1), (0.95, 0.5, 0.5, 0.1, 0.1), (0.6, 0.8, 0.8, 0.1, 0.1)]
    logits, boxes = raw(rows)
    b, s = postprocess(logits, boxes, (100, 100))
    np.testing.assert_allclose(s, [0.95, 0.6, 0.2], atol=1e-6)
    np.testing.assert_allclose(b[:, 0], [45, 75, 15], atol=1e-4)
    b2, s2 = postprocess(logits, boxes, (100, 100), top_k=2)
    np.testing.assert_allclose(s2, [0.95, 0.6], atol=1e-6)
    np.testing.assert_allclose(b2, b[:2], atol=1e-6)
    assert len(postprocess(logits, boxes, (100, 100), top_k=1)[0]) == 1
    assert len(postprocess(logits, boxes, (100, 100), top_k=3)[0]) == 3


def test_ties_keep_their_order() -> None:
    logits, boxes = raw([(0.5, 0.1, 0.1, 0.1, 0.1), (0.5, 0.5, 0.5, 0.1, 0.1), (0.5, 0.9, 0.9, 0.1, 0.1)])
    b, _ = postprocess(logits, boxes, (10, 10))
    np.testing.assert_allclose(b[:, 0], [0.5, 4.5, 8.5], atol=1e-5)
    # many equal scores (an unstable sort reorders 17 or more): still in the model's order
    logits, boxes = raw([(0.5 if i % 3 else 0.25, (i + 0.5) / 40, 0.5, 0.01, 0.1) for i in range(40)])
    b, s = postprocess(logits, boxes, (40, 40))
    x0 = np.arange(40) + 0.3
    np.testing.assert_allclose(b[:, 0], np.concatenate([x0[np.arange(40) % 3 != 0], x0[::3]]), atol=1e-4)
    np.testing.assert_allclose(s, [0.5] * 26 + [0.25] * 14, atol=1e-6)


def test_box_threshold_drops_a_score_exactly_at_it() -> None:
    # logit 0 is a score of exactly 0.5: "exceeds the threshold" keeps it only below 0.5
    logits = torch.tensor([0.0, 2.0, -2.0])
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2]] * 3)
    _, s = postprocess(logits, boxes, (10, 10), box_threshold=0.5)
    np.testing.assert_allclose(s, [1 / (1 + np.exp(-2.0))], atol=1e-6)
    _, s = postprocess(logits, boxes, (10, 10), box_threshold=0.4999)
    np.testing.assert_allclose(s, [1 / (1 + np.exp(-2.0)), 0.5], atol=1e-6)
    assert len(postprocess(logits, boxes, (10, 10), box_threshold=None)[1]) == 3
    assert len(postprocess(logits, boxes, (10, 10), box_threshold=0.0)[1]) == 3


def test_nms_at_its_iou_and_then_top_k() -> None:
    # in a 100 x 100 frame: A = 0..40 x 0..40 (best), B = 0..40 x 10..50 (IoU with A 30/50 = 0.6),
    # C = 60..80 x 60..80 (disjoint, worst)
    logits, boxes = raw([(0.7, 0.2, 0.3, 0.4, 0.4), (0.3, 0.7, 0.7, 0.2, 0.2), (0.9, 0.2, 0.2, 0.4, 0.4)])
    b, s = postprocess(logits, boxes, (100, 100), nms_iou=0.5)
    np.testing.assert_allclose(s, [0.9, 0.3], atol=1e-6)  # B suppressed: IoU 0.6 > 0.5
    np.testing.assert_allclose(b, [[0, 0, 40, 40], [60, 60, 80, 80]], atol=1e-4)
    _, s = postprocess(logits, boxes, (100, 100), nms_iou=0.7)
    np.testing.assert_allclose(s, [0.9, 0.7, 0.3], atol=1e-6)  # IoU 0.6 <= 0.7: all kept
    # top_k after NMS: two distinct boxes survive, not the best two before it
    b, s = postprocess(logits, boxes, (100, 100), nms_iou=0.5, top_k=2)
    np.testing.assert_allclose(s, [0.9, 0.3], atol=1e-6)
    # nothing left before NMS: an empty result, not an error
    b, s = postprocess(logits, boxes, (100, 100), box_threshold=0.95, nms_iou=0.5)
    assert b.shape == (0, 4) and s.shape == (0,)


@pytest.mark.parametrize("side", [64, 960])
def test_shrink_only_above_eight_times_the_input_side(side: int) -> None:
    limit = SHRINK_ABOVE * side
    assert SHRINK_ABOVE == 8
    at = np.zeros((4, limit, 3), np.uint8)
    assert shrink_for(at, side) is at  # exactly at the limit: untouched
    tall = np.zeros((limit, 4, 3), np.uint8)
    assert shrink_for(tall, side) is tall


def test_shrink_box_averages_by_the_smallest_sufficient_factor() -> None:
    side = 4  # limit 32 px
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (8, 33, 3), dtype=np.uint8)  # one pixel over: factor 2
    small = shrink_for(frame, side)
    assert small.shape == (4, 17, 3) and small.dtype == np.uint8
    # PIL's reduce: the mean of each 2x2 block (the last column: its 2x1 block), rounded
    blocks = frame[:, :32].reshape(4, 2, 16, 2, 3).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_allclose(small[:, :16], blocks, atol=0.51)
    np.testing.assert_allclose(small[:, 16], frame[:, 32].reshape(4, 2, 3).mean(axis=1), atol=0.51)
    frame = rng.integers(0, 256, (6, 65, 3), dtype=np.uint8)  # 65 px: factor 3 (2 leaves 33 > 32)
    assert shrink_for(frame, side).shape == (2, 22, 3)
    frame = rng.integers(0, 256, (6, 64, 3), dtype=np.uint8)  # 64 px: factor 2 is enough
    assert shrink_for(frame, side).shape == (3, 32, 3)
