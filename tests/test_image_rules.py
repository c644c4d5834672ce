"""The frame and mask rules of avseg/data/images.py, at their boundaries: which pixel values a
frame of each mode becomes, which mask pixels are foreground, which sizes are refused. Fast (tiny
files), so that ``make mutants`` can judge the image reading with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from avseg.data.images import MAX_SIDE, image_size, read_mask, read_mask_values, read_rgb
from avseg.errors import InputError


def save(tmp_path: Path, im: PILImage.Image, name: str = "x.png") -> Path:
    p = tmp_path / name
    im.save(p)
    return p


def int_image(tmp_path: Path, values: list[int], mode: str) -> Path:
    """A one-row image of 16-bit (``I;16``, PNG) or 32-bit (``I``, TIFF) integers."""
    if mode == "I;16":
        return save(tmp_path, PILImage.fromarray(np.array([values], np.uint16)), "i16.png")
    return save(tmp_path, PILImage.fromarray(np.array([values], np.int32), "I"), "i32.tif")


def float_image(tmp_path: Path, values: list[float]) -> Path:
    return save(tmp_path, PILImage.fromarray(np.array([values], np.float32), "F"), "f.tif")


# -- frames ------------------------------------------------------------------------------------
def test_16bit_frames_are_scaled_to_8bit(tmp_path: Path) -> None:
    got = read_rgb(int_image(tmp_path, [0, 128, 25700, 51400, 65535], "I;16"))
    assert got.shape == (1, 5, 3) and got.dtype == np.uint8
    assert got[0, :, 0].tolist() == [0, 0, 100, 200, 255]
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 0] == got[..., 2]).all()


def test_32bit_integer_frames_are_clipped(tmp_path: Path) -> None:
    got = read_rgb(int_image(tmp_path, [-500, 0, 51400, 70000], "I"))
    assert got[0, :, 0].tolist() == [0, 0, 200, 255]


def test_float_frames_up_to_one_are_fractions(tmp_path: Path) -> None:
    assert read_rgb(float_image(tmp_path, [0.0, 0.2, 0.5, 0.6, 1.0, -0.5]))[0, :, 1].tolist() == [0, 51, 128, 153, 255, 0]
    # a maximum above 1: already 0..255, clipped
    assert read_rgb(float_image(tmp_path, [0.5, 1.5, 200.0, 300.0]))[0, :, 2].tolist() == [0, 2, 200, 255]
    assert read_rgb(float_image(tmp_path, [0.5, 1.5]))[0, :, 0].tolist() == [0, 2]  # a maximum of 1.5: not fractions


def test_non_finite_float_pixels_are_black(tmp_path: Path) -> None:
    got = read_rgb(float_image(tmp_path, [np.nan, np.inf, -np.inf, 1.0]))
    assert got[0, :, 0].tolist() == [0, 0, 0, 255]


def test_alpha_grey_and_palette_frames_become_rgb(tmp_path: Path) -> None:
    rgba = PILImage.fromarray(np.array([[[10, 20, 30, 0], [40, 50, 60, 255]]], np.uint8), "RGBA")
    assert read_rgb(save(tmp_path, rgba)).tolist() == [[[10, 20, 30], [40, 50, 60]]]
    grey = PILImage.fromarray(np.array([[7, 250]], np.uint8), "L")
    assert read_rgb(save(tmp_path, grey, "g.png")).tolist() == [[[7, 7, 7], [250, 250, 250]]]
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert (read_rgb(save(tmp_path, PILImage.fromarray(rgb), "c.png")) == rgb).all()


def test_a_frame_is_resized_only_to_another_size(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (10, 20, 3), dtype=np.uint8)
    p = save(tmp_path, PILImage.fromarray(rgb))
    assert (read_rgb(p, size=(20, 10)) == rgb).all()
    assert read_rgb(p, size=(10, 20)).shape == (20, 10, 3)
    assert read_rgb(p, size=(40, 10)).shape == (10, 40, 3)


@pytest.mark.parametrize(("w", "h", "size"), [(20, 30, (20, 20)), (30, 20, (20, 20)), (5, 4, (3, 4)), (4, 5, (4, 3))])
def test_a_frame_is_resized_when_one_side_differs(tmp_path: Path, w: int, h: int, size: tuple[int, int]) -> None:
    """A non-square frame to a square target of its own width or height (a 224x300 frame to 224x224)."""
    rgb = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    got = read_rgb(save(tmp_path, PILImage.fromarray(rgb)), size=size)
    assert got.shape == (size[1], size[0], 3)
    assert (got == np.asarray(PILImage.fromarray(rgb).resize(size, PILImage.Resampling.BILINEAR))).all()


@pytest.mark.parametrize(("w", "h", "ok"), [(8192, 1, True), (1, 8192, True), (1, 1, True),
                                            (8193, 1, False), (1, 8193, False)])
def test_the_largest_side_accepted(tmp_path: Path, w: int, h: int, ok: bool) -> None:
    p = save(tmp_path, PILImage.new("L", (w, h)))
    if ok:
        assert image_size(p) == (w, h)
        assert read_rgb(p).shape == (h, w, 3)
        return
    assert MAX_SIDE == 8192  # the documented limit (README, docs/evaluation.md)
    with pytest.raises(InputError, match=rf"^frame {p} is {w}x{h}; the largest accepted side is 8192 px "
                                         r"\(downscale it first\)$"):
        read_rgb(p)
    with pytest.raises(InputError, match=rf"^mask {p} is {w}x{h}"):
        read_mask(p)


def test_missing_and_corrupt_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=rf"^cannot read frame {tmp_path / 'no.png'}: file not found$"):
        read_rgb(tmp_path / "no.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match=rf"^cannot read mask {bad}: cannot identify image file"):
        read_mask(bad)  # the reason without its exception type
    with pytest.raises(InputError, match=rf"^cannot read prediction {bad}: "):
        read_mask_values(bad)


def test_a_truncated_file_is_named_without_a_traceback_type(tmp_path: Path) -> None:
    """The header opens, the pixels do not: one line naming the file, the reason without 'OSError:'."""
    rgb = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    p = save(tmp_path, PILImage.fromarray(rgb))
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"^cannot read frame {p}: image file is truncated"):
        read_rgb(p)
    grey = save(tmp_path, PILImage.fromarray(rgb[..., 0]), "m.png")
    grey.write_bytes(grey.read_bytes()[: grey.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"^cannot read mask {grey}: image file is truncated"):
        read_mask(grey)


# -- masks -------------------------------------------------------------------------------------
def test_8bit_masks_are_foreground_from_128(tmp_path: Path) -> None:
    p = save(tmp_path, PILImage.fromarray(np.array([[0, 127, 128, 255]], np.uint8), "L"))
    assert read_mask(p).tolist() == [[False, False, True, True]]
    assert read_mask_values(p).tolist() == [[0, 127, 128, 255]]


def test_16bit_masks_are_foreground_above_half(tmp_path: Path) -> None:
    p = int_image(tmp_path, [0, 32767, 32768, 65535], "I;16")
    assert read_mask(p).tolist() == [[False, False, True, True]]
    v = read_mask_values(p)
    assert v.dtype == np.float32 and v[0, 3] == 1.0 and v[0, 0] == 0.0 and abs(float(v[0, 2]) - 32768 / 65535) < 1e-6


def test_32bit_integer_masks_are_clipped_to_one(tmp_path: Path) -> None:
    p = int_image(tmp_path, [-5, 32768, 70000], "I")
    assert read_mask_values(p).tolist() == [[0.0, pytest.approx(32768 / 65535), 1.0]]
    assert read_mask(p).tolist() == [[False, True, True]]


def test_float_masks_are_foreground_above_half(tmp_path: Path) -> None:
    p = float_image(tmp_path, [np.nan, -1.0, 0.5, 0.51, 1.0, 7.0])
    assert read_mask_values(p).tolist() == [[0.0, 0.0, 0.5, pytest.approx(0.51), 1.0, 1.0]]
    assert read_mask(p).tolist() == [[False, False, False, True, True, True]]


def test_palette_masks_are_foreground_at_any_nonzero_index(tmp_path: Path) -> None:
    im = PILImage.fromarray(np.array([[0, 1, 2]], np.uint8), "P")
    im.putpalette([255, 255, 255, 0, 0, 0, 1, 1, 1] + [0] * 759)  # index 0 white, 1 black
    assert read_mask(save(tmp_path, im)).tolist() == [[False, True, True]]


def test_one_bit_and_grey_alpha_masks(tmp_path: Path) -> None:
    one = PILImage.fromarray(np.array([[0, 255, 0]], np.uint8), "L").convert("1")
    assert read_mask(save(tmp_path, one)).tolist() == [[False, True, False]]
    la = PILImage.fromarray(np.array([[[200, 0], [100, 255]]], np.uint8), "LA")
    assert read_mask(save(tmp_path, la, "la.png")).tolist() == [[True, False]]  # alpha ignored


def test_grey_rgb_masks_are_read_and_colour_ones_refused(tmp_path: Path) -> None:
    grey = np.array([[[128, 128, 128], [127, 127, 127]]], np.uint8)
    assert read_mask(save(tmp_path, PILImage.fromarray(grey))).tolist() == [[True, False]]
    for k in (0, 1, 2):  # any channel that differs
        colour = grey.copy()
        colour[0, 0, k] = 0
        p = save(tmp_path, PILImage.fromarray(colour), f"c{k}.png")
        with pytest.raises(InputError, match=rf"^mask {p} is a colour \(RGB\) image whose channels differ; save masks"):
            read_mask(p)
