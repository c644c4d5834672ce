"""``postprocess_masks`` (SAM's low-res logits -> frame-size logits) against the two-step upsampling
that ``Sam.postprocess_masks`` does, written out here: no model, no segment_anything, so the
mutation harness's sam-masks judge is fast. The same comparison with segment_anything's own method
is tests/test_sam_decode.py::test_postprocess_masks_equals_upstream_where_cropping_matters."""

from __future__ import annotations

import pytest

from tests.deps import requires

torch = requires("torch")

from avseg_sam.model import postprocess_masks  # noqa: E402


def upstream(logits, img_size: int, input_size: tuple[int, int], original_size: tuple[int, int]):
    """Segment Anything's ``Sam.postprocess_masks``: upsample to img_size², crop, resize."""
    F = torch.nn.functional
    up = F.interpolate(logits, (img_size, img_size), mode="bilinear", align_corners=False)
    up = up[..., : input_size[0], : input_size[1]]
    return F.interpolate(up, original_size, mode="bilinear", align_corners=False)


def test_every_valid_row_count_equals_upstream() -> None:
    """Each valid input height and width from 1 to img_size (64, low-res 16: SAM's scale of 4),
    so the cropped rows/columns end before, at and after every low-res row boundary."""
    torch.manual_seed(0)
    logits = torch.randn(3, 1, 16, 16)
    for k in range(1, 65):
        for input_size in ((k, 64), (64, k)):
            original = (input_size[0] + 3, input_size[1] + 2)
            got = postprocess_masks(logits, 64, input_size, original)
            assert torch.equal(got, upstream(logits, 64, input_size, original)), input_size


@pytest.mark.parametrize(("h", "w"), [(1000, 8), (8, 1000), (333, 517), (1023, 40), (77, 1024)])
def test_sam_sizes_equal_upstream(h: int, w: int) -> None:
    """SAM's own sizes (1024 input, 256 low-res): a frame's long side scaled to 1024."""
    torch.manual_seed(h * w)
    s = 1024 / max(h, w)
    input_size = (int(h * s + 0.5), int(w * s + 0.5))
    logits = torch.randn(3, 1, 256, 256)
    got = postprocess_masks(logits, 1024, input_size, (h, w))
    assert got.shape == (3, 1, h, w)
    assert torch.equal(got, upstream(logits, 1024, input_size, (h, w)))


@pytest.mark.parametrize("chunk", [0, 1, 2, 3, 9])
def test_more_masks_than_low_res_columns_and_any_chunk(chunk: int) -> None:
    """Five 4 x 4 low-res masks: every mask comes back, in order, whatever the chunk (0 is one at a time)."""
    torch.manual_seed(1)
    logits = torch.randn(5, 1, 4, 4)
    got = postprocess_masks(logits, 16, (12, 16), (9, 12), chunk=chunk)
    assert got.shape == (5, 1, 9, 12)
    assert torch.equal(got, upstream(logits, 16, (12, 16), (9, 12)))


def test_no_masks() -> None:
    assert postprocess_masks(torch.zeros(0, 1, 16, 16), 64, (64, 32), (20, 10)).shape == (0, 1, 20, 10)
