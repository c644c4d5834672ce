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


# -- second `make mutants` run (full module): the survivors of the mutants the first run never reached
def test_a_clip_without_frames_scores_zero() -> None:
    from avseg.eval.metrics import ClipScores, SemanticClipScores

    assert ClipScores("c", [], [], []).j == 0.0 and ClipScores("c", [], [], []).f == 0.0
    assert SemanticClipScores("c", []).j == 0.0


def test_a_semantic_frame_with_every_iou_zero_counts_zero_in_the_clip_j() -> None:
    """Frame 1 predicts class 2 where the GT is class 1 (every class IoU 0: the frame's J is 0);
    frame 2 is perfect (J 1): the clip's J is their mean, 0.5."""
    gt = np.ones((2, 2), np.int64)
    m = SemanticMetrics(3)
    m.add_clip("c", [np.full((2, 2), 2, np.int64), gt], [gt, gt])
    assert m.per_clip()["c"]["j"] == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize("bad", [-1, 3])
def test_predicted_class_indices_outside_the_classes_are_refused(bad: int) -> None:
    gt = np.zeros((2, 2), np.int64)
    pred = gt.copy()
    pred[0, 0] = bad
    with pytest.raises(ValueError, match=r"must be in \[0, 2\]$"):
        SemanticMetrics(3).add_clip("c", [pred], [gt])
    pred[0, 0] = 2  # the last class is fine
    SemanticMetrics(3).add_clip("c", [pred], [gt])


def test_batch_videos_must_be_at_least_one() -> None:
    m = BinaryMetrics()
    m.add_clip("c", [GT], [GT])
    with pytest.raises(ValueError, match="batch_videos must be >= 1, got 0"):
        m.result(batch_videos=0)
    assert m.result(batch_videos=1)["miou"] == pytest.approx(1.0, abs=1e-6)


def test_float_predictions_are_foreground_above_one_half_only() -> None:
    from avseg.eval.metrics import frame_iou

    # 0.75 on the GT square, exactly 0.5 elsewhere: 0.5 is background, so the IoU is 1
    assert frame_iou(soft(0.75, background=0.5), GT) == pytest.approx(1.0, abs=1e-6)
    # 0.5 on the square: nothing predicted, IoU 0
    assert frame_iou(soft(0.5), GT) == pytest.approx(0.0, abs=1e-6)


def test_the_default_batch_is_four_videos() -> None:
    """Five clips whose F curves peak at different thresholds: batches of 4 (+1) and of 5 differ."""
    m = BinaryMetrics()
    for i, p in enumerate([soft(1.0, background=0.5), soft(0.4), soft(0.4), soft(0.4), soft(1.0, background=0.5)]):
        m.add_clip(f"c{i}", [p], [GT])
    four, five = m.result(batch_videos=4), m.result(batch_videos=5)
    assert four["fscore"] != pytest.approx(five["fscore"], abs=1e-3)
    assert m.result() == four and m.result()["batch_videos"] == 4.0


@pytest.mark.parametrize(("pred", "gt"), [(np.zeros((4, 4)), np.zeros((4, 5))),
                                          (np.zeros((1, 4, 4)), np.zeros((1, 4, 4))),
                                          (np.zeros(4), np.zeros(4))])
def test_prediction_and_gt_must_be_equal_2d_shapes(pred: np.ndarray, gt: np.ndarray) -> None:
    from avseg.eval.metrics import frame_iou

    with pytest.raises(ValueError, match="must be equal 2-D shapes"):
        frame_iou(pred, gt)
