"""bind, avis (and its audio-visual tree), av-sync and the refiners at their boundaries, called
directly: the fast tests ``make mutants`` adds to each module's own (scripts/mutants.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from avseg_filters.bind import BindFilter, bind_scores
from pydantic import ValidationError

from avseg.components import FrameContext


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
    with pytest.raises(ValidationError, match=r"use cosine_threshold=0.6 for mode 'cosine' "
                                              r"\(softmax_threshold, minmax_threshold for the other modes\)"):
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


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_fill_holes_leaves_a_one_pixel_notch_on_any_border_open(side: str) -> None:
    from avseg_refiners.fill_holes import fill_holes

    m = np.ones((8, 8), bool)
    at = {"top": (0, slice(3, 5)), "bottom": (-1, slice(3, 5)), "left": (slice(3, 5), 0), "right": (slice(3, 5), -1)}
    m[at[side]] = False  # background in the border row/column only: not a hole
    assert np.array_equal(fill_holes(m), m)


def test_fill_holes_fills_a_hole_met_before_the_outside_background() -> None:
    """The object covers the top rows, so the hole is the first background piece in scan order."""
    from avseg_refiners.fill_holes import fill_holes

    m = np.ones((6, 6), bool)
    m[2:4, 2:4] = False  # the hole
    m[5, :] = False  # background along the bottom border
    out = fill_holes(m)
    assert out[2:4, 2:4].all() and not out[5].any()
    assert np.array_equal(fill_holes(np.ones((3, 3), bool)), np.ones((3, 3), bool))
    only_a_hole = np.ones((5, 5), bool)
    only_a_hole[2, 2] = False  # the only background piece there is
    assert fill_holes(only_a_hole).all()


def test_fill_holes_max_hole_area_bounds() -> None:
    from avseg_refiners.fill_holes import FillHoles

    assert FillHoles.Config().max_hole_area is None and FillHoles.Config(max_hole_area=1).max_hole_area == 1
    with pytest.raises(ValidationError, match="max_hole_area"):
        FillHoles.Config(max_hole_area=0)


# -- avis scoring -------------------------------------------------------------------------------------
def test_avis_keeps_audio_exactly_at_the_tag_threshold_at_both_levels() -> None:
    from avseg_avis.scoring import decide, tree_scores

    from avseg.tree import load_tree

    tree = load_tree(None)
    sc = tree_scores(tree, ["dog", "cat"], {"Bark": 0.25}, "max")
    d = decide(tree, "dog", sc, threshold=0.25)
    assert d.keep and d.level == "source" and d.audio == 0.25
    assert not decide(tree, "dog", sc, threshold=0.2578125).keep
    b = decide(tree, "cat", sc, match="broad", threshold=0.25)  # the bark reaches the cat at "pet"
    assert b.keep and b.level == "broad"
    assert not decide(tree, "cat", sc, match="broad", threshold=0.2578125).keep


def test_avis_broad_match_needs_something_in_view_under_the_broad_node() -> None:
    from avseg_avis.scoring import decide, tree_scores

    from avseg.tree import load_tree

    tree = load_tree(None)
    sc = tree_scores(tree, [], {"Bark": 0.75}, "max")  # nothing in view
    d = decide(tree, "cat", sc, match="broad", threshold=0.25)
    assert not d.keep and d.level is None and d.audio == 0.75


def test_avis_top_leaves_are_the_three_most_probable_in_order() -> None:
    from avseg_avis.scoring import top_leaves

    from avseg.tree import load_tree

    tree = load_tree(None)
    leaves = tree.leaves_of("dog")
    assert len(leaves) >= 4
    probs = {leaves[0]: 0.125, leaves[1]: 0.5, leaves[2]: 0.25, leaves[3]: 0.375}
    assert list(top_leaves(tree, "dog", probs).items()) == [(leaves[1], 0.5), (leaves[3], 0.375), (leaves[2], 0.25)]
    assert top_leaves(tree, "dog", {leaves[0]: 0.0}) == {}


def test_avis_a_category_out_of_view_is_never_kept_whatever_its_audio() -> None:
    from avseg_avis.scoring import decide, tree_scores

    from avseg.tree import load_tree

    tree = load_tree(None)
    meow = tree.leaves_of("cat")[0]
    sc = tree_scores(tree, ["dog"], {meow: 0.75}, "max")  # the cat is heard, only the dog is in view
    assert not decide(tree, "cat", sc, threshold=0.25).keep
    assert not decide(tree, "cat", sc, match="broad", threshold=0.875).keep


def test_avis_a_category_without_leaves_has_no_audio() -> None:
    from avseg_avis.scoring import audio_scores, decide, tree_scores

    from avseg.tree import parse_tree

    tree = parse_tree({"broad_sources": {"pet": {"dog": ["Bark"], "robot": []}}})
    for agg in ("max", "sum"):
        source, broad = audio_scores(tree, {"Bark": 0.5}, agg)  # type: ignore[arg-type]
        assert source == {"dog": 0.5, "robot": 0.0} and broad == {"pet": 0.5}
    sc = tree_scores(tree, ["robot"], {"Bark": 0.5})
    assert not decide(tree, "robot", sc, threshold=0.0625).keep


def test_avis_top_leaves_round_to_four_decimals() -> None:
    from avseg_avis.scoring import top_leaves

    from avseg.tree import load_tree

    tree = load_tree(None)
    leaf = tree.leaves_of("dog")[0]
    assert top_leaves(tree, "dog", {leaf: 0.123456}) == {leaf: 0.1235}


@pytest.mark.parametrize(("left_edge", "top"), [(10, 10), (10, -10), (-10, 10)])  # -10: the box runs off the frame
def test_merge_parts_merges_two_halves_of_one_box(left_edge: int, top: int) -> None:
    from avseg_refiners.merge_parts import MergeParts

    from avseg.types import Proposals

    x0, y0 = max(0, left_edge), max(0, top)
    left, right = np.zeros((40, 60), bool), np.zeros((40, 60), bool)
    left[y0:30, x0:30] = True
    right[y0:30, 30:50] = True
    kept = Proposals(np.array([[left_edge, top, 50, 30], [30, top, 50, 30]], np.float32),
                     np.array([0.5, 0.75], np.float32),
                     ["piano", "keys"], np.stack([left, right]))
    out = MergeParts(MergeParts.Config(), None).refine(np.zeros((40, 60, 3), np.uint8), kept)  # type: ignore[arg-type]
    assert len(out) == 1 and out.labels == ["piano"] and out.masks is not None
    np.testing.assert_array_equal(out.masks[0], left | right)


# -- the avis filter ---------------------------------------------------------------------------------
def _avis_ctx(labels: list[str] | None, tags: dict[str, float]) -> FrameContext:
    from avseg.types import Proposals, Tags

    n = 1 if labels is None else len(labels)
    return FrameContext("c", 0, np.zeros((10, 10, 3), np.uint8), tags=Tags.from_scores(list(tags), list(tags.values())),
                        proposals=Proposals(np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1)),
                                            np.ones(n, np.float32), labels))


def _avis(**kw: object):  # type: ignore[no-untyped-def]
    from avseg_avis import AvisFilter

    return AvisFilter(AvisFilter.Config(**{"linker": "none", **kw}), runtime=None)


def test_avis_unlabelled_and_unlinked_objects_score_zero() -> None:
    res = _avis()(_avis_ctx(None, {"Bark": 0.75}))
    assert res.keep == [] and res.scores == [0.0]
    res = _avis()(_avis_ctx(["dog", "spaceship"], {"Bark": 0.75}))
    assert res.keep == [0] and res.scores == [0.75, 0.0]
    assert res.extra is not None and res.extra[1]["visual_score"] == 0.0 and res.extra[1]["audio_score"] == 0.0
    assert res.extra[1]["category"] is None and "names no tree category" in res.drops[1].reason


def test_avis_tag_threshold_bounds() -> None:
    from avseg_avis import AvisFilter

    assert AvisFilter.Config().tag_threshold == 0.1
    for v in (0.0, 1.0):
        AvisFilter.Config(tag_threshold=v)
    for v in (-0.25, 1.25):
        with pytest.raises(ValidationError, match="tag_threshold"):
            AvisFilter.Config(tag_threshold=v)


def test_clip_to_box_leaves_objects_without_masks_as_they_are() -> None:
    from avseg_refiners.clip_to_box import ClipToBox

    from avseg.types import Proposals

    kept = Proposals(np.array([[0, 0, 4, 4]], np.float32), np.ones(1, np.float32), ["a"])
    out = ClipToBox(ClipToBox.Config(), None).refine(np.zeros((6, 8, 3), np.uint8), kept)  # type: ignore[arg-type]
    assert out.masks is None and out.labels == ["a"] and out.boxes.tolist() == [[0, 0, 4, 4]]


# -- merge-parts: which box claims shared parts, bounds, boxes off the frame ---------------------------
def _merge(boxes: list[list[float]], masks: list[tuple[slice, slice]], labels: list[str], **cfg: float):  # type: ignore[no-untyped-def]
    from avseg_refiners.merge_parts import MergeParts

    from avseg.types import Proposals

    m = np.zeros((len(boxes), 40, 60), bool)
    for k, (ys, xs) in enumerate(masks):
        m[k, ys, xs] = True
    kept = Proposals(np.array(boxes, np.float32), np.full(len(boxes), 0.5, np.float32), labels, m)
    return MergeParts(MergeParts.Config(**cfg), None).refine(np.zeros((40, 60, 3), np.uint8), kept)  # type: ignore[arg-type]


def test_merge_parts_two_groups_in_one_frame_after_a_box_outside_it() -> None:
    """By box area: the box outside the frame, a (whose half p joins it), p, b (whose half q joins
    it), q. Neither the empty box nor the already-merged p stops the search for b's group."""
    out = _merge([[-100, 0, -50, 40], [0, 0, 20, 20], [10, 0, 20, 20], [30, 0, 40, 10], [35, 0, 40, 10]],
                 [(slice(39, 40), slice(59, 60)), (slice(0, 20), slice(0, 10)), (slice(0, 20), slice(10, 20)),
                  (slice(0, 10), slice(30, 35)), (slice(0, 10), slice(35, 40))], ["off", "a", "p", "b", "q"])
    assert out.labels == ["a", "b", "off"] and out.masks is not None
    assert [int(m.sum()) for m in out.masks] == [400, 100, 1]


def test_merge_parts_a_box_at_the_frame_edge_includes_column_and_row_zero() -> None:
    # the owner's mask misses column 0 (or row 0), which the thin part covers: together the whole box
    for box, thin, rest in (([0, 0, 10, 10], [0, 0, 1, 10], (slice(0, 10), slice(1, 10))),
                            ([0, 0, 10, 10], [0, 0, 10, 1], (slice(1, 10), slice(0, 10)))):
        thin_mask = (slice(0, 10), slice(0, 1)) if thin[2] == 1 else (slice(0, 1), slice(0, 10))
        out = _merge([box, thin], [rest, thin_mask], ["owner", "thin"], gain=0.05)
        assert out.labels == ["owner"] and out.masks is not None and out.masks[0].sum() == 100


def test_merge_parts_defaults_and_one_object_untouched() -> None:
    from avseg_refiners.merge_parts import MergeParts

    cfg = MergeParts.Config()
    assert (cfg.inside, cfg.gain, cfg.min_coverage) == (0.8, 0.15, 0.5)
    one = _merge([[0, 0, 10, 10]], [(slice(0, 10), slice(0, 5))], ["solo"])
    assert one.labels == ["solo"] and one.masks is not None and one.masks[0].sum() == 50


def test_merge_parts_the_larger_box_claims_shared_parts_first() -> None:
    """Box b (20 x 30 = 600 px) is larger than box a (40 x 10 = 400 px); both could take parts p and
    q, which lie where they overlap: b does, a stays alone. (No box starts at x = y, so an area
    computed from the wrong corner reorders them.)"""
    out = _merge([[0, 10, 40, 20], [0, 10, 20, 40], [0, 10, 10, 20], [10, 10, 20, 20]],
                 [(slice(10, 20), slice(30, 40)), (slice(30, 40), slice(0, 20)),
                  (slice(10, 20), slice(0, 10)), (slice(10, 20), slice(10, 20))], ["a", "b", "p", "q"])
    assert out.labels == ["b", "a"] and out.masks is not None
    assert out.masks[0].sum() == 400 and out.masks[1].sum() == 100


def test_merge_parts_a_box_outside_the_frame_claims_nothing() -> None:
    out = _merge([[-10, 0, 0, 10], [0, 5, 1, 10]], [(slice(0, 5), slice(0, 1)), (slice(5, 10), slice(0, 1))],
                 ["off", "on"])
    assert out.labels == ["off", "on"]


def test_merge_parts_the_truly_larger_box_wins_where_a_wrong_corner_area_would_not() -> None:
    """Box a (20 x 10 = 200 px) holds box b (14 x 6 = 84 px), split into halves p and q; a's own mask
    is its right strip, b's lies elsewhere. a is larger, so a takes p and q and b stays alone. An area from a wrong corner
    ((y1 - x0) or (y0 - x0) times the height, or the width times (y1 - x1)) ranks b above a: b would
    take p and q."""
    out = _merge([[18, 0, 38, 10], [18, 0, 32, 6], [18, 0, 25, 6], [25, 0, 32, 6]],
                 [(slice(0, 10), slice(32, 38)), (slice(30, 40), slice(50, 60)),
                  (slice(0, 6), slice(18, 25)), (slice(0, 6), slice(25, 32))], ["a", "b", "p", "q"])
    assert out.labels == ["a", "b"] and out.masks is not None
    assert [int(m.sum()) for m in out.masks] == [60 + 84, 100]
    # a's merged mask: p and q (rows 0-5 of columns 18-31) and its own strip (columns 32-37)
    assert out.masks[0][0:6, 18:38].all() and out.masks[0][6:10, 32:38].all()


def test_merge_parts_a_part_exactly_at_the_inside_fraction_is_a_part() -> None:
    # the part has 200 of its 400 px inside the owner's box: exactly inside=0.5
    out = _merge([[0, 0, 20, 20], [10, 0, 30, 20]], [(slice(0, 20), slice(0, 10)), (slice(0, 20), slice(10, 30))],
                 ["owner", "part"], inside=0.5)
    assert out.labels == ["owner"] and out.masks is not None and int(out.masks[0].sum()) == 600
    # just under the fraction (199 of 400 px inside): not a part
    out = _merge([[0, 0, 20, 20], [10, 0, 30, 20]], [(slice(0, 20), slice(0, 10)), (slice(0, 20), slice(10, 30))],
                 ["owner", "part"], inside=0.5 + 1 / 400)
    assert out.labels == ["owner", "part"]


def test_merge_parts_a_union_exactly_at_min_coverage_merges() -> None:
    # two 100 px parts in the top half of a 400 px box whose owner's mask lies elsewhere: 200 / 400 = 0.5
    boxes = [[0, 0, 20, 20], [0, 0, 10, 10], [10, 0, 20, 10]]
    masks = [(slice(30, 40), slice(50, 60)), (slice(0, 10), slice(0, 10)), (slice(0, 10), slice(10, 20))]
    out = _merge(boxes, masks, ["owner", "l", "r"], min_coverage=0.5)
    assert out.labels == ["owner"] and out.masks is not None and int(out.masks[0].sum()) == 300
    out = _merge(boxes, masks, ["owner", "l", "r"], min_coverage=0.5 + 1 / 400)
    assert out.labels == ["owner", "l", "r"]


def test_merge_parts_a_larger_box_with_one_part_does_not_stop_the_search() -> None:
    # L (400 px, its own mask only) comes first; the smaller box of p still merges its halves p and q
    out = _merge([[40, 20, 60, 40], [0, 0, 20, 10], [10, 0, 20, 10]],
                 [(slice(20, 40), slice(40, 60)), (slice(0, 10), slice(0, 10)), (slice(0, 10), slice(10, 20))],
                 ["L", "p", "q"])
    assert out.labels == ["p", "L"] and out.masks is not None
    assert [int(m.sum()) for m in out.masks] == [200, 400]


def test_merge_parts_a_box_alone_in_itself_is_no_group_even_at_gain_zero() -> None:
    # object 1's large box holds only its own mask: with gain 0 it must not become a one-member group
    # (which would move it before object 0)
    out = _merge([[50, 30, 60, 40], [0, 0, 20, 20]], [(slice(30, 40), slice(50, 60)), (slice(0, 20), slice(0, 20))],
                 ["small", "large"], gain=0.0)
    assert out.labels == ["small", "large"]


@pytest.mark.parametrize(("box", "p", "q"), [
    ([0, -10, 10, 0], (slice(0, 1), slice(0, 5)), (slice(0, 1), slice(5, 10))),        # ends at row 0
    ([0, -20, 60, -10], (slice(0, 40), slice(0, 30)), (slice(0, 40), slice(30, 60))),  # ends above row 0
    ([-20, 0, -10, 40], (slice(0, 20), slice(0, 60)), (slice(20, 40), slice(0, 60))),  # ends left of column 0
])
def test_merge_parts_a_box_above_or_left_of_the_frame_claims_nothing(box: list[float], p: tuple[slice, slice],
                                                                      q: tuple[slice, slice]) -> None:
    """The off-frame box is the largest; p and q would fill whatever rows or columns it wrongly claimed."""
    def extent(s: tuple[slice, slice]) -> list[float]:
        return [s[1].start, s[0].start, s[1].stop, s[0].stop]

    out = _merge([box, extent(p), extent(q)], [(slice(39, 40), slice(59, 60)), p, q], ["off", "p", "q"])
    assert out.labels == ["off", "p", "q"]


def test_merge_parts_groups_of_one_object_are_that_object() -> None:
    from avseg_refiners.merge_parts import MergeParts, merge_groups

    from avseg.types import Proposals

    one = Proposals(np.array([[0, 0, 4, 4]], np.float32), np.ones(1, np.float32), ["a"], np.ones((1, 4, 4), bool))
    assert merge_groups(one, MergeParts.Config()) == [[0]]
    assert merge_groups(Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [], np.zeros((0, 4, 4), bool)),
                        MergeParts.Config()) == []


@pytest.mark.parametrize(("field", "ok", "bad"), [("inside", [1.0, 0.0078125], [0.0, 1.25]),
                                                  ("gain", [0.0, 1.0], [-0.25, 1.25]),
                                                  ("min_coverage", [0.0, 1.0], [-0.25, 1.25])])
def test_merge_parts_bounds(field: str, ok: list[float], bad: list[float]) -> None:
    from avseg_refiners.merge_parts import MergeParts

    for v in ok:
        MergeParts.Config(**{field: v})
    for v in bad:
        with pytest.raises(ValidationError, match=field):
            MergeParts.Config(**{field: v})


def test_avis_warns_once_about_a_custom_tree_with_problems(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tree = tmp_path / "tree.yaml"
    tree.write_text("broad_sources:\n  pet:\n    dog: [Barkk]\n")
    with caplog.at_level("WARNING"):
        _avis(tree=str(tree))
    assert f"avseg tree validate {tree}" in caplog.text and "1 problem" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        _avis()  # the bundled tree is clean
    assert "problem" not in caplog.text


def test_largest_component_connectivity_options_and_default() -> None:
    from avseg_refiners.largest_component import LargestComponent, largest_component

    assert LargestComponent.Config().connectivity == 8
    assert LargestComponent.Config(connectivity=4).connectivity == 4
    assert LargestComponent.Config(connectivity=8).connectivity == 8
    with pytest.raises(ValidationError, match="connectivity"):
        LargestComponent.Config(connectivity=6)  # type: ignore[arg-type]
    diag = np.zeros((5, 5), bool)
    diag[0:2, 0:2] = True  # 4 px
    diag[2, 2] = True  # touches the square at a corner only
    diag[4, 0:3] = True  # 3 px apart
    joined = diag.copy()
    joined[4] = False  # by default (8-connected) the square and its corner pixel are one 5 px piece
    np.testing.assert_array_equal(largest_component(diag), joined)
    assert largest_component(diag).sum() == 5 and largest_component(diag, 4).sum() == 4


class _Nearest:
    """Stands in for the MiniLM linker's nearest-category lookup (its model is tested by
    test_avis.py's minilm tests): fixed (category, similarity) per label, so that a similarity
    can sit exactly at link_threshold."""

    def __init__(self, table: dict[str, tuple[str, float]]) -> None:
        self.table = table

    def nearest(self, labels: list[str]) -> list[tuple[str, float, str]]:
        return [(*self.table[x], self.table[x][0]) for x in labels]


def test_avis_links_a_label_whose_similarity_is_exactly_the_link_threshold() -> None:
    f = _avis(linker="minilm", link_threshold=0.5)
    f._linker = _Nearest({"puppy": ("dog", 0.5), "kitty": ("cat", 0.4921875), "wuffer": ("dog", 0.654321)})
    res = f(_avis_ctx(["puppy", "kitty", "wuffer", " "], {"Bark": 0.75}))
    assert res.keep == [0, 2] and set(res.drops) == {1, 3} and res.extra is not None
    assert [e["link"] for e in res.extra] == ["minilm", None, "minilm", None]
    assert [e["link_similarity"] for e in res.extra] == [0.5, 0.4922, 0.6543, None]
    assert res.extra[1]["nearest"] == "cat" and res.extra[1]["category"] is None
    assert "similarity 0.49 < link_threshold 0.50" in res.drops[1].reason
    assert "names no tree category" in res.drops[3].reason  # a blank label never reaches the linker


def test_avis_link_threshold_bounds_and_audio_score_rounding() -> None:
    from avseg_avis import AvisFilter

    assert AvisFilter.Config().link_threshold == 0.6
    for v in (-1.0, 1.0):
        AvisFilter.Config(link_threshold=v)
    for v in (-1.25, 1.25):
        with pytest.raises(ValidationError, match="link_threshold"):
            AvisFilter.Config(link_threshold=v)
    res = _avis()(_avis_ctx(["dog"], {"Bark": 0.123456}))
    assert res.extra is not None and res.extra[0]["audio_score"] == 0.1235
    assert res.extra[0]["broad_audio_score"] == 0.1235  # dog's broad source, pet, has only Bark


def test_avis_warning_names_the_first_problem(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from avseg.tree import load_tree

    tree = tmp_path / "tree.yaml"
    tree.write_text("broad_sources:\n  pet:\n    dog: [Barkk]\n    cat: [Meoww]\n")
    problems = load_tree(tree).validate()
    assert len(problems) >= 2
    with caplog.at_level("WARNING"):
        _avis(tree=str(tree))
    assert problems[0] in caplog.text and problems[-1] not in caplog.text


# -- the audio-visual tree ----------------------------------------------------------------------------
def test_tree_validate_reports_two_categories_with_one_normalised_name() -> None:
    from avseg.tree import parse_tree

    problems = parse_tree({"broad_sources": {"pet": {"dog": ["Bark"], "Dog": ["Growling"]}}}).validate()
    assert "categories 'dog' and 'Dog' are the same name once normalised" in problems
    assert parse_tree({"broad_sources": {"pet": {"dog": ["Bark"], "cat": ["Meow"]}}}).validate() == []


def test_tree_link_texts_are_category_names_and_their_aliases() -> None:
    from avseg.tree import parse_tree

    tree = parse_tree({"broad_sources": {"pet": {"dog": ["Bark"]}, "vehicle": {"car": ["Engine"]}},
                       "aliases": {"dog": ["Puppy", "hound dog"], "car": ["automobile"]}})
    assert sorted(tree.link_texts()) == [("automobile", "car"), ("car", "car"), ("dog", "dog"),
                                         ("hound dog", "dog"), ("puppy", "dog")]


def test_tree_validation_suggests_up_to_three_close_names() -> None:
    from avseg.tree import parse_tree

    tree = parse_tree({"broad_sources": {"pet": {"dog": ["Barkx"]}}})
    (problem,) = tree.validate(["Bark", "Barks", "Barky", "Barkz", "Meow"])
    assert problem.count("'Bark") == 4 and "did you mean 'Bark', " in problem  # the name, then 3 matches


@pytest.mark.parametrize(("box", "margin"), [([0, 0, 10, 10], 0), ([5, 2, 15, 12], 5), ([20, 5, 30, 15], 0),
                                             ([2, 20, 12, 30], 3)])
def test_clip_to_box_keeps_what_lies_inside_the_grown_box_even_at_the_frame_edge(box: list[int], margin: int) -> None:
    from avseg_refiners.clip_to_box import ClipToBox

    from avseg.types import Proposals

    inside = np.zeros((40, 60), bool)
    x0, y0 = max(0, box[0] - margin), max(0, box[1] - margin)
    inside[y0:box[3] + margin, x0:box[2] + margin] = True
    leak = inside.copy()
    leak[:, 50:] = True  # a leak far to the right of every box
    kept = Proposals(np.array([box], np.float32), np.ones(1, np.float32), ["x"], leak[None])
    out = ClipToBox(ClipToBox.Config(margin=margin), None).refine(np.zeros((40, 60, 3), np.uint8), kept)  # type: ignore[arg-type]
    assert out.masks is not None
    np.testing.assert_array_equal(out.masks[0], inside)


def test_tree_lookups_accept_a_category_in_any_case() -> None:
    from avseg.tree import load_tree

    tree = load_tree(None)
    assert tree.broad_of("Dog") == tree.broad_of("dog") == "pet" and tree.leaves_of("DOG") == tree.leaves_of("dog")


def test_tree_a_category_listed_twice_is_one_problem_not_two() -> None:
    from avseg.tree import parse_tree

    tree = parse_tree({"broad_sources": {"pet": {"dog": ["Bark"], "cat": ["Meow"]}, "farm": {"dog": ["Bark"]}}})
    assert tree.validate() == ["category 'dog' appears more than once: under pet, farm"]
    empty = parse_tree({"broad_sources": {"pet": {"dog": ["Bark"]}, "farm": {}}})
    assert empty.validate() == ["broad source 'farm' has no categories"]


def test_tree_show_draws_the_last_category_of_a_broad_source_last() -> None:
    from avseg.tree import parse_tree

    tree = parse_tree({"broad_sources": {"pet": {"dog": ["Bark"], "cat": ["Meow", "Purr"]}}})
    assert tree.show("pet").splitlines() == ["pet", "├── dog", "│   └── Bark", "└── cat", "    ├── Meow", "    └── Purr"]


def test_tree_names_the_first_unknown_top_level_key() -> None:
    from avseg.errors import ConfigError
    from avseg.tree import parse_tree

    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        parse_tree({"broad_sources": {}, "colour": 1, "size": 2})


def test_clip_to_box_margin_bounds() -> None:
    from avseg_refiners.clip_to_box import ClipToBox

    for v in (0, 10000):
        assert ClipToBox.Config(margin=v).margin == v
    for v in (-1, 10001):
        with pytest.raises(ValidationError, match="margin"):
            ClipToBox.Config(margin=v)


def test_tree_unknown_broad_source_is_a_usage_error_with_a_suggestion() -> None:
    from avseg.errors import UsageError
    from avseg.tree import load_tree

    with pytest.raises(UsageError, match="unknown broad source 'pett'.*pet"):
        load_tree(None).categories_in("pett")


def test_tree_to_dict_keeps_its_own_background_list_only() -> None:
    from avseg.tree import parse_tree

    data = {"broad_sources": {"pet": {"dog": ["Bark"]}}, "aliases": {"dog": ["puppy"]}, "background": ["Noise"]}
    assert parse_tree(data).to_dict() == data
    assert "background" not in parse_tree({"broad_sources": {"pet": {"dog": ["Bark"]}}}).to_dict()


def test_tree_an_alias_of_two_categories_is_a_problem_but_not_one_repeated() -> None:
    from avseg.tree import parse_tree

    tree = parse_tree({"broad_sources": {"pet": {"dog": ["Bark"], "cat": ["Meow"]}},
                       "aliases": {"dog": ["pet animal", "Pet Animal"], "cat": ["pet animal"]}})
    assert tree.validate() == ["alias 'pet animal' is given for both 'dog' and 'cat'"]


# -- av-sync --------------------------------------------------------------------------------------------
def test_avsync_keep_best_keeps_track_zero_and_the_first_of_tied_tracks() -> None:
    from avseg_sync.avsync import AVSync

    from avseg.types import Proposals
    from tests.test_av_sync import _constructed

    ctx, _ = _constructed()
    boxes = ctx.proposals[0].boxes  # box 1 sounds
    for order, kept in (([1, 0, 2], [0]), ([1, 1, 0], [0])):  # the sounding box first; then twice, tied
        ctx.proposals = [Proposals(boxes[order], np.ones(3, np.float32)) for _ in ctx.proposals]
        res = AVSync(AVSync.Config(keep="best"), None).filter_clip(ctx)  # type: ignore[arg-type]
        assert [r.keep for r in res] == [kept] * 5, order


def test_avsync_lagged_correlation_needs_three_overlapping_points() -> None:
    from avseg_sync.avsync import best_lagged_correlation

    v, a = np.array([0, 1, 3], np.float32), np.array([1, 3, 2], np.float32)
    r, lag = best_lagged_correlation(v, a, 1)  # lags of +-1 overlap by 2 points only (and would give r = 1)
    assert lag == 0 and r == pytest.approx(np.corrcoef(v, a)[0, 1])


def test_avsync_envelope_of_a_window_shorter_than_a_sample() -> None:
    from avseg_sync.avsync import audio_envelope

    out = audio_envelope(np.full(100, 0.5, np.float32), 10, [0.0, 0.01, 0.02])
    np.testing.assert_allclose(out, [0.5, 0.5, 0.5])
