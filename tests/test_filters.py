"""The model-free filters on crafted inputs whose right answer is known."""

from __future__ import annotations

import numpy as np
from avseg_filters.nms import NMS, box_iou, mask_iou
from avseg_filters.thresholds import ScoreThreshold, TagThreshold

from avseg.components import FrameContext
from avseg.types import Proposals, Tags

FRAME = np.zeros((100, 200, 3), np.uint8)


def ctx(props: Proposals | None = None, tags: Tags | None = None) -> FrameContext:
    return FrameContext("c", 0, FRAME, tags=tags, proposals=props)


def test_tag_threshold_deny_list_and_top_k() -> None:
    tags = Tags.from_scores(["Dog", "Silence", "Speech", "Bark"], [0.9, 0.95, 0.6, 0.4])
    f = TagThreshold(TagThreshold.Config(threshold=0.5, deny=["silence"]), runtime=None)  # type: ignore[arg-type]
    r = f(ctx(tags=tags))
    assert [tags.names[i] for i in r.keep] == ["Dog", "Speech"]  # Silence denied (any case), Bark below 0.5
    assert "deny list" in r.drops[tags.names.index("Silence")].reason
    # no deny list unless one is given (the paper has none)
    r = TagThreshold(TagThreshold.Config(threshold=0.5, top_k=1), runtime=None)(ctx(tags=tags))  # type: ignore[arg-type]
    assert TagThreshold.Config().deny == []
    assert [tags.names[i] for i in r.keep] == ["Silence"]
    assert r.drops[tags.names.index("Dog")].reason == "beyond top-1"


def test_top_k_keeps_the_best_and_traces_the_rest() -> None:
    from avseg_filters.topk import TopK

    props = Proposals(np.zeros((4, 4), np.float32), np.array([0.2, 0.9, 0.5, 0.9], np.float32))
    r = TopK(TopK.Config(k=2), runtime=None)(ctx(props))  # type: ignore[arg-type]
    assert r.keep == [1, 3]  # ties keep the earlier one first
    assert r.drops[2].reason == "rank 3 by score, beyond top-2" and r.drops[0].reason.startswith("rank 4")
    assert TopK(TopK.Config(k=10), runtime=None)(ctx(props)).keep == [0, 1, 2, 3]  # type: ignore[arg-type]
    assert TopK(TopK.Config(), runtime=None)(ctx(Proposals.empty())).keep == []  # type: ignore[arg-type]


def test_score_threshold_area_and_keep_top() -> None:
    props = Proposals(np.array([[0, 0, 200, 100], [10, 10, 50, 50], [60, 10, 90, 40]], np.float32),
                      np.array([0.99, 0.6, 0.3], np.float32))
    cfg = ScoreThreshold.Config(threshold=0.5, max_area_fraction=0.98)
    r = ScoreThreshold(cfg, runtime=None)(ctx(props))  # type: ignore[arg-type]
    assert r.keep == [1]
    assert "covers 100% of the frame" in r.drops[0].reason and "0.300 < 0.500" in r.drops[2].reason
    cfg = ScoreThreshold.Config(threshold=0.95, max_area_fraction=0.98, keep_top_if_none=True)
    assert ScoreThreshold(cfg, runtime=None)(ctx(props)).keep == [1]  # best box that is not the whole frame  # type: ignore[arg-type]
    assert ScoreThreshold(ScoreThreshold.Config(), runtime=None)(ctx(Proposals.empty())).keep == []  # type: ignore[arg-type]


def test_iou_helpers() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    assert np.allclose(box_iou(a, b), [[50 / 150, 0.0]])
    m = np.zeros((2, 4, 4), bool)
    m[0, :2] = True
    m[1, 1:3] = True
    assert np.allclose(mask_iou(m, m), [[1, 4 / 12], [4 / 12, 1]])


def test_nms_by_mask_and_by_box() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    masks = np.zeros((3, 100, 200), bool)
    masks[0, 0:10, 0:10] = True
    masks[1, 60:70, 60:70] = True  # boxes overlap with #0, masks do not
    masks[2, 50:60, 50:60] = True
    props = Proposals(boxes, np.array([0.9, 0.8, 0.7], np.float32), masks=masks)
    by_mask = NMS(NMS.Config(iou_threshold=0.5, use_masks=True), runtime=None)(ctx(props))  # type: ignore[arg-type]
    assert by_mask.keep == [0, 1, 2]
    by_box = NMS(NMS.Config(iou_threshold=0.5, use_masks=False), runtime=None)(ctx(props))  # type: ignore[arg-type]
    assert by_box.keep == [0, 2]
    assert by_box.drops[1].reason.startswith("box IoU 0.82 > 0.50 with #0")
    # the lower-scored duplicate goes, whatever the input order
    swapped = Proposals(boxes[[1, 0, 2]], np.array([0.8, 0.9, 0.7], np.float32))
    assert NMS(NMS.Config(use_masks=False), runtime=None)(ctx(swapped)).keep == [1, 2]  # type: ignore[arg-type]


def test_score_threshold_per_side_test_and_keep_best_fallback() -> None:
    # a full-width but short box (area 20%): the area test keeps it, the per-side test drops it
    props = Proposals(np.array([[0, 0, 198, 20], [10, 10, 50, 50], [60, 10, 90, 40]], np.float32),
                      np.array([0.99, 0.6, 0.3], np.float32))
    r = ScoreThreshold(ScoreThreshold.Config(threshold=0.5, max_area_fraction=0.98), runtime=None)(ctx(props))  # type: ignore[arg-type]
    assert r.keep == [0, 1]
    r = ScoreThreshold(ScoreThreshold.Config(threshold=0.5, max_side_fraction=0.98), runtime=None)(ctx(props))  # type: ignore[arg-type]
    assert r.keep == [1] and "side spans 99% of the frame's" in r.drops[0].reason
    # nothing passes: off by default, keep-best keeps the highest score whatever dropped it
    strict = ScoreThreshold.Config(threshold=0.995, max_side_fraction=0.98)
    assert ScoreThreshold(strict, runtime=None)(ctx(props)).keep == []  # type: ignore[arg-type]
    r = ScoreThreshold(strict.model_copy(update={"fallback": "keep-best"}), runtime=None)(ctx(props))  # type: ignore[arg-type]
    assert r.keep == [0] and set(r.drops) == {1, 2}
    assert r.extra is not None and "kept as the best box although a box side spans" in r.extra[0]["fallback"]


def _authors_loop(boxes: np.ndarray, scores: np.ndarray, img_h: int, thr: float = 0.15) -> list[int]:
    """The box loop of the authors' run_owodbind.py, transcribed (indices instead of boxes)."""
    processed: list[int] = []
    for i, (bb, score) in enumerate(zip(boxes, scores)):
        if score > thr and abs(bb[0] - bb[2]) < img_h * 0.98 and abs(bb[1] - bb[3]) < img_h * 0.98:
            processed.append(i)
        if len(processed) == 0:
            processed.append(0)
    return processed


AUTHORS = ScoreThreshold.Config(threshold=0.15, strict=True, max_side_fraction=0.98, side_reference="height",
                                fallback="first-in-loop")


def test_score_threshold_authors_loop_keeps_the_first_box_and_every_passing_one() -> None:
    # box 0 fails (score 0.1), box 1 passes, box 2 fails: the authors keep boxes 0 and 1
    props = Proposals(np.array([[0, 0, 10, 10], [20, 20, 60, 60], [70, 10, 90, 40]], np.float32),
                      np.array([0.1, 0.9, 0.05], np.float32))
    r = ScoreThreshold(AUTHORS, runtime=None)(ctx(props))  # type: ignore[arg-type]
    assert r.keep == [0, 1] == _authors_loop(props.boxes, props.scores, FRAME.shape[0])
    assert set(r.drops) == {2} and r.extra is not None
    assert "kept as the proposer's first box although score 0.100 <= 0.150" in r.extra[0]["fallback"]
    # the first box passing: kept once, with the others that pass
    props0 = Proposals(props.boxes, np.array([0.9, 0.9, 0.05], np.float32))
    assert ScoreThreshold(AUTHORS, runtime=None)(ctx(props0)).keep == [0, 1]  # type: ignore[arg-type]
    # nothing passes: box 0 alone, even though box 1 scores higher (the proposer's order, not the best)
    props_none = Proposals(props.boxes, np.array([0.01, 0.12, 0.05], np.float32))
    assert ScoreThreshold(AUTHORS, runtime=None)(ctx(props_none)).keep == [0] == _authors_loop(
        props_none.boxes, props_none.scores, FRAME.shape[0])


def test_score_threshold_authors_boundary_and_sides_against_the_height() -> None:
    # score exactly 0.15 is dropped (strict >), just above is kept; box 0 is the fallback
    props = Proposals(np.array([[0, 0, 10, 10], [20, 20, 60, 60], [70, 10, 90, 40]], np.float32),
                      np.array([0.9, 0.15, 0.1501], np.float32))
    r = ScoreThreshold(AUTHORS, runtime=None)(ctx(props))  # type: ignore[arg-type]
    assert r.keep == [0, 2] == _authors_loop(props.boxes, props.scores, FRAME.shape[0])
    assert "0.150 <= 0.150" in r.drops[1].reason
    # the same scores with >= keep the boundary box
    r = ScoreThreshold(AUTHORS.model_copy(update={"strict": False}), runtime=None)(ctx(props))  # type: ignore[arg-type]
    assert r.keep == [0, 1, 2]
    # FRAME is 100 high, 200 wide: a 120-wide box is 60% of the width but 120% of the height
    # (98 px wide is exactly 0.98 of the height: dropped; 97 px is kept)
    wide = Proposals(np.array([[0, 0, 5, 5], [10, 10, 130, 30], [10, 10, 108, 30], [10, 10, 107, 30]], np.float32),
                     np.array([0.9, 0.9, 0.9, 0.9], np.float32))
    r = ScoreThreshold(AUTHORS, runtime=None)(ctx(wide))  # type: ignore[arg-type]
    assert r.keep == [0, 3] == _authors_loop(wide.boxes, wide.scores, FRAME.shape[0])
    assert "of the frame's height" in r.drops[1].reason and 2 in r.drops
    r = ScoreThreshold(AUTHORS.model_copy(update={"side_reference": "own"}), runtime=None)(ctx(wide))  # type: ignore[arg-type]
    assert r.keep == [0, 1, 2, 3]
