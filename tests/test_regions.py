"""Region modes: the shared crop helper, and `regions: masked` checked before any model loads."""

from __future__ import annotations

import numpy as np
import pytest

from avseg.errors import ChainError
from avseg.regions import GREY, box_pixels, region_crops
from avseg.registry import load_registry
from avseg.spec import compose, resolve


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
    spec = compose("owod-bind", sets=["embedder.regions=masked"], registry=reg)
    rs = resolve(spec, reg)  # legacy order: SAM is pulled in before the masked embedder
    assert rs.step_names() == ["proposer:owod", "filter:score-threshold", "segmenter:sam", "embedder:imagebind",
                              "filter:bind"]
    bad = {"steps": [{"proposer": "owod"}, {"embedder": {"type": "imagebind", "regions": "masked"}},
                     {"filter": "bind"}, {"segmenter": "sam"}]}
    with pytest.raises(ChainError, match=r"^step 2 \(embedder 'imagebind'\) needs masks but no earlier step produces "
                                         r"them; put a segmenter before it$"):
        resolve(bad, reg)
