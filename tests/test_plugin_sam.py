"""The SAM plugins (sam, sam-grid) against segment_anything and transformers at equal tiny weights."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from tests.deps import requires

requires("torch")
requires("segment_anything")

import avseg_sam  # noqa: E402
import torch  # noqa: E402
from avseg_sam.grid import SamGridConfig, SamGridProposer  # noqa: E402
from avseg_sam.model import TINY_SPEC, build_sam, postprocess_masks  # noqa: E402
from avseg_sam.segmenter import SamConfig, SamSegmenter  # noqa: E402

from avseg.errors import AvsegError, WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402

BOXES = np.array(
    [[40, 20, 100, 60], [0, 0, 159, 89], [10.5, 5.2, 70.3, 80.9], [120, 10, 150, 40], [30, 30, 31, 31]],
    dtype=np.float32,
)


def make_frame(h: int = 90, w: int = 160, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    frame = (np.stack([xx * 1.5, yy * 2.5, xx + yy], -1) % 256).astype(np.uint8)
    frame[h // 5 : 2 * h // 3, w // 4 : 5 * w // 8] = [200, 30, 30]
    rng = np.random.default_rng(seed)
    return np.clip(frame.astype(int) + rng.integers(-10, 10, frame.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(device="cpu", tiny=True, seed=0)


@pytest.fixture(scope="module")
def seg(runtime: Runtime) -> SamSegmenter:
    return SamSegmenter(SamConfig(), runtime)


def test_package_import_is_light() -> None:
    code = "import sys, avseg_sam; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_registry() -> None:
    from avseg.registry import load_registry

    reg = load_registry(plugins=[("sam", avseg_sam)], entry_points=False)
    assert reg.get("segmenter", "sam") is SamSegmenter
    assert reg.get("proposer", "sam-grid") is SamGridProposer
    caps = SamGridProposer.capabilities(SamGridConfig())
    assert caps.gives_masks and not caps.needs_prompts


def test_config_schema() -> None:
    cfg = SamConfig()
    assert (cfg.variant, cfg.backend, cfg.decoder_batch) == ("vit_h", "segment_anything", None)
    assert "decoder_batch" not in cfg.output_params()
    assert "points_per_batch" not in SamGridConfig().output_params()
    with pytest.raises(ValueError):
        SamConfig(variant="vit_x")
    with pytest.raises(ValueError):
        SamConfig(decoder_batch=-1)
    wf = SamSegmenter.weights["vit_h"][0]
    assert wf.filename == "sam_vit_h_4b8939.pth" and wf.sha256 == "4b8939"
    assert wf.url == "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth"
    assert SamSegmenter.weights["hf-vit_b"][0].hf_repo == "facebook/sam-vit-base"


def test_segment_matches_predictor_per_box(seg: SamSegmenter, runtime: Runtime) -> None:
    """One batched decoder call == SamPredictor.predict(box=...) called box by box."""
    from segment_anything import SamPredictor

    frame = make_frame()
    before = runtime.counters["sam.decoder_calls"]
    out = seg.segment([frame], [BOXES])[0]
    assert runtime.counters["sam.decoder_calls"] - before == 1
    assert out.masks.shape == (len(BOXES), 90, 160) and out.masks.dtype == bool
    assert out.scores.shape == (len(BOXES),) and out.scores.dtype == np.float32
    assert out.masks.any() and not out.masks.all()
    predictor = SamPredictor(seg.model)
    predictor.set_image(frame)
    for i, box in enumerate(BOXES):
        masks, scores, _ = predictor.predict(box=box, multimask_output=False)
        np.testing.assert_array_equal(out.masks[i], masks[0])
        assert abs(float(out.scores[i]) - float(scores[0])) < 1e-5


def test_decoder_batch_and_encoding_shared(runtime: Runtime, seg: SamSegmenter) -> None:
    frame = make_frame(seed=1)
    enc0 = runtime.counters["sam.image_encoder"]
    calls0 = runtime.counters["sam.decoder_calls"]
    small = SamSegmenter(SamConfig(decoder_batch=2), runtime)
    assert small.model is seg.model  # runtime.share: one model per process
    a = seg.segment([frame], [BOXES])[0]
    b = small.segment([frame], [BOXES])[0]
    assert runtime.counters["sam.image_encoder"] - enc0 == 1  # same frame: encoded once
    assert runtime.counters["sam.decoder_calls"] - calls0 == 1 + 3
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_zero_boxes_and_several_frames(seg: SamSegmenter, runtime: Runtime) -> None:
    frames = [make_frame(seed=2), make_frame(40, 30, seed=3)]
    enc0 = runtime.counters["sam.image_encoder"]
    outs = seg.segment(frames, [np.zeros((0, 4), np.float32), BOXES[:2] / 4])
    assert runtime.counters["sam.image_encoder"] - enc0 == 1  # no boxes: no model call
    assert outs[0].masks.shape == (0, 90, 160) and outs[0].scores.shape == (0,)
    assert outs[1].masks.shape == (2, 40, 30)


def test_postprocess_equals_upstream() -> None:
    """The cropped, chunked upsampling is bit-identical to Sam.postprocess_masks."""
    sam = build_sam(TINY_SPEC, seed=0)
    torch.manual_seed(0)
    for img_size, low in ((256, 64), (1024, 256)):
        sam.image_encoder.img_size = img_size
        for h, w in ((90, 160), (224, 224), (333, 517), (640, 360), (3, 200)):
            s = img_size / max(h, w)
            input_size = (int(h * s + 0.5), int(w * s + 0.5))
            logits = torch.randn(5, 1, low, low)
            ref = sam.postprocess_masks(logits, input_size, (h, w))
            assert torch.equal(postprocess_masks(logits, img_size, input_size, (h, w)), ref)


def test_grid_matches_generator_and_shares_encoding(runtime: Runtime, seg: SamSegmenter) -> None:
    from segment_anything import SamAutomaticMaskGenerator

    settings = dict(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)
    grid = SamGridProposer(SamGridConfig(**settings, points_per_batch=5), runtime)
    assert grid.loaded.model is seg.model
    frame = make_frame(seed=4)
    enc0 = runtime.counters["sam.image_encoder"]
    seg.segment([frame], [BOXES[:2]])
    props = grid.propose([frame])[0]
    assert runtime.counters["sam.image_encoder"] - enc0 == 1  # sam + sam-grid on one frame: one encoding
    anns = SamAutomaticMaskGenerator(seg.model, **settings).generate(frame)
    assert len(props) == len(anns) == 4 * 4 * 3  # box_nms_thresh=1.0 keeps every mask
    for i, ann in enumerate(anns):
        np.testing.assert_array_equal(props.masks[i], ann["segmentation"])
        x, y, w, h = ann["bbox"]
        np.testing.assert_array_equal(props.boxes[i], np.float32([x, y, x + w, y + h]))
        # points_per_batch differs from the reference's (5 vs 64): batching moves scores by float rounding
        assert abs(float(props.scores[i]) - ann["predicted_iou"]) < 1e-5
    # default NMS: still the generator's result
    nms = SamGridProposer(SamGridConfig(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0), runtime)
    kept = nms.propose([frame])[0]
    ref = SamAutomaticMaskGenerator(seg.model, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    ref_anns = ref.generate(frame)
    assert 0 < len(kept) == len(ref_anns) < len(props)
    for i, ann in enumerate(ref_anns):
        np.testing.assert_array_equal(kept.masks[i], ann["segmentation"])
    assert runtime.counters["sam.image_encoder"] - enc0 == 1


def test_grid_empty_result(runtime: Runtime) -> None:
    grid = SamGridProposer(SamGridConfig(points_per_side=2, pred_iou_thresh=1.0), runtime)
    props = grid.propose([make_frame(seed=5)])[0]
    assert len(props) == 0 and props.masks is not None and props.masks.shape == (0, 90, 160)


def test_hf_conversion_keys_match(runtime: Runtime) -> None:
    requires("transformers")
    from avseg_sam.convert import hf_config, sa_to_hf_state_dict
    from transformers import SamModel

    sa = build_sam(TINY_SPEC, seed=0)
    hf = SamModel(hf_config(TINY_SPEC))
    converted = sa_to_hf_state_dict(sa.state_dict())
    assert set(converted) == set(hf.state_dict())
    hf.load_state_dict(converted, strict=True)
    sd = hf.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in converted.items())
    assert "mask_decoder.output_hypernetworks_mlps.0.proj_in.weight" in converted
    assert "vision_encoder.layers.0.layer_norm1.weight" in converted


def test_hf_backend_matches_segment_anything(runtime: Runtime, seg: SamSegmenter) -> None:
    requires("transformers")
    hf = SamSegmenter(SamConfig(backend="hf"), runtime)
    frame = make_frame(seed=6)
    a = seg.segment([frame], [BOXES])[0]
    enc0 = runtime.counters["sam.image_encoder"]
    b = hf.segment([frame, frame], [BOXES, BOXES[:1]])
    assert runtime.counters["sam.image_encoder"] - enc0 == 1  # hf backend: one encoding per frame too
    # Same weights; the pixel input is bit-identical, but transformers' encoder orders a few float ops
    # differently (features differ by ~3e-6), so scores agree to 1e-4 and masks could flip a pixel
    # whose logit is within ~1e-5 of 0. Observed: identical masks, scores within ~1e-5.
    assert (a.masks != b[0].masks).sum() <= 5
    np.testing.assert_allclose(a.scores, b[0].scores, atol=1e-4)
    np.testing.assert_array_equal(b[1].masks[0], b[0].masks[0])


def test_weights_missing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    real = Runtime(device="cpu", tiny=False)
    with pytest.raises(WeightsMissing) as err:
        SamSegmenter(SamConfig(variant="vit_b"), real)
    msg = str(err.value)
    assert "sam_vit_b_01ec64.pth" in msg and "avseg weights fetch sam" in msg and "\n" not in msg
    with pytest.raises(WeightsMissing) as err:
        SamGridProposer(SamGridConfig(), real)
    assert "sam_vit_h_4b8939.pth" in str(err.value)
    with pytest.raises(WeightsMissing) as err:
        SamSegmenter(SamConfig(backend="hf", variant="vit_l"), real)
    assert "facebook/sam-vit-large" in str(err.value)
    bad = tmp_path / "nowhere" / "sam.pth"
    with pytest.raises(WeightsMissing) as err:
        SamSegmenter(SamConfig(checkpoint=str(bad)), real)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_checkpoint_loading(tmp_path) -> None:
    """A state-dict file loads through the meta-device path; a wrong one fails in one line."""
    from avseg.weights import load_state_dict

    sa = build_sam(TINY_SPEC, seed=3)
    path = tmp_path / "tiny.pth"
    torch.save(sa.state_dict(), path)
    loaded = build_sam(TINY_SPEC, load_state_dict(path))
    for (k, v), (k2, v2) in zip(sa.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    assert torch.equal(loaded.pixel_std, sa.pixel_std)
    with pytest.raises(AvsegError, match="wrong variant"):
        build_sam(dataclasses.replace(TINY_SPEC, encoder_embed_dim=48), load_state_dict(path))
    # through the component: a tiny checkpoint given for vit_h
    with pytest.raises(AvsegError, match="does not fit SAM") as err:
        SamSegmenter(SamConfig(checkpoint=str(path)), Runtime(device="cpu", tiny=False))
    assert "\n" not in str(err.value)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(AvsegError, match="garbage.pth") as err:  # avseg.weights.load_state_dict's one-liner
        SamSegmenter(SamConfig(checkpoint=str(garbage)), Runtime(device="cpu", tiny=False))
    assert "\n" not in str(err.value)


def test_hf_backend_loads_local_folder(tmp_path, runtime: Runtime) -> None:
    """backend=hf with real (non-tiny) loading: SamModel.from_pretrained(<local folder>) only."""
    requires("transformers")
    tiny_hf = SamSegmenter(SamConfig(backend="hf"), runtime)
    folder = tmp_path / "sam-tiny-hf"
    tiny_hf.hf.model.save_pretrained(str(folder))
    real = Runtime(device="cpu", tiny=False)
    loaded = SamSegmenter(SamConfig(backend="hf", checkpoint=str(folder)), real)
    assert loaded.weights_used() == {"facebook/sam-vit-huge": str(folder)}
    frame = make_frame(seed=7)
    a = tiny_hf.segment([frame], [BOXES])[0]
    b = loaded.segment([frame], [BOXES])[0]
    np.testing.assert_array_equal(a.masks, b.masks)  # same weights, same code: bit-identical
    np.testing.assert_array_equal(a.scores, b.scores)


class _CpuBf16Runtime(Runtime):
    """Runtime refuses bf16 on the CPU; this one allows it, to run the half-precision code path here."""

    def torch_dtype(self):  # type: ignore[no-untyped-def]
        return torch.bfloat16


def test_half_precision_through_autocast() -> None:
    """--dtype bf16: segment_anything keeps float32 weights (its prompt encoder casts coordinates to
    float32, so a bf16 model fails on any prompt) and runs under torch.autocast instead."""
    half = _CpuBf16Runtime(device="cpu", tiny=True, seed=0, dtype="bf16")
    full = Runtime(device="cpu", tiny=True, seed=0)
    seg16 = SamSegmenter(SamConfig(), half)
    assert all(p.dtype == torch.float32 for p in seg16.model.parameters())
    frame = make_frame(seed=8)
    a = seg16.segment([frame], [BOXES])[0]
    b = SamSegmenter(SamConfig(), full).segment([frame], [BOXES])[0]
    assert a.masks.shape == b.masks.shape and a.scores.dtype == np.float32
    # bf16 keeps ~3 significant digits: masks agree on all but boundary pixels (observed >= 99.5%)
    assert (a.masks == b.masks).mean() > 0.98
    np.testing.assert_allclose(a.scores, b.scores, atol=0.01)
    grid = SamGridProposer(SamGridConfig(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0), half)
    props = grid.propose([frame])[0]
    assert len(props) > 0 and props.masks is not None and props.scores.dtype == np.float32
    assert half.counters["sam.image_encoder"] == 1  # sam + sam-grid, one frame, one encoding in bf16 too


def test_auto_decoder_batch_bounds_memory_and_keeps_results(runtime: Runtime, seg: SamSegmenter) -> None:
    """70 boxes on the CPU go through 3 decoder calls of at most 32, with the same masks as one call."""
    frame = make_frame()
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 80, size=(70, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, size=(70, 2))], axis=1).astype(np.float32)
    before = runtime.counters["sam.decoder_calls"]
    auto = seg.segment([frame], [boxes])[0]
    assert runtime.counters["sam.decoder_calls"] - before == 3
    one = SamSegmenter(SamConfig(variant="vit_h", decoder_batch=0), runtime).segment([frame], [boxes])[0]
    assert np.array_equal(auto.masks, one.masks)
    np.testing.assert_allclose(auto.scores, one.scores, atol=1e-5)
