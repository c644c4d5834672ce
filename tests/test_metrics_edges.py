"""Metric values at their edges, written to kill the mutants `make mutants` found surviving in
avseg/eval/metrics.py (docs/testing.md): empty accumulators, per-clip F as a max over thresholds,
fscore_b1 apart from the batched F, the semantic per-clip J, and GT labels out of range."""

from __future__ import annotations

import numpy as np
import pytest

from avseg.eval.metrics import BinaryMetrics, SemanticMetrics, frame_fcurve

GT = np.zeros((8, 8), bool)
GT[2:6, 2:6] = True


def soft(on_gt: float, background: float = 0.0) -> np.ndarray:
    """A probability map: ``on_gt`` on the GT square, ``background`` elsewhere."""
    return np.where(GT, on_gt, background).astype(np.float32)


def test_empty_accumulators_score_zero() -> None:
    r = BinaryMetrics().result()
    assert {k: r[k] for k in ("miou", "miou_frame", "fscore", "fscore_b1", "fscore_dataset", "n_clips")} == {
        "miou": 0.0, "miou_frame": 0.0, "fscore": 0.0, "fscore_b1": 0.0, "fscore_dataset": 0.0, "n_clips": 0.0}
    s = SemanticMetrics(3).result()
    assert (s["miou_present"], s["fscore_present"], s["n_classes_present"]) == (0.0, 0.0, 0.0)


def test_a_clip_whose_gt_is_always_empty_has_f_zero() -> None:
    m = BinaryMetrics()
    m.add_clip("empty", [np.zeros((8, 8), bool)] * 2, [np.zeros((8, 8), bool)] * 2)
    assert m.per_clip()["empty"]["f"] == 0.0


def test_per_clip_f_is_the_max_over_thresholds_of_the_mean_curve() -> None:
    """0.4 on the object: perfect up to threshold 0.4, nothing above. The clip's F is 1 (the best
    threshold), not the curve's mean."""
    m = BinaryMetrics()
    m.add_clip("c", [soft(0.4)], [GT])
    curve = frame_fcurve(soft(0.4), GT)
    assert curve is not None and 0.2 < curve.mean() < 0.6
    assert m.per_clip()["c"]["f"] == pytest.approx(1.0, abs=1e-6)


def test_fscore_b1_is_per_video_even_when_batches_hold_two() -> None:
    """Two clips whose F curves peak at different thresholds: per video (b1) both reach 1; batched
    by two, the mean curve never does."""
    a = soft(1.0, background=0.5)  # false positives below 0.5, perfect above
    b = soft(0.4)  # perfect up to 0.4, empty above
    m = BinaryMetrics()
    m.add_clip("a", [a], [GT])
    m.add_clip("b", [b], [GT])
    two = m.result(batch_videos=2)
    one = m.result(batch_videos=1)
    assert two["fscore_b1"] == pytest.approx(1.0, abs=1e-6) == one["fscore"] == one["fscore_b1"]
    assert two["fscore"] < 0.9


def test_semantic_clip_j_averages_the_nonzero_class_ious() -> None:
    """Frame 1: background IoU 12/16 ... computed by hand; J is sum / count of non-zero IoUs."""
    gt = np.zeros((4, 4), np.int64)
    gt[:, 2:] = 1  # 8 background, 8 class 1
    pred = np.zeros((4, 4), np.int64)
    pred[:, 1:] = 1  # 4 background (all right), 12 class 1 (8 right)
    m = SemanticMetrics(3)
    m.add_clip("c", [pred], [gt])
    iou_bg, iou_1 = 4 / 8, 8 / 12
    assert m.per_clip()["c"]["j"] == pytest.approx((iou_bg + iou_1) / 2, abs=1e-9)


def test_gt_labels_outside_the_classes_are_ignored_for_the_prediction_too() -> None:
    """A GT pixel labelled num_classes (or 255) is ignored: what is predicted there counts nowhere."""
    gt = np.zeros((2, 4), np.int64)
    gt[:, 2:] = 1
    gt[0, 0] = 3  # == num_classes: out of range
    gt[1, 0] = 255
    pred = np.zeros((2, 4), np.int64)
    pred[:, 2:] = 1
    pred[:, 0] = 1  # wrong only where the GT is ignored
    m = SemanticMetrics(3)
    m.add_clip("c", [pred], [gt])
    pc = m.per_class()
    assert pc["iou"][:2] == pytest.approx([1.0, 1.0], abs=1e-9) and pc["fscore"][:2] == pytest.approx([1.0, 1.0])


def test_missing_clips_are_named_at_most_five() -> None:
    m = BinaryMetrics()
    with pytest.raises(KeyError) as e:
        m.result(order=[f"clip{i}" for i in range(7)])
    msg = str(e.value)
    assert "clip4" in msg and "clip5" not in msg
