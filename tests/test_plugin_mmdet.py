"""mmdet: MMDetection proposer. Tiny variant, parity with mmdet's own DetInferencer / inference_detector.

Config/capability tests run without mmdet; the rest need mmdet (installed by
scripts/install_mmdet.sh) and are skipped only when it is absent.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from avseg_mmdet.proposer import MmdetConfig, MmdetProposer, model_has_mask_head, name_gives_masks

from avseg.errors import AvsegError, ConfigError, WeightsMissing
from avseg.runtime import Runtime
from tests.deps import requires

# ----------------------------------------------------------------- no mmdet needed


def test_import_is_light():
    code = "import sys, avseg_mmdet; assert not {'torch','mmdet','mmcv','mmengine'} & set(sys.modules), sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry():
    import avseg_mmdet

    from avseg.registry import load_registry

    reg = load_registry(plugins=[("mmdet", avseg_mmdet)], entry_points=False)
    assert reg.get("proposer", "mmdet") is MmdetProposer


def test_capabilities_from_config_alone():
    caps = MmdetProposer.capabilities
    assert caps(MmdetConfig()).gives_masks  # default: mask-rcnn_r50_fpn_1x_coco
    assert caps(MmdetConfig()).gives_labels
    assert not caps(MmdetConfig()).needs_prompts
    assert caps(MmdetConfig(masks=False)).gives_masks is False
    assert name_gives_masks("rtmdet-ins_tiny_8xb32-300e_coco")
    assert name_gives_masks("/x/solov2_r50_fpn_1x_coco.py")
    assert not name_gives_masks("faster-rcnn_r50_fpn_1x_coco")
    assert not name_gives_masks("rtmdet_tiny_8xb32-300e_coco")
    assert model_has_mask_head({"type": "MaskRCNN", "roi_head": {"mask_head": {"type": "FCNMaskHead"}}})
    assert model_has_mask_head({"type": "RTMDet", "bbox_head": {"type": "RTMDetInsSepBNHead"}})
    assert not model_has_mask_head(
        {"type": "FasterRCNN", "roi_head": {"bbox_head": {"type": "Shared2FCBBoxHead"}}}
    )


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        MmdetConfig(config=str(tmp_path / "nope.py"))
    with pytest.raises(ValueError):
        MmdetConfig(config="bad name!")
    with pytest.raises(ValueError):
        MmdetConfig(score_threshold=1.5)
    with pytest.raises(ValueError):
        MmdetConfig(top_k=0)
    with pytest.raises(ValueError):
        MmdetConfig(vocabulary=["dog"])  # no such key: unknown keys are refused
    assert "batch_size" not in MmdetConfig().output_params()


# ----------------------------------------------------------------- mmdet needed


@pytest.fixture(scope="module")
def mm():
    return requires("mmdet")


@pytest.fixture(scope="module")
def runtime(mm):
    return Runtime(device="cpu", tiny=True, seed=0)


def _frames(n, h=64, w=64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def make(runtime, **cfg):
    return MmdetProposer(MmdetConfig(**cfg), runtime)


def reference(pred, classes, thr, top_k=None):
    """The documented conversion, written out independently on an mmdet DetDataSample."""
    inst = pred.pred_instances
    s = inst.scores.numpy()
    order = [i for i in np.argsort(-s, kind="stable") if s[i] > thr][:top_k]
    masks = inst.masks.numpy()[order] if "masks" in inst else None
    return inst.bboxes.numpy()[order], s[order], [classes[j] for j in inst.labels.numpy()[order]], masks


def _median_score(prop, frames):
    scores = np.concatenate([p.pred_instances.scores.numpy() for p in prop.predict(frames)])
    assert len(scores) > 4, "the tiny model should output some instances"
    return float(np.median(scores))


@pytest.mark.mmdet
def test_tiny_outputs(runtime):
    frames = _frames(2, 64, 80)
    prop = make(runtime, score_threshold=0.0)
    got = prop.propose(frames)
    assert prop.weights_used() == "tiny"
    assert runtime.counters["mmdet.frames"] >= 2
    for p, f in zip(got, frames, strict=True):
        assert len(p) > 0
        assert p.masks is not None and p.masks.shape == (len(p), *f.shape[:2]) and p.masks.dtype == bool
        assert set(p.labels) <= set(prop.classes)
        assert np.all(np.diff(p.scores) <= 0)
        assert np.all(p.boxes[:, 2] >= p.boxes[:, 0]) and np.all(p.boxes[:, 2] <= f.shape[1] + 1e-3)
    boxes_only = make(runtime, score_threshold=0.0, masks=False).propose(frames)
    assert boxes_only[0].masks is None
    np.testing.assert_array_equal(boxes_only[0].boxes, got[0].boxes)
    assert len(make(runtime, score_threshold=0.0, top_k=3).propose(frames)[0]) == 3


@pytest.mark.mmdet
def test_parity_with_detinferencer(runtime, mm):
    from mmdet.apis import DetInferencer

    frames = _frames(3, 64, 64, seed=1)
    prop = make(runtime)
    thr = _median_score(prop, frames)  # some, not all, instances pass
    prop = make(runtime, score_threshold=thr, batch_size=3)
    got = prop.propose(frames)

    inf = DetInferencer(model=prop.model.cfg, weights=None, device="cpu", show_progress=False)
    inf.model = prop.model  # the same model object
    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames]  # mmdet's convention: BGR arrays
    ref = inf(bgr, batch_size=3, return_datasamples=True, no_save_vis=True, no_save_pred=True)["predictions"]
    kept = 0
    for g, r in zip(got, ref, strict=True):
        boxes, scores, labels, masks = reference(r, prop.classes, thr)
        # Same model object, same pipeline and batching: bit-identical.
        np.testing.assert_array_equal(g.boxes, boxes)
        np.testing.assert_array_equal(g.scores, scores)
        assert g.labels == labels
        np.testing.assert_array_equal(g.masks, masks)
        kept += len(g)
    total = sum(len(r.pred_instances) for r in ref)
    assert 0 < kept < total


@pytest.mark.mmdet
def test_parity_with_inference_detector(runtime, mm):
    from mmdet.apis import inference_detector

    frames = _frames(2, 48, 72, seed=2)
    prop = make(runtime, score_threshold=0.1, top_k=5, batch_size=1)
    got = prop.propose(frames)
    for g, f in zip(got, frames, strict=True):
        r = inference_detector(prop.model, np.ascontiguousarray(f[..., ::-1]))
        boxes, scores, labels, masks = reference(r, prop.classes, 0.1, top_k=5)
        np.testing.assert_array_equal(g.boxes, boxes)
        np.testing.assert_array_equal(g.scores, scores)
        assert g.labels == labels
        np.testing.assert_array_equal(g.masks, masks)


@pytest.mark.mmdet
def test_checkpoint_roundtrip(runtime, mm, tmp_path):
    """A config file + checkpoint with meta (class names) loads into the same outputs as the tiny model."""
    import torch

    tiny = make(runtime, score_threshold=0.0)
    cfg_path = tmp_path / "my-mask-rcnn.py"
    tiny.model.cfg.dump(str(cfg_path))
    classes = ("a", "b", "c", "d", "e")
    ckpt = tmp_path / "my.pth"
    torch.save({"meta": {"dataset_meta": {"classes": classes}}, "state_dict": tiny.model.state_dict()}, ckpt)
    real = MmdetProposer(
        MmdetConfig(config=str(cfg_path), checkpoint=str(ckpt), score_threshold=0.0),
        Runtime(device="cpu", tiny=False),
    )
    assert real.classes == classes
    assert real.weights_used() == {"my.pth": str(ckpt)}
    frames = _frames(1, seed=3)
    a, b = tiny.propose(frames)[0], real.propose(frames)[0]
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert b.labels == [classes[tiny.classes.index(n)] for n in a.labels]


@pytest.mark.mmdet
def test_pickled_checkpoint_refused(mm, tmp_path):
    import torch
    from avseg_mmdet.tiny import tiny_config

    cfg_path = tmp_path / "cfg.py"
    tiny_config().dump(str(cfg_path))
    ckpt = tmp_path / "pickled.pth"
    torch.save({"meta": {"hook": time.struct_time((2020,) * 9)}, "state_dict": {}}, ckpt)
    with pytest.raises(AvsegError, match="refusing to load") as exc:
        MmdetProposer(MmdetConfig(config=str(cfg_path), checkpoint=str(ckpt)), Runtime(device="cpu"))
    assert "\n" not in str(exc.value)


@pytest.mark.mmdet
def test_missing_weights(mm, tmp_path, monkeypatch):
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    with pytest.raises(WeightsMissing, match="mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth") as exc:
        make(Runtime(device="cpu"))
    assert "\n" not in str(exc.value) and "avseg weights fetch mmdet" in str(exc.value)
    with pytest.raises(WeightsMissing, match="nowhere.pth"):
        make(Runtime(device="cpu"), checkpoint=str(tmp_path / "nowhere.pth"))
    with pytest.raises(ConfigError, match="no declared weights"):
        make(Runtime(device="cpu"), config="faster-rcnn_r50_fpn_1x_coco")


@pytest.mark.mmdet
def test_bundled_config_names(mm):
    with pytest.raises(ValueError, match="did you mean"):
        MmdetConfig(config="mask-rcnn_r50_fpn_1x_cocoo")
    MmdetConfig(config="rtmdet-ins_tiny_8xb32-300e_coco")


@pytest.mark.mmdet
def test_tiny_speed(runtime):
    prop = make(runtime)
    frames = _frames(4)
    prop.propose(frames[:1])  # warm-up
    t = time.perf_counter()
    prop.propose(frames)
    per_frame = (time.perf_counter() - t) / len(frames)
    assert per_frame < 1.0, f"tiny mmdet took {per_frame:.2f} s per 64x64 frame"
