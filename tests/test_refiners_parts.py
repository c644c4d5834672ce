"""The mask refiners merge-parts, largest-component and clip-to-box on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest
from avseg_refiners.clip_to_box import ClipToBox, ClipToBoxConfig
from avseg_refiners.largest_component import LargestComponent, LargestComponentConfig
from avseg_refiners.merge_parts import MergeParts, MergePartsConfig

from avseg.runtime import Runtime
from avseg.types import Proposals

FRAME = np.zeros((40, 60, 3), np.uint8)


def _piano(first: str = "black") -> tuple[Proposals, np.ndarray]:
    """A 40x20 piano box (800 px): white keys 600 px, black keys 200 px (5 stripes of 4x10),
    plus a separate drum elsewhere. Order: black keys (small box) or white keys first."""
    white = np.zeros((40, 60), bool)
    white[10:30, 10:50] = True
    black = np.zeros((40, 60), bool)
    for x in range(12, 50, 8):
        black[10:20, x:x + 4] = True
    white &= ~black
    drum = np.zeros((40, 60), bool)
    drum[32:38, 52:58] = True
    objs = {"white": ([10, 10, 50, 30], "piano", white), "black": ([12, 10, 48, 20], "keys", black),
            "drum": ([52, 32, 58, 38], "drum", drum)}
    order = [first, "white" if first == "black" else "black", "drum"]
    p = Proposals(np.asarray([objs[k][0] for k in order], np.float32), np.asarray([0.5, 0.9, 0.7], np.float32),
                  [objs[k][1] for k in order], np.stack([objs[k][2] for k in order]))
    return p, white | black


@pytest.mark.parametrize("first", ["black", "white"])
def test_merge_parts_turns_the_split_piano_into_one_mask(first: str) -> None:
    kept, piano = _piano(first)
    out = MergeParts(MergePartsConfig(), Runtime()).refine(FRAME, kept)
    assert len(out) == 2 and out.masks is not None
    assert out.labels == ["piano", "drum"]  # the box owner's label and box, even when it is not first
    assert np.array_equal(out.masks[0], piano)
    assert out.boxes[0].tolist() == [10, 10, 50, 30]
    assert out.masks[1].sum() == 36  # the drum is left alone


def test_merge_parts_gain_boundary() -> None:
    kept, _ = _piano()
    # best part covers 600/800 = 0.75 of the box, the union 1.0: a gain of exactly 0.25 merges
    assert len(MergeParts(MergePartsConfig(gain=0.25), Runtime()).refine(FRAME, kept)) == 2
    assert len(MergeParts(MergePartsConfig(gain=0.26), Runtime()).refine(FRAME, kept)) == 3


def test_merge_parts_leaves_objects_in_their_own_boxes() -> None:
    a = np.zeros((40, 60), bool)
    a[5:15, 5:15] = True
    b = np.zeros((40, 60), bool)
    b[20:30, 30:40] = True
    kept = Proposals(np.asarray([[5, 5, 15, 15], [30, 20, 40, 30]], np.float32), np.ones(2, np.float32),
                     masks=np.stack([a, b]))
    out = MergeParts(MergePartsConfig(), Runtime()).refine(FRAME, kept)
    assert len(out) == 2 and out.masks is not None and np.array_equal(out.masks, kept.masks)


def test_largest_component_keeps_the_biggest_piece() -> None:
    m = np.zeros((40, 60), bool)
    m[2:5, 2:5] = True  # 9 px, first in scan order
    m[20:30, 20:26] = True  # 60 px
    kept = Proposals(np.asarray([[0, 0, 60, 40]], np.float32), np.ones(1, np.float32), masks=m[None])
    out = LargestComponent(LargestComponentConfig(), Runtime()).refine(FRAME, kept)
    assert out.masks is not None and out.masks[0].sum() == 60 and not out.masks[0, 3, 3]


def test_clip_to_box_cuts_the_leak_and_honours_the_margin() -> None:
    m = np.zeros((40, 60), bool)
    m[10:30, 10:40] = True
    kept = Proposals(np.asarray([[10, 10, 30, 20]], np.float32), np.ones(1, np.float32), masks=m[None])
    out = ClipToBox(ClipToBoxConfig(), Runtime()).refine(FRAME, kept)
    assert out.masks is not None and out.masks[0].sum() == 20 * 10
    out2 = ClipToBox(ClipToBoxConfig(margin=2), Runtime()).refine(FRAME, kept)
    assert out2.masks is not None and out2.masks[0].sum() == 22 * 12  # box grown to x 8..32, y 8..22; the mask starts at 10
