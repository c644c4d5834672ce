"""Thresholds, NMS and combiners at their boundaries, called directly (no pipeline, no model).

These are the fast tests ``make mutants`` runs against ``thresholds``, ``nms`` and ``combiners``
(scripts/mutants.py): a score exactly at its threshold, an IoU exactly at its threshold, the best
object not first, overlapping masks, an empty frame, each option's documented default and bounds.
Scores and fractions are exact binary fractions (0.5, 0.25, 0.75, ...), so no rounding decides a test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from avseg_filters.nms import NMS, box_iou, mask_iou
from avseg_filters.thresholds import ScoreThreshold, TagThreshold
from pydantic import ValidationError

from avseg.combiners import LabelMap, Top1, Union, paint_labels
from avseg.components import FrameContext
from avseg.types import Proposals, Tags

H, W = 100, 200
FRAME = np.zeros((H, W, 3), np.uint8)


def ctx(props: Proposals | None = None, tags: Tags | None = None) -> FrameContext:
    return FrameContext("c", 0, FRAME, tags=tags, proposals=props)


def props(boxes: list[list[float]], scores: list[float], labels: list[str] | None = None,
          masks: bool = False) -> Proposals:
    b = np.array(boxes, np.float32).reshape(-1, 4)
    m = None
    if masks:
        m = np.zeros((len(b), H, W), bool)
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            m[k, int(y0):int(y1), int(x0):int(x1)] = True
    return Proposals(b, np.array(scores, np.float32), labels, m)


def tag(**cfg: Any) -> TagThreshold:
    return TagThreshold(TagThreshold.Config(**cfg), runtime=None)  # type: ignore[arg-type]


def score(**cfg: Any) -> ScoreThreshold:
    return ScoreThreshold(ScoreThreshold.Config(**cfg), runtime=None)  # type: ignore[arg-type]


def nms(**cfg: Any) -> NMS:
    return NMS(NMS.Config(**cfg), runtime=None)  # type: ignore[arg-type]


# -- tag-threshold ---------------------------------------------------------------------------------
def test_tag_threshold_default_keeps_a_probability_exactly_at_one_half() -> None:
    assert TagThreshold.Config().threshold == 0.5 and TagThreshold.Config().top_k is None
    tags = Tags(["Bark", "Speech", "Music"], np.array([0.75, 0.5, 0.4921875], np.float32))
    r = tag()(ctx(tags=tags))
    assert r.keep == [0, 1]
    assert set(r.drops) == {2} and r.drops[2].reason == "probability 0.492 < 0.500"
    assert r.scores == [0.75, 0.5, 0.4921875]


def test_tag_threshold_top_k_keeps_exactly_k_in_probability_order() -> None:
    tags = Tags(["A", "B", "C", "D"], np.array([0.9, 0.8, 0.7, 0.1], np.float32))
    for k, kept in [(1, [0]), (2, [0, 1]), (3, [0, 1, 2]), (4, [0, 1, 2])]:
        r = tag(threshold=0.5, top_k=k)(ctx(tags=tags))
        assert r.keep == kept, k
    r = tag(threshold=0.5, top_k=2)(ctx(tags=tags))
    assert r.drops[2].reason == "beyond top-2" and "probability" in r.drops[3].reason


def test_tag_threshold_deny_list_is_case_insensitive_and_drops_only_listed_names() -> None:
    tags = Tags(["SILENCE", "Dog", "speech"], np.array([0.9, 0.8, 0.75], np.float32))
    r = tag(threshold=0.5, deny=["Silence", "Speech"])(ctx(tags=tags))
    assert r.keep == [1] and set(r.drops) == {0, 2}
    assert r.drops[0].reason == "'SILENCE' is on the deny list"
    assert tag(threshold=0.5, deny=["cat"])(ctx(tags=tags)).keep == [0, 1, 2]


def test_tag_threshold_without_tags_keeps_nothing() -> None:
    assert tag()(ctx()).keep == []
    assert tag()(ctx(tags=Tags([], np.zeros(0, np.float32)))).keep == []


@pytest.mark.parametrize(("field", "ok", "bad"), [("threshold", [0.0, 1.0], [-0.25, 1.25]),
                                                  ("top_k", [1], [0])])
def test_tag_threshold_bounds(field: str, ok: list[float], bad: list[float]) -> None:
    for v in ok:
        TagThreshold.Config(**{field: v})
    for v in bad:
        with pytest.raises(ValidationError, match=field):
            TagThreshold.Config(**{field: v})


# -- score-threshold -------------------------------------------------------------------------------
BOXES3 = [[10, 10, 20, 20], [30, 10, 40, 20], [50, 10, 60, 20]]


def test_score_threshold_default_and_the_boundary_both_ways() -> None:
    cfg = ScoreThreshold.Config()
    assert (cfg.threshold, cfg.strict, cfg.fallback, cfg.side_reference) == (0.5, False, "none", "own")
    assert cfg.max_area_fraction is None and cfg.max_side_fraction is None and not cfg.keep_top_if_none
    p = props(BOXES3, [0.5, 0.75, 0.4921875])
    r = score()(ctx(p))
    assert r.keep == [0, 1] and set(r.drops) == {2} and r.drops[2].reason == "score 0.492 < 0.500"
    r = score(strict=True)(ctx(p))
    assert r.keep == [1] and r.drops[0].reason == "score 0.500 <= 0.500"
    assert score(threshold=0.75)(ctx(p)).keep == [1]
    assert score(threshold=0.75, strict=True)(ctx(p)).keep == []


def test_score_threshold_with_one_or_no_proposal() -> None:
    assert score()(ctx(props([[10, 10, 20, 20]], [0.75]))).keep == [0]
    assert score()(ctx(props([[10, 10, 20, 20]], [0.25]))).keep == []
    assert score()(ctx(Proposals.empty())).keep == []
    assert score()(ctx(None)).keep == []
    for fallback in ("keep-best", "first-in-loop"):  # no box: nothing to fall back on
        assert score(fallback=fallback, keep_top_if_none=True)(ctx(Proposals.empty())).keep == []


def test_score_threshold_area_of_a_box_away_from_the_origin() -> None:
    box = [[50, 20, 150, 70]]  # 100 x 50 of 200 x 100: a quarter of the frame
    assert score(max_area_fraction=0.25)(ctx(props(box, [0.75]))).keep == []
    r = score(max_area_fraction=0.25)(ctx(props(box, [0.75])))
    assert r.drops[0].reason == "box covers 25% of the frame (>= 25%)"
    assert score(max_area_fraction=0.2578125)(ctx(props(box, [0.75]))).keep == [0]


@pytest.mark.parametrize(("box", "frac", "ref"), [
    ([60, 20, 160, 40], 0.5, "own"),     # 100 of 200 wide (20 of 100 high)
    ([60, 20, 80, 80], 0.6, "own"),      # 60 of 100 high (20 of 200 wide)
    ([60, 20, 110, 40], 0.5, "height"),  # 50 wide against the height 100
])
def test_score_threshold_side_fraction_exactly_at_the_limit(box: list[int], frac: float, ref: str) -> None:
    p = props([box], [0.75])
    assert score(max_side_fraction=frac, side_reference=ref)(ctx(p)).keep == []
    assert score(max_side_fraction=frac + 0.0078125, side_reference=ref)(ctx(p)).keep == [0]


def test_score_threshold_degenerate_boxes_have_zero_area_and_side() -> None:
    # reversed corners: zero width and height, never "too big", whatever the limits
    p = props([[150, 80, 20, 10]], [0.75])
    assert score(max_area_fraction=1e-9, max_side_fraction=1e-9)(ctx(p)).keep == [0]


def test_keep_top_if_none_picks_the_best_box_of_the_right_size() -> None:
    # nothing passes 0.9; the best-scoring box is the second, not the first
    p = props(BOXES3, [0.25, 0.75, 0.5])
    r = score(threshold=0.875, keep_top_if_none=True)(ctx(p))
    assert r.keep == [1] and set(r.drops) == {0, 2}
    # a box exactly at max_area_fraction is not "of the right size"
    big = props([[0, 0, 100, 50], [10, 10, 20, 20]], [0.75, 0.25])  # area 0.25, 0.005
    assert score(threshold=0.875, keep_top_if_none=True, max_area_fraction=0.25)(ctx(big)).keep == [1]
    assert score(threshold=0.875, keep_top_if_none=True, max_area_fraction=0.2578125)(ctx(big)).keep == [0]
    # something passes: no fallback
    assert score(threshold=0.5, keep_top_if_none=True)(ctx(p)).keep == [1, 2]


def test_keep_best_fallback_keeps_the_best_wherever_it_is() -> None:
    p = props(BOXES3, [0.25, 0.5, 0.375])
    r = score(threshold=0.875, fallback="keep-best")(ctx(p))
    assert r.keep == [1] and set(r.drops) == {0, 2}
    assert r.extra is not None and r.extra[0] == {} and r.extra[2] == {}
    assert r.extra[1]["fallback"] == "kept as the best box although score 0.500 < 0.875"
    assert score(threshold=0.875)(ctx(p)).keep == []  # off by default
    assert score(threshold=0.25, fallback="keep-best")(ctx(p)).keep == [0, 1, 2]


def test_first_in_loop_keeps_box_zero_only_while_nothing_passed_before_it() -> None:
    p = props(BOXES3, [0.25, 0.75, 0.125])
    r = score(threshold=0.5, fallback="first-in-loop")(ctx(p))
    assert r.keep == [0, 1] and set(r.drops) == {2}
    assert r.extra is not None and "although score 0.250 < 0.500" in r.extra[0]["fallback"]
    none_pass = props(BOXES3, [0.25, 0.375, 0.125])
    assert score(threshold=0.5, fallback="first-in-loop")(ctx(none_pass)).keep == [0]
    r = score(threshold=0.25, fallback="first-in-loop")(ctx(p))
    assert r.keep == [0, 1] and r.extra is None  # box 0 passes on its own


@pytest.mark.parametrize(("field", "ok", "bad"), [
    ("threshold", [0.0, 1.0], [-0.25, 1.25]),
    ("max_area_fraction", [1.0, 0.0078125], [0.0, 1.25]),
    ("max_side_fraction", [1.0, 0.0078125], [0.0, 1.25]),
])
def test_score_threshold_bounds(field: str, ok: list[float], bad: list[float]) -> None:
    for v in ok:
        ScoreThreshold.Config(**{field: v})
    for v in bad:
        with pytest.raises(ValidationError, match=field):
            ScoreThreshold.Config(**{field: v})


# -- nms ---------------------------------------------------------------------------------------------
# box 1 covers 60% of box 0 and lies inside it: IoU exactly 0.6, by box and by mask
AT_06 = [[20, 10, 30, 20], [20, 10, 30, 16], [100, 50, 110, 60]]


def test_nms_defaults() -> None:
    cfg = NMS.Config()
    assert cfg.iou_threshold == 0.5 and cfg.use_masks is True


@pytest.mark.parametrize("use_masks", [True, False])
def test_nms_keeps_an_iou_exactly_at_the_threshold(use_masks: bool) -> None:
    p = props(AT_06, [0.75, 0.5, 0.25], masks=True)
    assert nms(iou_threshold=0.6, use_masks=use_masks)(ctx(p)).keep == [0, 1, 2]
    r = nms(iou_threshold=0.59375, use_masks=use_masks)(ctx(p))
    assert r.keep == [0, 2] and set(r.drops) == {1}
    what = "mask" if use_masks else "box"
    assert r.drops[1].reason == f"{what} IoU 0.60 > 0.59 with #0" and r.drops[1].score == pytest.approx(0.6)
    assert r.scores == [0.75, 0.5, 0.25]


@pytest.mark.parametrize("use_masks", [True, False])
def test_nms_keeps_the_better_of_two_overlapping_wherever_it_is(use_masks: bool) -> None:
    p = props([AT_06[2], AT_06[1], AT_06[0]], [0.25, 0.5, 0.75], masks=True)
    r = nms(iou_threshold=0.5, use_masks=use_masks)(ctx(p))
    assert r.keep == [0, 2] and set(r.drops) == {1} and r.drops[1].reason.endswith("with #2")


def test_nms_compares_only_with_kept_objects() -> None:
    """A > B > C by score; B overlaps both, A and C do not overlap: B goes, C stays."""
    p = props([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]], [0.75, 0.5, 0.25], masks=True)
    for use_masks in (True, False):
        r = nms(iou_threshold=0.25, use_masks=use_masks)(ctx(p))
        assert r.keep == [0, 2] and set(r.drops) == {1}


def test_nms_by_box_when_asked_for_masks_but_given_none() -> None:
    p = props(AT_06, [0.75, 0.5, 0.25])
    r = nms(iou_threshold=0.5, use_masks=True)(ctx(p))
    assert r.keep == [0, 2] and r.drops[1].reason.startswith("box IoU")


def test_nms_with_one_or_no_proposal() -> None:
    assert nms()(ctx(props([[0, 0, 10, 10]], [0.25], masks=True))).keep == [0]
    assert nms()(ctx(Proposals.empty())).keep == []
    assert nms()(ctx(None)).keep == []
    no_objects = Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), None, np.zeros((0, H, W), bool))
    assert nms()(ctx(no_objects)).keep == []


def test_iou_of_tiny_identical_regions_is_one() -> None:
    """A union below one pixel (boxes) or of exactly one pixel (masks) is still a union."""
    quarter = np.array([[1, 1, 1.5, 1.5]], np.float32)
    np.testing.assert_allclose(box_iou(quarter, quarter), [[1.0]])
    px = np.zeros((1, 4, 4), bool)
    px[0, 1, 2] = True
    np.testing.assert_allclose(mask_iou(px, px), [[1.0]])
    nothing = np.zeros((2, 4, 4), bool)  # two empty masks overlap nowhere
    np.testing.assert_array_equal(mask_iou(nothing, nothing), np.zeros((2, 2)))


def test_box_and_mask_iou_away_from_the_origin() -> None:
    a = np.array([[10, 20, 30, 40]], np.float32)  # 20 x 20
    b = np.array([[20, 20, 40, 30], [10, 20, 30, 40], [30, 40, 50, 60]], np.float32)  # 20 x 10; itself; touching
    np.testing.assert_allclose(box_iou(a, b), [[100 / 500, 1.0, 0.0]])
    np.testing.assert_allclose(box_iou(b, a), [[100 / 500], [1.0], [0.0]])
    m = np.zeros((3, 8, 8), bool)
    m[0, 1:4, 1:4] = True  # 9 px
    m[1, 2:5, 2:6] = True  # 12 px, 4 shared with m0
    m[2, 6:, 6:] = True  # 4 px, apart
    np.testing.assert_allclose(mask_iou(m[:1], m), [[1.0, 4 / 17, 0.0]])
    assert mask_iou(m[:1], m).dtype == np.float64


def test_box_iou_of_sub_pixel_and_empty_boxes() -> None:
    """Half a pixel wide: IoU 4/5, areas never rounded up to a pixel; empty boxes overlap nothing."""
    thin = np.array([[0, 0, 0.5, 10], [0, 0, 0.5, 8]], np.float32)
    np.testing.assert_allclose(box_iou(thin, thin), [[1.0, 0.8], [0.8, 1.0]])
    assert nms(iou_threshold=0.75, use_masks=False)(ctx(props(thin.tolist(), [0.75, 0.5]))).keep == [0]
    empty = np.array([[5, 5, 5, 9], [5, 5, 5, 9]], np.float32)
    np.testing.assert_array_equal(box_iou(empty, empty), np.zeros((2, 2)))
    assert nms(iou_threshold=0.0, use_masks=False)(ctx(props(empty.tolist(), [0.75, 0.5]))).keep == [0, 1]


def test_nms_iou_threshold_bounds() -> None:
    for v in (0.0, 1.0):
        NMS.Config(iou_threshold=v)
    for v in (-0.25, 1.25):
        with pytest.raises(ValidationError, match="iou_threshold"):
            NMS.Config(iou_threshold=v)
    # iou 1.0: nothing is above it, even two identical boxes stay
    same = props([[0, 0, 10, 10], [0, 0, 10, 10]], [0.75, 0.5], masks=True)
    assert nms(iou_threshold=1.0)(ctx(same)).keep == [0, 1]
    assert nms(iou_threshold=0.0)(ctx(same)).keep == [0]


# -- combiners ---------------------------------------------------------------------------------------
FR = np.zeros((32, 48, 3), np.uint8)
WORSE, BETTER = [0, 0, 16, 16], [8, 8, 24, 24]  # overlap at [8:16, 8:16]


def objs(boxes: list[list[int]], scores: list[float], labels: list[str] | None = None) -> Proposals:
    m = np.zeros((len(boxes), 32, 48), bool)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        m[k, y0:y1, x0:x1] = True
    return Proposals(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), labels, m)


def box(b: list[int]) -> np.ndarray:
    m = np.zeros((32, 48), bool)
    m[b[1]:b[3], b[0]:b[2]] = True
    return m


def combine(name: str, kept: Proposals) -> Any:
    cls = {"union": Union, "top1": Top1, "label-map": LabelMap}[name]
    return cls(cls.Config(), runtime=None).combine(FR, kept)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["union", "label-map"])
@pytest.mark.parametrize("best_first", [True, False])
def test_the_better_object_wins_the_overlap(name: str, best_first: bool) -> None:
    o = [(BETTER, 0.75, "zebra"), (WORSE, 0.25, "ant")]
    if not best_first:
        o = o[::-1]
    out = combine(name, objs([x[0] for x in o], [x[1] for x in o], [x[2] for x in o]))
    np.testing.assert_array_equal(out.mask, box(WORSE) | box(BETTER))
    assert out.label_map is not None and out.label_map.dtype == np.int32
    # union sorts its labels; label-map keeps the kept order
    want = ["ant", "zebra"] if name == "union" else [x[2] for x in o]
    assert out.labels == want

    def at(y: int, x: int) -> str | None:
        v = int(out.label_map[y, x])
        return out.labels[v - 1] if v else None

    assert at(12, 12) == "zebra" and at(2, 2) == "ant" and at(20, 20) == "zebra" and at(30, 40) is None


def test_two_objects_with_one_label_share_it() -> None:
    for name in ("union", "label-map"):
        out = combine(name, objs([[0, 0, 4, 4], [10, 0, 14, 4], [20, 0, 24, 4]], [0.5, 0.75, 0.25],
                                 ["dog", "cat", "dog"]))
        assert sorted(out.labels) == ["cat", "dog"] and len(out.labels) == 2
        dog = out.labels.index("dog") + 1
        assert out.label_map[1, 1] == dog == out.label_map[1, 21] and out.label_map[1, 11] == out.labels.index("cat") + 1


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1], [1, 2, 0]])
def test_top1_is_the_best_wherever_it_is(order: list[int]) -> None:
    boxes, scores, labels = [[0, 0, 8, 8], [10, 0, 18, 8], [20, 0, 28, 8]], [0.25, 0.75, 0.5], ["a", "b", "c"]
    out = combine("top1", objs([boxes[i] for i in order], [scores[i] for i in order], [labels[i] for i in order]))
    np.testing.assert_array_equal(out.mask, box(boxes[1]))
    assert out.labels == ["b"] and out.label_map is not None and int(out.label_map.max()) == 1


def test_top1_ties_keep_the_first_and_one_object_is_itself() -> None:
    out = combine("top1", objs([[0, 0, 8, 8], [10, 0, 18, 8]], [0.5, 0.5], ["a", "b"]))
    assert out.labels == ["a"]
    out = combine("top1", objs([[10, 0, 18, 8]], [0.25]))
    np.testing.assert_array_equal(out.mask, box([10, 0, 18, 8]))
    assert out.label_map is None and out.labels == []


def test_union_of_unlabelled_objects_has_no_label_map() -> None:
    out = combine("union", objs([WORSE, BETTER], [0.25, 0.75]))
    np.testing.assert_array_equal(out.mask, box(WORSE) | box(BETTER))
    assert out.label_map is None and out.labels == []


@pytest.mark.parametrize("name", ["union", "top1", "label-map"])
@pytest.mark.parametrize("labelled", [True, False])
def test_nothing_kept_gives_an_empty_mask(name: str, labelled: bool) -> None:
    out = combine(name, Proposals.empty(with_labels=labelled))
    assert out.mask.shape == (32, 48) and out.mask.dtype == bool and not out.mask.any()
    assert out.labels == []
    if labelled or name == "label-map":
        assert out.label_map is not None and out.label_map.shape == (32, 48) and not out.label_map.any()
    else:
        assert out.label_map is None


@pytest.mark.parametrize("name", ["union", "top1", "label-map"])
def test_one_object_is_the_frame(name: str) -> None:
    out = combine(name, objs([BETTER], [0.25], ["zebra"]))
    np.testing.assert_array_equal(out.mask, box(BETTER))
    assert out.labels == ["zebra"] and out.label_map is not None
    np.testing.assert_array_equal(out.label_map, box(BETTER).astype(np.int32))


def test_label_map_names_unlabelled_objects_from_one() -> None:
    out = combine("label-map", objs([WORSE, BETTER, [30, 20, 40, 30]], [0.25, 0.75, 0.5]))
    assert out.labels == ["object-1", "object-2", "object-3"]
    assert out.label_map[2, 2] == 1 and out.label_map[12, 12] == 2 and out.label_map[25, 35] == 3


def test_paint_labels_without_masks_or_labels_is_background() -> None:
    p = objs([WORSE], [0.5], ["dog"])
    assert not paint_labels(Proposals(p.boxes, p.scores, ["dog"]), ["dog"], (32, 48)).any()
    assert not paint_labels(Proposals(p.boxes, p.scores, None, p.masks), ["dog"], (32, 48)).any()
    assert paint_labels(p, ["cat", "dog"], (32, 48))[0, 0] == 2

