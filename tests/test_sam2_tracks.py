"""SAM 2's track merging and per-frame proposals at their boundaries (pure numpy, hand-computed;
the model's propagation itself: tests/test_plugin_sam2.py)."""

from __future__ import annotations

import numpy as np
import pytest
from avseg_sam2.tracks import Track, mask_iou, merge_tracks, track_iou, tracks_to_proposals


def rect(x0: int, y0: int, x1: int, y1: int, shape: tuple[int, int] = (10, 10)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_mask_iou_by_hand() -> None:
    a, b = rect(0, 0, 4, 4), rect(2, 0, 6, 4)  # 8 / 24
    assert mask_iou(a, b) == pytest.approx(8 / 24)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, rect(5, 5, 7, 7)) == 0.0
    empty = np.zeros((10, 10), bool)
    assert mask_iou(empty, empty) == 0.0
    assert mask_iou(a, empty) == 0.0


def test_track_iou_averages_only_frames_both_reached_with_something_in_them() -> None:
    a, b = rect(0, 0, 4, 4), rect(2, 0, 6, 4)
    empty = np.zeros((10, 10), bool)
    t = Track(0, 0.9, None, {0: a, 1: a, 2: empty, 3: a})
    u = Track(1, 0.8, None, {1: a, 2: empty, 3: b, 4: b})
    # frames both reached: 1, 2, 3; frame 2 is empty in both (ignored): mean(1, 1/3)
    assert track_iou(t, u) == pytest.approx((1 + 8 / 24) / 2)
    assert track_iou(u, t) == pytest.approx((1 + 8 / 24) / 2)
    # a frame where only one is empty counts as IoU 0
    v = Track(1, 0.8, None, {1: empty, 3: b})
    assert track_iou(t, v) == pytest.approx((0 + 8 / 24) / 2)
    assert track_iou(t, Track(5, 0.1, None, {7: a})) == 0.0  # no frame in common
    assert track_iou(Track(0, 0.1, None, {0: empty}), Track(0, 0.2, None, {0: empty})) == 0.0


def test_merge_at_exactly_the_threshold_and_best_score_first_wherever_it_is() -> None:
    a, b = rect(0, 0, 4, 4), rect(2, 0, 6, 4)  # IoU 1/3 in the frames both reach
    far = rect(6, 6, 9, 9)
    low = Track(0, 0.2, "low", {0: a, 1: a}, {0: 0.1, 1: 0.2})
    best = Track(2, 0.9, "best", {1: b, 2: b}, {1: 0.7, 2: 0.8})
    other = Track(0, 0.5, "other", {0: far, 1: far, 2: far})
    kept, merged = merge_tracks([low, other, best], merge_iou=1 / 3)
    assert merged == 1 and [t.label for t in kept] == ["best", "other"]
    # the merged-away track fills the frame the kept one never reached (with its presence)
    assert set(kept[0].masks) == {0, 1, 2}
    np.testing.assert_array_equal(kept[0].masks[0], a)
    np.testing.assert_array_equal(kept[0].masks[1], b)  # a frame the kept one has stays its own
    assert kept[0].presence == {0: 0.1, 1: 0.7, 2: 0.8}
    assert set(best.masks) == {1, 2}  # the input tracks are not modified
    kept, merged = merge_tracks([low, other, best], merge_iou=1 / 3 + 1e-9)
    assert merged == 0 and [t.label for t in kept] == ["best", "other", "low"]
    # a merged track without a presence for a frame gives 0.0 there
    nopres = Track(0, 0.1, "n", {0: a, 1: b})
    kept, _ = merge_tracks([best, nopres], merge_iou=1.0)
    assert kept[0].presence[0] == 0.0


def test_merge_ties_go_to_the_earlier_frame_then_the_earlier_track() -> None:
    a = rect(0, 0, 4, 4)
    later = Track(3, 0.5, "later", {3: a})
    earlier = Track(1, 0.5, "earlier", {3: a})
    first = Track(1, 0.5, "first", {3: a})
    kept, merged = merge_tracks([later, first, earlier], merge_iou=0.5)
    assert merged == 2 and [t.label for t in kept] == ["first"]
    kept, merged = merge_tracks([later, earlier], merge_iou=0.5)
    assert [t.label for t in kept] == ["earlier"]
    assert merge_tracks([], 0.5) == ([], 0)


def test_tracks_to_proposals_boxes_scores_labels_presence() -> None:
    m = rect(2, 1, 5, 7, (8, 6))  # x 2..4, y 1..6 -> box [2, 1, 5, 7]
    one_px = rect(0, 0, 1, 1, (8, 6))
    t = Track(0, 0.8, "dog", {0: m, 2: one_px}, {0: 0.4})
    u = Track(1, 0.3, None, {0: one_px, 1: np.zeros((8, 6), bool)}, {0: 0.9})
    props = tracks_to_proposals([t, u], 3, [(8, 6)] * 3, labelled=True)
    assert [len(p) for p in props] == [2, 0, 1]
    # a track missing from a frame (or empty there) does not hide the tracks after it
    later = Track(2, 0.1, "later", {1: m, 2: m})
    assert [len(p) for p in tracks_to_proposals([t, u, later], 3, [(8, 6)] * 3, labelled=True)] == [2, 1, 2]
    assert [len(p) for p in tracks_to_proposals([u, later], 3, [(8, 6)] * 3, labelled=True)] == [1, 1, 1]
    np.testing.assert_array_equal(props[0].boxes, [[2, 1, 5, 7], [0, 0, 1, 1]])
    np.testing.assert_allclose(props[0].scores, [0.8, 0.3])
    assert props[0].labels == ["dog", ""]
    np.testing.assert_allclose(props[0].mask_scores, [0.4, 0.9])
    np.testing.assert_allclose(props[2].mask_scores, [0.0])  # no presence recorded: 0
    np.testing.assert_array_equal(props[0].masks, np.stack([m, one_px]))
    assert props[1].masks.shape == (0, 8, 6) and props[1].boxes.shape == (0, 4)
    unlabelled = tracks_to_proposals([t], 1, [(8, 6)], labelled=False)
    assert unlabelled[0].labels is None
