"""owod: OWLv2 objectness proposer. Tiny variant, parity with upstream transformers outputs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.deps import requires

torch = requires("torch")
requires("transformers")
requires("torchvision")

from avseg_owod.proposer import OwlV2ObjectnessProposer  # noqa: E402

from avseg.errors import WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402
from tests.helpers import random_frames  # noqa: E402


@pytest.fixture(scope="module")
def runtime():
    return Runtime(device="cpu", tiny=True, seed=0)


def make(runtime, **cfg):
    return OwlV2ObjectnessProposer(OwlV2ObjectnessProposer.Config(**cfg), runtime)


def reference(logits, boxes, h, w, thr, top_k, nms_iou):
    """The documented post-processing, written independently in numpy (+ torchvision NMS)."""
    from torchvision.ops import nms

    s = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    cx, cy, bw, bh = boxes.astype(np.float64).T
    side = max(h, w)  # boxes are relative to the bottom/right-padded square
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * side
    xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, w)
    xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, h)
    keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1]) & (s > thr)
    xyxy, s = xyxy[keep], s[keep]
    if nms_iou is not None and len(s):
        order = nms(torch.from_numpy(xyxy), torch.from_numpy(s), nms_iou).numpy()
    else:
        order = np.argsort(-s, kind="stable")
    if top_k is not None:
        order = order[:top_k]
    return xyxy[order], s[order]


def upstream_raw(prop, frames):
    """Raw outputs of the upstream model's own forward (a dummy text query; objectness ignores it)."""
    pv = prop.image_processor(images=frames, return_tensors="pt")["pixel_values"]
    ids = torch.full((len(frames), 16), 5, dtype=torch.long)
    with torch.inference_mode():
        out = prop.model(input_ids=ids, pixel_values=pv, attention_mask=torch.ones_like(ids))
    return out


@pytest.mark.parametrize(("thr", "top_k", "nms_iou"), [(0.5, 100, 0.5), (0.45, 3, 0.3), (0.0, None, None)])
def test_parity_with_upstream_forward(runtime, thr, top_k, nms_iou):
    prop = make(runtime, box_threshold=thr, top_k=top_k, nms_iou=nms_iou)
    frames = random_frames([(40, 80), (96, 48), (64, 64)])
    got = prop.propose(frames)
    out = upstream_raw(prop, frames)
    total = 0
    for j, f in enumerate(frames):
        rb, rs = reference(
            out.objectness_logits[j].numpy(),
            out.pred_boxes[j].numpy(),
            f.shape[0],
            f.shape[1],
            thr,
            top_k,
            nms_iou,
        )
        assert got[j].labels is None and got[j].masks is None
        assert len(got[j]) == len(rb)
        # float32 plugin vs float64 reference of the same float32 logits/boxes: ~1e-5 pixel.
        np.testing.assert_allclose(got[j].boxes, rb, atol=1e-4, rtol=0)
        np.testing.assert_allclose(got[j].scores, rs, atol=1e-6, rtol=0)
        assert np.all(np.diff(got[j].scores) <= 0)
        total += len(rb)
    assert total > 0  # the tiny model does give boxes above these thresholds
    if top_k is not None:
        assert all(len(p) <= top_k for p in got)


def test_scaling_matches_upstream_post_processing(runtime):
    """Upstream Owlv2ImageProcessor.post_process_object_detection scales by max(H, W) too; we then clip."""
    from transformers.models.owlv2.modeling_owlv2 import Owlv2ObjectDetectionOutput

    prop = make(runtime, box_threshold=0.5, top_k=None, nms_iou=None)
    frames = random_frames([(40, 80), (90, 30)], seed=3)
    got = prop.propose(frames)
    out = upstream_raw(prop, frames)
    fake = Owlv2ObjectDetectionOutput(logits=out.objectness_logits[..., None], pred_boxes=out.pred_boxes)
    ups = prop.image_processor.post_process_object_detection(
        fake, threshold=0.5, target_sizes=[f.shape[:2] for f in frames]
    )
    for j, f in enumerate(frames):
        h, w = f.shape[:2]
        b = ups[j]["boxes"].numpy().copy()
        s = ups[j]["scores"].numpy()
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
        ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        b, s = b[ok], s[ok]
        order = np.argsort(-s, kind="stable")
        np.testing.assert_allclose(got[j].boxes, b[order], atol=1e-4)
        np.testing.assert_allclose(got[j].scores, s[order], atol=1e-6)


def test_non_square_frame_maps_like_its_padded_square(runtime):
    """A 40x80 frame is padded at the bottom to 80x80: its boxes are the padded frame's, clipped to it."""
    prop = make(runtime, box_threshold=0.0, top_k=None, nms_iou=None)
    (wide,) = random_frames([(40, 80)], seed=5)
    padded = np.zeros((80, 80, 3), np.uint8)
    padded[:40] = wide
    p_wide, p_pad = prop.propose([wide, padded])
    b = p_pad.boxes.copy()
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, 40)
    ok = b[:, 3] > b[:, 1]
    assert (~ok).any()  # some boxes lay wholly in the padding and must be gone
    np.testing.assert_allclose(p_wide.boxes, b[ok], atol=1e-3)
    np.testing.assert_allclose(p_wide.scores, p_pad.scores[ok], atol=1e-6)
    assert p_wide.boxes[:, [1, 3]].max() <= 40 and p_wide.boxes[:, [0, 2]].max() <= 80
    assert p_wide.boxes.min() >= 0


def test_batching_does_not_change_results(runtime):
    frames = random_frames([(40, 80), (96, 48), (64, 64)], seed=7)
    one = make(runtime, batch_size=1).propose(frames)
    many = make(runtime, batch_size=8).propose(frames)
    for a, b in zip(one, many, strict=True):
        assert len(a) == len(b)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)  # batched matmuls may differ by rounding
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_counters_capabilities_weights_used(runtime):
    rt = Runtime(device="cpu", tiny=True, seed=0)
    prop = make(rt, batch_size=2)
    prop.propose(random_frames([(32, 32)] * 3))
    assert rt.counters["owod.forward_passes"] == 2 and rt.counters["owod.frames"] == 3
    assert prop.weights_used() == "tiny"
    caps = OwlV2ObjectnessProposer.capabilities(prop.config)
    assert (
        not caps.needs_prompts and not caps.gives_labels and not caps.gives_masks and not caps.has_vocabulary
    )
    assert prop.config.output_params().keys() == {
        "variant",
        "checkpoint",
        "box_threshold",
        "top_k",
        "nms_iou",
    }
    # the same model object is shared by a second instance on the same runtime
    assert make(rt).model is prop.model


def test_config_validation():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        OwlV2ObjectnessProposer.Config(box_threshold=1.5)
    with pytest.raises(ValidationError):
        OwlV2ObjectnessProposer.Config(top_k=0)
    with pytest.raises(ValidationError):
        OwlV2ObjectnessProposer.Config(variant="huge")
    with pytest.raises(ValidationError):
        OwlV2ObjectnessProposer.Config(nms=0.5)


def test_missing_weights_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    rt = Runtime(device="cpu", tiny=False)
    with pytest.raises(WeightsMissing) as ei:
        make(rt)
    msg = str(ei.value)
    assert (
        "\n" not in msg and "google/owlv2-base-patch16-ensemble" in msg and "avseg weights fetch owod" in msg
    )
    with pytest.raises(WeightsMissing) as ei:
        make(rt, checkpoint=str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(ei.value) and "\n" not in str(ei.value)


def test_loads_a_local_checkpoint_folder(runtime, tmp_path):
    tiny = make(runtime, box_threshold=0.4)
    tiny.model.save_pretrained(tmp_path)
    tiny.image_processor.save_pretrained(tmp_path)
    rt = Runtime(device="cpu", tiny=False)
    real = make(rt, box_threshold=0.4, checkpoint=str(tmp_path))
    assert real.weights_used() == {"owlv2-base-patch16-ensemble": str(tmp_path)}
    frames = random_frames([(40, 80)], seed=9)
    a, b = tiny.propose(frames)[0], real.propose(frames)[0]
    assert len(a) > 0
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def test_registry():
    import avseg_owod

    from avseg.registry import load_registry

    reg = load_registry(plugins=[("owod", avseg_owod)], entry_points=False)
    assert reg.get("proposer", "owod") is OwlV2ObjectnessProposer


def test_package_import_is_light():
    code = "import sys, avseg_owod; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_preprocessing_is_the_skimage_resize_of_the_authors(runtime, monkeypatch):
    """The model gets the authors' preprocessing: rescale to [0, 1], pad to a square at the
    bottom/right, skimage-style anti-aliased resize (Gaussian sigma (factor - 1) / 2, mirror
    edges, order-1 zoom on the pixel grid), CLIP normalisation. Written out here with scipy; the
    torchvision processor (transformers 5's default) differs."""
    import transformers
    from scipy import ndimage as ndi
    from transformers import Owlv2ImageProcessor

    prop = make(runtime)
    seen = []
    embed = prop.model.image_embedder
    monkeypatch.setattr(prop.model, "image_embedder", lambda **k: (seen.append(k["pixel_values"]), embed(**k))[1])
    side = int(prop.model.config.vision_config.image_size)
    for shape in [(40, 56), (3 * side // 2, side)]:  # upscaled; downscaled (anti-aliased)
        (frame,) = random_frames([shape], seed=4)
        prop.propose([frame])
        img = frame.astype(np.float32) / np.float32(255.0)
        size = max(shape)
        # the pad value is the installed transformers' (0.0 in 5.x, grey 0.5 in 4.x; see docs/plugins/owod.md)
        pad_value = float(prop.image_processor.pad(np.ones((3, 1, 2), np.float32))[0, 1, 0])
        padded = np.full((size, size, 3), pad_value, np.float32)
        padded[: shape[0], : shape[1]] = img
        factors = np.array([size / side, size / side, 1.0])
        blurred = ndi.gaussian_filter(padded, np.maximum(0, (factors - 1) / 2), cval=0, mode="mirror")
        out = ndi.zoom(blurred, 1 / factors, order=1, mode="mirror", cval=0, grid_mode=True)
        out = np.clip(out, padded.min(), padded.max())
        mean = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
        std = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
        ref = torch.from_numpy(((out - mean) / std).transpose(2, 0, 1).astype(np.float32))
        got = seen[-1][0].float()
        assert got.shape == ref.shape == (3, side, side)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-4)
    if not hasattr(transformers, "Owlv2ImageProcessorPil"):
        return  # transformers 4: the default class is the scipy one
    default = Owlv2ImageProcessor(size={"height": side, "width": side})
    (frame,) = random_frames([(40, 56)], seed=4)
    tv = default(images=[frame], return_tensors="pt")["pixel_values"][0]
    prop.propose([frame])
    assert float((tv - seen[-1][0].float()).abs().max()) > 0.05
