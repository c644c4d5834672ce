"""Official AVSBench metrics on hand-made cases whose answers are worked out in the comments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avseg.eval.metrics import (
    BinaryMetrics,
    SemanticMetrics,
    frame_fcurve,
    frame_iou,
    thresholds,
)

BETA2 = 0.3


def f_of(p: float, r: float) -> float:
    return (1 + BETA2) * p * r / (BETA2 * p + r)


# ---------------------------------------------------------------- J (mask_iou)


def test_empty_gt_empty_pred_scores_one() -> None:
    gt = np.zeros((4, 4), bool)
    pred = np.zeros((4, 4), np.uint8)
    # Empty GT: inter = pixels where both are 0 = 16, union = H*W = 16 -> 16 / (16 + 1e-7).
    assert frame_iou(pred, gt) == pytest.approx(16 / (16 + 1e-7), abs=0)
    assert frame_iou(pred, gt) == pytest.approx(1.0, abs=1e-8)
    # Frames with an empty GT are skipped by the F-measure.
    assert frame_fcurve(pred, gt) is None


def test_empty_gt_nonempty_pred() -> None:
    gt = np.zeros((4, 4), bool)
    pred = np.zeros((4, 4), np.uint8)
    pred[0, :] = 255  # 4 false positives
    # inter = 16 - 4 = 12 pixels where both are 0; union = 16 -> 0.75.
    assert frame_iou(pred, gt) == pytest.approx(0.75, abs=1e-7)
    m = BinaryMetrics()
    m.add_clip("a", [pred], [gt])
    r = m.result()
    assert r["miou"] == pytest.approx(0.75, abs=1e-7)
    # No frame has a GT object: the official batch score stays at 0 (zeros curve) and so does ours.
    assert r["fscore"] == 0.0 and r["fscore_dataset"] == 0.0


def test_all_ones() -> None:
    gt = np.ones((4, 4), bool)
    pred = np.full((4, 4), 255, np.uint8)
    # inter = union = 16 -> 16 / (16 + 1e-7).
    assert frame_iou(pred, gt) == pytest.approx(1.0, abs=1e-8)
    curve = frame_fcurve(pred, gt)
    assert curve is not None and curve.shape == (255,)
    # 255/255 = 1.0 >= every threshold (the last float32 threshold is exactly 1.0): P = R = 1 -> F = 1.
    assert np.allclose(curve, 1.0)
    assert thresholds()[-1] == np.float32(1.0)


def test_single_pixel_hit_and_miss() -> None:
    gt = np.zeros((4, 4), bool)
    gt[0, 0] = True
    hit = np.zeros((4, 4), np.uint8)
    hit[0, 0] = 255
    assert frame_iou(hit, gt) == pytest.approx(1 / (1 + 1e-7), abs=0)
    c = frame_fcurve(hit, gt)
    assert c is not None
    # Threshold 0 makes every pixel positive: P = 1/16, R = 1 -> F = 1.3*(1/16)/(0.3/16 + 1) = 0.0797546.
    assert c[0] == pytest.approx(f_of(1 / 16, 1.0), rel=1e-12)
    assert c[0] == pytest.approx(0.0797546, abs=1e-7)
    # Every other threshold keeps only the hit pixel: P = R = 1 -> F = 1.
    assert np.allclose(c[1:], 1.0)

    miss = np.zeros((4, 4), np.uint8)
    miss[1, 1] = 255
    # inter = 0, union = 2 -> IoU 0.
    assert frame_iou(miss, gt) == 0.0
    c = frame_fcurve(miss, gt)
    assert c is not None
    # Threshold 0: still P = 1/16, R = 1 (all pixels positive); above: TP = 0 -> P = R = 0 -> NaN -> 0.
    assert c[0] == pytest.approx(0.0797546, abs=1e-7)
    assert np.all(c[1:] == 0.0)
    m = BinaryMetrics()
    m.add_clip("miss", [miss], [gt])
    assert m.result()["fscore"] == pytest.approx(0.0797546, abs=1e-7)


def test_uint8_threshold_is_official_half() -> None:
    gt = np.ones((1, 2), bool)
    # 127/255 = 0.498 is background, 128/255 = 0.502 foreground (official sigmoid(x) > 0.5).
    pred = np.array([[127, 128]], np.uint8)
    assert frame_iou(pred, gt) == pytest.approx(0.5, abs=1e-7)
    # Float probabilities and bool masks use the same rule.
    assert frame_iou(np.array([[0.5, 0.51]]), gt) == pytest.approx(0.5, abs=1e-7)
    assert frame_iou(np.array([[False, True]]), gt) == pytest.approx(0.5, abs=1e-7)


def test_fcurve_matches_direct_loop() -> None:
    """Our histogram formulation equals the official per-threshold loop."""
    rng = np.random.default_rng(0)
    prob = rng.random((16, 16)).astype(np.float32)
    prob[0, :4] = [0.0, 1.0, 0.5, 127 / 254]
    gt = rng.random((16, 16)) > 0.6
    th = thresholds()
    ref = np.zeros(255)
    for i, t in enumerate(th):
        y = prob >= t
        tp = float((y & gt).sum())
        p, r = tp / (y.sum() + 1e-20), tp / (gt.sum() + 1e-20)
        f = (1 + BETA2) * p * r / (BETA2 * p + r) if (BETA2 * p + r) > 0 else 0.0
        ref[i] = f
    got = frame_fcurve(prob, gt)
    assert got is not None
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)


# ---------------------------------------------------------------- F batch dependence


def _batch_example() -> BinaryMetrics:
    gt = np.zeros((4, 4), bool)
    gt[0, :] = True  # 4 GT pixels
    # Clip A: GT pixels 0.8, the 12 others 0.5.
    #   th in (0, 0.5]: all 16 positive: P = 4/16, R = 1 -> F = 1.3*0.25/(0.075+1) = 0.302326
    #   th in (0.5, 0.8]: P = R = 1 -> F = 1;  th > 0.8: nothing positive -> 0.
    a = np.full((4, 4), 0.5, np.float32)
    a[0, :] = 0.8
    # Clip B: GT pixels 0.3, the others 0.
    #   th in (0, 0.3]: F = 1;  th > 0.3: 0.
    b = np.zeros((4, 4), np.float32)
    b[0, :] = 0.3
    m = BinaryMetrics()
    m.add_clip("A", [a], [gt])
    m.add_clip("B", [b], [gt])
    return m


def test_official_fscore_depends_on_batch_size_dataset_f_does_not() -> None:
    m = _batch_example()
    fa = f_of(0.25, 1.0)  # 0.302326
    # One clip per batch: maxima are 1 (A) and 1 (B) -> mean 1.
    assert m.result(batch_videos=1)["fscore"] == pytest.approx(1.0, abs=1e-12)
    # Both in one batch: mean curve is (fa+1)/2 = 0.651163 on (0, 0.3], (fa+0)/2 on (0.3, 0.5],
    # (1+0)/2 = 0.5 on (0.5, 0.8] -> max 0.651163.
    assert m.result(batch_videos=2)["fscore"] == pytest.approx((fa + 1) / 2, abs=1e-12)
    assert (fa + 1) / 2 == pytest.approx(0.651163, abs=1e-6)
    # Dataset-level F pools the frames once: the same for any batch size.
    for bv in (1, 2, 4):
        assert m.result(batch_videos=bv)["fscore_dataset"] == pytest.approx((fa + 1) / 2, abs=1e-12)


def test_batches_follow_clip_order_and_miou_is_the_mean_of_batch_means() -> None:
    one = np.ones((2, 2), bool)
    m = BinaryMetrics()
    m.add_clip("x", [np.full((2, 2), 255, np.uint8)], [one])  # IoU 1
    m.add_clip("y", [np.zeros((2, 2), np.uint8)], [one])  # IoU 0
    m.add_clip("z", [np.zeros((2, 2), np.uint8)], [one])  # IoU 0
    r = m.result(batch_videos=2)
    # Mean over frames: 1/3. Official mean of batch means: ([1, 0] -> 0.5, [0] -> 0) -> 0.25.
    assert r["miou_frame"] == pytest.approx(1 / 3, abs=1e-7)
    assert r["miou"] == pytest.approx(0.25, abs=1e-7)
    assert "miou_batched" not in r
    # Reordering changes the batches: [y, z] -> 0, [x] -> 1 -> 0.5.
    assert m.result(batch_videos=2, order=["y", "z", "x"])["miou"] == pytest.approx(0.5, abs=1e-7)
    pc = m.per_clip()
    assert pc["x"]["j"] == pytest.approx(1.0, abs=1e-7) and pc["x"]["f"] == pytest.approx(1.0)
    assert r["n_frames"] == 3 and r["n_clips"] == 3


def test_thirteen_clips_against_a_hand_computation() -> None:
    """13 clips (batches of 4, 4, 4, 1) of 5 frames: J, F at batch 4 and 1, and the batch-free
    means, computed here by hand from per-frame IoUs and F curves with the official formulas."""
    rng = np.random.default_rng(13)
    m = BinaryMetrics()
    frame_iou_hand: list[list[float]] = []
    curves_hand: list[list[np.ndarray]] = []
    th = np.linspace(0.0, 1.0 - 1e-10, 255).astype(np.float32)
    for k in range(13):
        preds, gts, ious, curves = [], [], [], []
        for f in range(5):
            gt = rng.random((6, 7)) < (0.0 if (k, f) in {(2, 1), (12, 0)} else 0.4)
            pred = (rng.random((6, 7)) * 255).astype(np.uint8)
            p = pred > 127
            if gt.any():
                ious.append((p & gt).sum() / ((p | gt).sum() + 1e-7))
                prob = pred.astype(np.float32) / np.float32(255.0)
                pos = (prob[None] >= th[:, None, None])
                tp = (pos & gt[None]).sum(axis=(1, 2))
                prec, rec = tp / (pos.sum(axis=(1, 2)) + 1e-20), tp / (gt.sum() + 1e-20)
                with np.errstate(invalid="ignore", divide="ignore"):
                    fc = 1.3 * prec * rec / (0.3 * prec + rec)
                curves.append(np.nan_to_num(fc, nan=0.0))
            else:  # empty GT: the share of pixels that both call background
                ious.append((~p & ~gt).sum() / (gt.size + 1e-7))
            preds.append(pred)
            gts.append(gt)
        m.add_clip(f"c{k:02d}", preds, gts)
        frame_iou_hand.append(ious)
        curves_hand.append(curves)

    def batched(bv: int) -> tuple[float, float]:
        js, fs = [], []
        for b in range(0, 13, bv):
            js.append(np.mean([x for c in frame_iou_hand[b : b + bv] for x in c]))
            fs.append(np.mean([cv for c in curves_hand[b : b + bv] for cv in c], axis=0).max())
        return float(np.mean(js)), float(np.mean(fs))

    j4, f4 = batched(4)
    _, f1 = batched(1)
    r = m.result(batch_videos=4)
    assert r["miou"] == pytest.approx(j4, abs=1e-6)
    assert r["miou_frame"] == pytest.approx(np.mean([x for c in frame_iou_hand for x in c]), abs=1e-6)
    assert abs(r["miou"] - r["miou_frame"]) > 1e-4  # the partial last batch makes them differ
    assert r["fscore"] == pytest.approx(f4, abs=1e-6)
    assert r["fscore_b1"] == pytest.approx(f1, abs=1e-6)
    assert r["fscore_b1"] == pytest.approx(m.result(batch_videos=1)["fscore"], abs=1e-12)
    pooled = np.mean([cv for c in curves_hand for cv in c], axis=0).max()
    assert r["fscore_dataset"] == pytest.approx(pooled, abs=1e-6)
    assert (r["n_clips"], r["n_frames"]) == (13, 65)


def test_binary_resume_is_bit_identical() -> None:
    rng = np.random.default_rng(1)
    m = BinaryMetrics()
    for k in range(5):
        preds = [(rng.random((8, 8)) * 255).astype(np.uint8) for _ in range(5)]
        gts = [rng.random((8, 8)) > 0.5 for _ in range(4)] + [np.zeros((8, 8), bool)]
        m.add_clip(f"c{k}", preds, gts)
    saved = [json.loads(json.dumps(m.clip_scores(f"c{k}").to_dict())) for k in range(5)]
    resumed = BinaryMetrics.from_states(saved)
    for bv in (1, 2, 4):
        assert resumed.result(batch_videos=bv) == m.result(batch_videos=bv)
    assert resumed.per_clip() == m.per_clip()


# ---------------------------------------------------------------- AVSS semantic


def test_semantic_hand_example() -> None:
    gt = np.array([[0, 1], [1, 2]])
    pred = np.array([[0, 1], [2, 2]])
    m = SemanticMetrics(num_classes=4)
    m.add_clip("v", [pred], [gt])
    # class 0: inter 1, pred 1, lab 1 -> IoU 1, F 1
    # class 1: inter 1, pred 1, lab 2 -> IoU 1/2, P 1, R 1/2 -> F = 1.3*0.5/(0.3+0.5) = 0.8125
    # class 2: inter 1, pred 2, lab 1 -> IoU 1/2, P 1/2, R 1 -> F = 0.65/1.15 = 0.565217
    # class 3: never present -> 0/0 -> 0, but still counted in the mean over all 4 classes.
    f2 = 0.65 / 1.15
    r = m.result()
    assert r["miou"] == pytest.approx((1 + 0.5 + 0.5 + 0) / 4, abs=1e-12)
    assert r["miou_present"] == pytest.approx(2 / 3, abs=1e-12)
    assert r["fscore"] == pytest.approx((1 + 0.8125 + f2) / 4, abs=1e-12)
    assert r["fscore_present"] == pytest.approx((1 + 0.8125 + f2) / 3, abs=1e-12)

    # A second frame: GT all background, prediction all class 3.
    # class 0: inter 0, pred 0, lab 4 -> union 4, IoU 0, count +1, P = 0/0 -> F NaN -> 0
    # class 3: inter 0, pred 4, lab 0 -> union 4, IoU 0, count +1, R = 0/0 -> F 0
    m.add_clip("w", [np.full((2, 2), 3)], [np.zeros((2, 2), int)])
    r = m.result()
    # per class: c0 (1+0)/2, c1 0.5/1, c2 0.5/1, c3 0/1
    assert r["miou"] == pytest.approx((0.5 + 0.5 + 0.5 + 0) / 4, abs=1e-12)
    assert r["fscore"] == pytest.approx((0.5 + 0.8125 + f2 + 0) / 4, abs=1e-12)
    assert r["n_classes_present"] == 4


def test_semantic_71_classes_dilute_and_ignore() -> None:
    gt = np.zeros((2, 2), int)
    gt[0, 0] = 5
    m = SemanticMetrics()
    m.add_clip("v", [gt.copy()], [gt])
    # Perfect prediction: classes 0 and 5 score 1, the 69 absent classes 0 -> mIoU = 2/71.
    assert m.result()["miou"] == pytest.approx(2 / 71, abs=1e-12)
    assert m.result()["miou_present"] == pytest.approx(1.0, abs=1e-12)
    # GT pixels outside [0, 71) are ignored (official: negative labels).
    gt2 = gt.copy()
    gt2[1, 1] = -1
    m2 = SemanticMetrics()
    m2.add_clip("v", [np.full((2, 2), 5)], [gt2])
    inter = m2.clip_scores("v").inter[0]
    assert inter[5] == 1 and sum(m2.clip_scores("v").pred[0]) == 3


def test_semantic_resume_is_bit_identical() -> None:
    rng = np.random.default_rng(2)
    m = SemanticMetrics()
    for k in range(4):
        m.add_clip(
            f"c{k}",
            [rng.integers(0, 6, (8, 8)) for _ in range(3)],
            [rng.integers(0, 6, (8, 8)) for _ in range(3)],
        )
    saved = [json.loads(json.dumps(m.clip_scores(f"c{k}").to_dict())) for k in range(4)]
    resumed = SemanticMetrics.from_states(saved)
    assert resumed.result() == m.result()
    assert resumed.per_clip() == m.per_clip()
