"""Region modes: the shared crop helper, and `regions: masked` checked before any model loads."""

from __future__ import annotations

import numpy as np
import pytest

from avseg.errors import ChainError
from avseg.regions import GREY, box_pixels, region_crops
from avseg.registry import load_registry
from avseg.spec import compose, resolve
from avseg.spec_mapping import normalise


def frame_and_mask() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    mask = np.zeros((1, 30, 40), bool)
    mask[0, 10:20, 10:20] = True
    return frame, mask


def test_box_and_masked_crops() -> None:
    frame, mask = frame_and_mask()
    box = [[5.0, 5.0, 25.0, 25.0]]
    plain = region_crops(frame, box, mask, regions="box")[0]
    assert np.array_equal(plain, frame[5:25, 5:25])  # box mode ignores the mask
    assert np.array_equal(region_crops(frame, box, None, regions="auto")[0], plain)
    grey = region_crops(frame, box, mask, regions="masked", background="grey")[0]
    assert np.array_equal(grey[5:15, 5:15], frame[10:20, 10:20])  # inside the mask: untouched
    assert (grey[:5] == GREY).all() and (grey[:, 15:] == GREY).all()
    blur = region_crops(frame, box, mask, regions="masked", background="blur", blur_kernel=5)[0]
    assert np.array_equal(blur[5:15, 5:15], frame[10:20, 10:20]) and not np.array_equal(blur[:5], frame[5:10, 5:25])
    black = region_crops(frame, box, mask, regions="auto", background="black")[0]
    assert (black[:5] == 0).all()
    with pytest.raises(ValueError, match="regions 'masked' needs masks"):
        region_crops(frame, box, None, regions="masked")


def test_box_pixels_rounds_like_pil_and_clamps() -> None:
    assert box_pixels([0.4, 0.6, 10.5, 9.49], 40, 30) == (0, 1, 10, 9)
    assert box_pixels([50, 50, 60, 60], 40, 30) == (39, 29, 40, 30)  # outside: still one pixel
    assert box_pixels([5, 5, 5, 5], 40, 30) == (5, 5, 6, 6)


def test_masked_regions_need_a_segmenter_before_the_embedder() -> None:
    reg = load_registry()
    # a legacy spec is converted once: SAM is placed before the masked embedder
    legacy = {"proposer": "owod", "embedder": {"type": "imagebind", "regions": "masked"}, "segmenter": "sam",
              "filters": ["score-threshold", "bind"]}
    rs = resolve(normalise(legacy, reg), reg)
    assert rs.step_names() == ["proposer:owod", "filter:score-threshold", "segmenter:sam", "embedder:imagebind",
                              "filter:bind"]
    # a steps preset keeps its written order: masked crops before SAM are refused in one line
    with pytest.raises(ChainError, match=r"^step 3 \(embedder 'imagebind'\) needs masks but no earlier step "
                                         r"produces them; put a segmenter before it$"):
        resolve(compose("owod-bind", sets=["embedder.regions=masked"], registry=reg), reg)
    bad = {"steps": [{"proposer": "owod"}, {"embedder": {"type": "imagebind", "regions": "masked"}},
                     {"filter": "bind"}, {"segmenter": "sam"}]}
    with pytest.raises(ChainError, match=r"^step 2 \(embedder 'imagebind'\) needs masks but no earlier step produces "
                                         r"them; put a segmenter before it$"):
        resolve(bad, reg)


# -- boundaries of the crop helper (mutation testing, docs/testing.md) ------------------------------


@pytest.mark.parametrize(("box", "expected"), [
    ([0, 0, 40, 30], (0, 0, 40, 30)),  # the whole frame, exactly
    ([25.0, 20.0, 5.0, 4.0], (5, 4, 25, 20)),  # corners given in the wrong order
    ([-7, -3, 12, 9], (0, 0, 12, 9)),  # clamped at 0
    ([-9, -9, -2, -2], (0, 0, 1, 1)),  # wholly above-left: the first pixel
    ([10, 10, 90, 80], (10, 10, 40, 30)),  # clamped at the far edges
    ([39, 29, 39, 29], (39, 29, 40, 30)),  # zero area on the last pixel
    ([40, 30, 40, 30], (39, 29, 40, 30)),  # zero area just outside
    ([12, 7, 13, 8], (12, 7, 13, 8)),  # exactly one pixel
    ([2.5, 3.5, 6.5, 7.5], (2, 4, 6, 8)),  # round half to even, like PIL's crop of float boxes
])
def test_box_pixels_at_the_frame_edges(box: list[float], expected: tuple[int, int, int, int]) -> None:
    assert box_pixels(box, 40, 30) == expected


def test_every_background_outside_the_mask_and_the_crop_inside() -> None:
    from avseg.regions import blur_frame, region_crop

    frame, masks = frame_and_mask()
    box = [6.0, 8.0, 31.0, 24.0]  # x 6..31, y 8..24: the mask (10..20) lies inside
    crop = frame[8:24, 6:31]
    inside = masks[0, 8:24, 6:31]
    blurred = blur_frame(frame, 7)
    expected = {
        "blur": blurred[8:24, 6:31],
        "grey": np.full_like(crop, 128),
        "black": np.zeros_like(crop),
    }
    for background, outside in expected.items():
        got = region_crops(frame, [box], masks, regions="masked", background=background, blur_kernel=7)[0]
        assert got.shape == crop.shape and got.dtype == np.uint8
        np.testing.assert_array_equal(got, np.where(inside[..., None], crop, outside), err_msg=background)
        np.testing.assert_array_equal(region_crop(frame, box, masks[0], background, blurred), got)
    # "keep" and "box" leave every pixel as it is, mask or not
    np.testing.assert_array_equal(region_crops(frame, [box], masks, regions="masked", background="keep")[0], crop)
    np.testing.assert_array_equal(region_crops(frame, [box], masks, regions="box", background="black")[0], crop)
    np.testing.assert_array_equal(region_crop(frame, box, masks[0], "keep"), crop)
    np.testing.assert_array_equal(region_crop(frame, box, None, "black"), crop)
    with pytest.raises(ValueError, match="needs the blurred frame"):
        region_crop(frame, box, masks[0], "blur")


def test_the_default_blur_is_the_authors_21_pixel_gaussian() -> None:
    import cv2

    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (60, 70, 3), dtype=np.uint8)
    mask = np.zeros((1, 60, 70), bool)  # nothing inside: the crop is all background
    got = region_crops(frame, [[0, 0, 70, 60]], mask, regions="masked")[0]
    np.testing.assert_array_equal(got, cv2.GaussianBlur(frame, (21, 21), 0))
    from avseg.regions import blur_frame

    np.testing.assert_array_equal(blur_frame(frame), got)


def test_each_region_gets_its_own_mask() -> None:
    frame, _ = frame_and_mask()
    masks = np.zeros((3, 30, 40), bool)
    masks[0, 0:5, 0:5] = True
    masks[1, 10:15, 10:15] = True
    masks[2, 20:30, 30:40] = True
    boxes = [[0, 0, 40, 30]] * 3
    crops = region_crops(frame, boxes, masks, regions="auto", background="black")
    for i, crop in enumerate(crops):
        np.testing.assert_array_equal(crop, np.where(masks[i][..., None], frame, 0))


def test_no_boxes_need_no_masks() -> None:
    frame, _ = frame_and_mask()
    assert region_crops(frame, [], None, regions="masked") == []
    assert region_crops(frame, np.zeros((0, 4)), np.zeros((0, 30, 40), bool), regions="masked") == []
