"""The sam segmenter's box decoding at its boundaries, against segment_anything's SamPredictor on
the same tiny random weights: the mask threshold exactly at 0, box scaling on frames of every
shape, decoder batches at their size, and the low-res mask upsampling (``postprocess_masks``)
against ``Sam.postprocess_masks`` where its row/column cropping matters."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tests.deps import requires

requires("torch")
requires("segment_anything")

import torch  # noqa: E402
from avseg_sam.model import TINY_SPEC, build_sam, postprocess_masks  # noqa: E402
from avseg_sam.segmenter import AUTO_DECODER_BATCH, SamConfig, SamSegmenter  # noqa: E402

from avseg.runtime import Runtime  # noqa: E402


def frame_of(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    frame[h // 4 : 3 * h // 4, w // 3 : 2 * w // 3] = [220, 40, 40]
    return frame


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(device="cpu", tiny=True, seed=0)


@pytest.fixture(scope="module")
def seg(runtime: Runtime) -> SamSegmenter:
    return SamSegmenter(SamConfig(), runtime)


def predictor_masks(model, frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from segment_anything import SamPredictor

    predictor = SamPredictor(model)
    predictor.set_image(frame)
    out = [predictor.predict(box=b, multimask_output=False, return_logits=True) for b in boxes]
    logits = np.stack([o[0][0] for o in out])
    return logits > model.mask_threshold, np.array([o[1][0] for o in out]), logits


@pytest.mark.parametrize(("h", "w"), [(160, 90), (5, 300)])
def test_boxes_scale_like_the_predictor_on_every_frame_shape(seg: SamSegmenter, h: int, w: int) -> None:
    frame = frame_of(h, w, seed=h)
    boxes = np.array([[0, 0, w, h], [w / 3, h / 4, 2 * w / 3, 3 * h / 4], [w - 3, h - 2, w, h],
                      [1.5, 0.5, w / 2 + 0.25, h / 2 + 0.75]], np.float32)
    out = seg.segment([frame], [boxes])[0]
    masks, scores, _ = predictor_masks(seg.model, frame, boxes)
    assert out.masks.shape == (4, h, w)
    np.testing.assert_array_equal(out.masks, masks)
    np.testing.assert_allclose(out.scores, scores, atol=1e-5)


def test_a_pixel_whose_logit_is_exactly_zero_is_background(runtime: Runtime) -> None:
    """With the hypernetwork's last layer zeroed, every mask logit is exactly 0.0: SAM's threshold
    (``logits > mask_threshold``, 0.0) makes that background, and so must sam."""
    seg = SamSegmenter(SamConfig(), runtime)
    seg.model = copy.deepcopy(seg.model)
    with torch.no_grad():
        for mlp in seg.model.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.zero_()
            mlp.layers[-1].bias.zero_()
    frame = frame_of(48, 64)
    boxes = np.array([[4, 4, 40, 30], [0, 0, 64, 48]], np.float32)
    masks, scores, logits = predictor_masks(seg.model, frame, boxes)
    assert (logits == 0.0).all() and not masks.any()
    out = seg.segment([frame], [boxes])[0]
    assert out.masks.shape == (2, 48, 64) and not out.masks.any()
    np.testing.assert_allclose(out.scores, scores, atol=1e-5)


def test_a_box_list_of_numbers_and_several_frames(seg: SamSegmenter) -> None:
    a, b = frame_of(40, 50, seed=1), frame_of(30, 20, seed=2)
    outs = seg.segment([a, b], [[10, 5, 40, 30], np.array([[2, 2, 18, 28], [0, 0, 5, 5]], np.float32)])
    assert outs[0].masks.shape == (1, 40, 50) and outs[1].masks.shape == (2, 30, 20)
    masks, _, _ = predictor_masks(seg.model, b, np.array([[2, 2, 18, 28], [0, 0, 5, 5]], np.float32))
    np.testing.assert_array_equal(outs[1].masks, masks)
    # a frame without boxes: an empty result, no encoding, and the frames after it still segmented
    enc0 = seg.runtime.counters["sam.image_encoder"]
    c = frame_of(20, 24, seed=5)
    outs = seg.segment([c, b, c], [np.zeros((0, 4), np.float32), [[2, 2, 18, 28], [0, 0, 5, 5]], []])
    assert seg.runtime.counters["sam.image_encoder"] == enc0  # b was encoded above; c never
    assert outs[0].masks.shape == (0, 20, 24) and outs[0].scores.shape == (0,)
    assert outs[0].masks.dtype == bool and outs[0].scores.dtype == np.float32
    np.testing.assert_array_equal(outs[1].masks, masks)
    assert outs[2].masks.shape == (0, 20, 24)
    with pytest.raises(ValueError, match="2 frames but 1 box sets"):
        seg.segment([a, b], [[10, 5, 40, 30]])


@pytest.mark.parametrize(("n", "calls"), [(32, 1), (33, 2), (65, 3)])
def test_cpu_decoder_calls_hold_at_most_32_boxes(runtime: Runtime, seg: SamSegmenter, n: int, calls: int) -> None:
    assert AUTO_DECODER_BATCH == {"cpu": 32, "cuda": 64}  # the documented defaults (SamConfig.decoder_batch)
    frame = frame_of(40, 40, seed=3)
    boxes = np.tile(np.array([[5, 5, 30, 30]], np.float32), (n, 1)) + np.arange(n, dtype=np.float32)[:, None] % 7
    before = runtime.counters["sam.decoder_calls"]
    out = seg.segment([frame], [boxes])[0]
    assert runtime.counters["sam.decoder_calls"] - before == calls
    assert out.masks.shape == (n, 40, 40) and out.scores.shape == (n,)
    assert runtime.counters["sam.masks"] >= n


def test_explicit_decoder_batch_sizes(runtime: Runtime) -> None:
    frame = frame_of(40, 40, seed=4)
    boxes = np.tile(np.array([[5, 5, 30, 30]], np.float32), (3, 1))
    for batch, calls in [(0, 1), (1, 3), (2, 2), (3, 1)]:
        seg = SamSegmenter(SamConfig(decoder_batch=batch), runtime)
        before = runtime.counters["sam.decoder_calls"]
        seg.segment([frame], [boxes])
        assert runtime.counters["sam.decoder_calls"] - before == calls, batch


@pytest.mark.parametrize("chunk", [1, 2, 3])
@pytest.mark.parametrize(("h", "w"), [(1000, 8), (8, 1000), (333, 517), (1024, 1024), (1023, 40), (77, 1024)])
def test_postprocess_masks_equals_upstream_where_cropping_matters(h: int, w: int, chunk: int) -> None:
    """Frames whose valid input region ends just before, at, or just after a low-res row boundary."""
    sam = build_sam(TINY_SPEC, seed=0)
    torch.manual_seed(h * w)
    for img_size, low in ((1024, 256), (64, 16)):
        sam.image_encoder.img_size = img_size
        s = img_size / max(h, w)
        input_size = (int(h * s + 0.5), int(w * s + 0.5))
        logits = torch.randn(5, 1, low, low)
        ref = sam.postprocess_masks(logits, input_size, (h, w))
        got = postprocess_masks(logits, img_size, input_size, (h, w), chunk=chunk)
        assert got.shape == (5, 1, h, w)
        assert torch.equal(got, ref), (img_size, h, w)
    empty = postprocess_masks(torch.zeros(0, 1, 16, 16), 64, (64, 32), (20, 10))
    assert empty.shape == (0, 1, 20, 10)


def test_decoder_batch_bounds() -> None:
    assert SamConfig(decoder_batch=0).decoder_batch == 0  # 0: all boxes in one call
    assert SamConfig(decoder_batch=1).decoder_batch == 1
    with pytest.raises(ValueError):
        SamConfig(decoder_batch=-1)
    # boxes per decoder call change the memory, not the masks: not part of the stage-cache key
    assert "decoder_batch" not in SamConfig(decoder_batch=2).output_params()
    assert "variant" in SamConfig().output_params()


@pytest.mark.parametrize("mode", [{"tiny": True}, {"random_init": True}])
def test_hf_backend_tiny_or_random_needs_segment_anything(monkeypatch: pytest.MonkeyPatch, mode: dict) -> None:
    """The hf backend's tiny and random-init models are converted from segment_anything's, so
    without that package they are a one-line DependencyMissing, before any model is built."""
    import importlib.util

    from avseg.errors import DependencyMissing

    requires("transformers")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "segment_anything"
                        else real(name, *a))
    with pytest.raises(DependencyMissing, match=r"needs segment_anything: pip install 'avseg\[sam\]'"):
        SamSegmenter(SamConfig(backend="hf", variant="vit_b"), Runtime(device="cpu", seed=0, **mode))
