"""gdino's prompt text, output-size rounding and label pairing at their boundaries; the size is
compared with GroundingDINO's own ``datasets.transforms.resize`` where it is installed. Fast:
no model is built (the model itself: tests/test_plugin_gdino.py)."""

from __future__ import annotations

import numpy as np
import pytest
from avseg_gdino.proposer import authors_resize_shape
from avseg_gdino.vocab import detection_labels, prompt_text, resolve_vocabulary

from avseg.errors import ConfigError

#: (h, w, shortest, longest) -> (h, w) out, worked by hand from the authors' rule
HAND = [
    ((480, 640, 800, 1333), (800, 1066)),  # 640/480*800 = 1066.7: under the cap, int() of it
    ((640, 480, 800, 1333), (1066, 800)),  # the same, tall
    ((1000, 500, 800, 1333), (1332, 666)),  # 2*800 > 1333: short side round(666.5) = 666, long int(1332)
    ((500, 1000, 800, 1333), (666, 1332)),
    ((100, 100, 800, 1333), (800, 800)),  # square
    ((800, 1000, 800, 1333), (800, 1000)),  # short side already at size: unchanged
    ((1000, 800, 800, 1333), (1000, 800)),
    ((10, 20, 3, 6), (3, 6)),  # 20/10*3 = 6: exactly at the cap, kept
    ((10, 21, 3, 6), (3, 6)),  # 21/10*3 = 6.3 > 6: size round(6*10/21) = round(2.86) = 3
    ((10, 30, 3, 6), (2, 6)),  # 30/10*3 = 9 > 6: size round(2.0) = 2, long int(2*30/10) = 6
    ((48, 100, 61, 128), (61, 127)),  # the tiny model: 61 x int(61*100/48 = 127.08)
    ((3, 5, 3, 100), (3, 5)),  # the short side equals size: unchanged
    ((5, 3, 3, 100), (5, 3)),
    ((5, 8, 8, 100), (8, 12)),  # the LONG side equals size: still resized, short side to 8
    ((8, 5, 8, 100), (12, 8)),
]


@pytest.mark.parametrize(("args", "expected"), HAND)
def test_authors_resize_shape_by_hand(args: tuple[int, int, int, int], expected: tuple[int, int]) -> None:
    assert authors_resize_shape(*args) == expected


def test_authors_resize_shape_equals_groundingdino_transforms() -> None:
    from tests.deps import requires

    requires("groundingdino")
    from groundingdino.datasets.transforms import resize
    from PIL import Image

    shapes = [args for args, _ in HAND] + [(h, w, 7, 11) for h in (3, 5, 7, 8, 11, 13) for w in (2, 7, 9, 12, 20)]
    for h, w, short, long in shapes:
        img = Image.new("RGB", (w, h))
        out, _ = resize(img, None, short, long)
        assert authors_resize_shape(h, w, short, long) == (out.size[1], out.size[0]), (h, w, short, long)


def test_prompt_text_joins_with_a_dot_after_each_label() -> None:
    assert prompt_text(["dog"]) == "dog."
    assert prompt_text(["dog", "acoustic guitar", "cat"]) == "dog. acoustic guitar. cat."
    assert prompt_text([]) == ""


def test_detection_labels_pair_one_label_per_box() -> None:
    assert detection_labels({"text_labels": ["dog", "cat"]}, 2) == ["dog", "cat"]
    assert detection_labels({"text_labels": ["dog"]}, 1) == ["dog"]
    assert detection_labels({"text_labels": [""]}, 0) == []  # transformers' empty batch of phrases
    assert detection_labels({"text_labels": []}, 0) == []
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        detection_labels({"text_labels": ["dog"]}, 2)
    with pytest.raises(ValueError, match="1 boxes but 2 labels"):
        detection_labels({"text_labels": ["dog", "cat"]}, 1)


def test_resolve_vocabulary(tmp_path) -> None:
    assert resolve_vocabulary(None) is None
    assert resolve_vocabulary(["The Dog", "acoustic_guitar", "dog"]) == ["dog", "acoustic guitar"]
    f = tmp_path / "v.txt"
    f.write_text("# only a comment\n\n")
    with pytest.raises(ConfigError, match="holds no names"):
        resolve_vocabulary(str(f))
    f.write_text("# one\nA cat\n")
    assert resolve_vocabulary(str(f)) == ["cat"]
    assert len(resolve_vocabulary("avsbench-s4") or []) == 23
    assert np.all([isinstance(n, str) for n in resolve_vocabulary("coco") or []])
