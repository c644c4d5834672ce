"""gdino, backend=official (IDEA-Research's groundingdino-py): tiny variant, parity with the package's
own ``groundingdino.util.inference.predict`` and ``load_image``, weights errors, checkpoint loading."""

from __future__ import annotations

import numpy as np
import pytest

from tests.deps import requires

torch = requires("torch")
requires("transformers")
requires("groundingdino")

from avseg_gdino import official  # noqa: E402
from avseg_gdino.proposer import GroundingDinoProposer, normalise_prompts, prompt_text  # noqa: E402
from torchvision.ops import box_convert  # noqa: E402

from avseg.errors import AvsegError, WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402
from tests.helpers import random_frames  # noqa: E402


@pytest.fixture(scope="module")
def runtime():
    return Runtime(device="cpu", tiny=True, seed=0)


def make(runtime, **cfg):
    return GroundingDinoProposer(GroundingDinoProposer.Config(backend="official", **cfg), runtime)


def _raw(prop, frame, caption):
    """The tiny model's raw outputs for one frame (to choose thresholds inside its score range)."""
    x = official.preprocess([frame], official.TINY_RESIZE)[0][None]
    with torch.inference_mode():
        out = prop.model(x, captions=[caption])
    probs = out["pred_logits"][0].sigmoid()
    n_tok = len(prop.model.tokenizer(caption)["input_ids"])
    return probs.max(-1).values, probs[:, :n_tok]


def _gap_threshold(values, q):
    """A threshold near quantile q lying midway in a gap between two sorted values (robust to
    last-bit differences between batched and single-frame forwards)."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    i = int(np.clip(round(q * (len(v) - 1)), 1, len(v) - 1))
    gaps = np.diff(v)
    j = max(range(max(1, i - 5), min(len(v) - 1, i + 5)), key=lambda k: gaps[k - 1])
    return float((v[j - 1] + v[j]) / 2)


def test_tiny_is_the_package_model_and_bert_helpers_are_restored(runtime):
    from groundingdino.models.GroundingDINO.bertwarper import BertModelWarper
    from groundingdino.models.GroundingDINO.groundingdino import GroundingDINO
    from transformers import BertModel

    before = {n: hasattr(BertModel, n) for n in official._LEGACY}
    prop = make(runtime)
    assert isinstance(prop.model, GroundingDINO) and isinstance(prop.model.bert, BertModelWarper)
    assert {n: hasattr(BertModel, n) for n in official._LEGACY} == before  # the shim left nothing behind
    # the delimiter ids the package reads from the tokenizer: [CLS], [SEP], '.', '?'
    assert prop.model.specical_tokens == [101, 102, 1012, 1029]
    assert prop.weights_used() == "tiny"
    # same seed -> same weights; built once per process (runtime.share)
    assert make(runtime).model is prop.model


def test_bert_warper_matches_transformers_bert(runtime):
    """The package's BertModelWarper (running on the legacy-helper shim under transformers 5) gives
    the same text features as transformers' own BertModel.forward for a padded 2-D mask."""
    from transformers import BertModel

    warper = make(runtime).model.bert
    bert = BertModel(warper.config, add_pooling_layer=True).eval()
    bert.embeddings, bert.encoder, bert.pooler = warper.embeddings, warper.encoder, warper.pooler
    ids = torch.tensor([[101, 1012, 1012, 102, 0, 0], [101, 1012, 1029, 1012, 1012, 102]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    with torch.inference_mode():
        a = warper(input_ids=ids, attention_mask=mask)["last_hidden_state"]
        b = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    keep = mask.bool()
    # same weights and math; the additive -inf-ish vs boolean mask paths differ in rounding only
    torch.testing.assert_close(a[keep], b[keep], atol=1e-5, rtol=1e-5)


def test_preprocessing_equals_the_package_load_image(tmp_path):
    from groundingdino.util.inference import load_image
    from PIL import Image

    frame = random_frames([(90, 160)], seed=3)[0]
    path = tmp_path / "f.png"
    Image.fromarray(frame).save(path)
    src, ref = load_image(str(path))
    ours = official.preprocess([frame], official.REAL_RESIZE)[0]
    np.testing.assert_array_equal(src, frame)
    assert tuple(ours.shape) == (3, 750, 1333)  # shorter side 800 unless the longer exceeds 1333
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_parity_with_package_predict(runtime):
    from groundingdino.util.inference import predict

    frames = random_frames([(48, 80), (48, 80)])
    tags = ["Dog", "acoustic_guitar", "dog", "piano"]
    caption = prompt_text(normalise_prompts(tags))
    assert caption == "dog. acoustic guitar. piano."
    probe = make(runtime)
    scores, tokens = _raw(probe, frames[0], caption)
    box_thr = float(scores.median())  # some, not all, queries pass
    text_thr = float(tokens.flatten().median())  # phrases are a real subset of the caption
    prop = make(runtime, box_threshold=box_thr, text_threshold=text_thr, batch_size=1)
    got = prop.propose(frames, [tags, tags])
    total = 0
    for frame, g in zip(frames, got, strict=True):
        image = official.preprocess([frame], official.TINY_RESIZE)[0]
        boxes, logits, phrases = predict(prop.model, image, caption, box_thr, text_thr, device="cpu")
        h, w = frame.shape[:2]
        ref_xyxy = box_convert(boxes * torch.tensor([w, h, w, h]), "cxcywh", "xyxy").numpy()
        # same model object, same input tensor, batch of one, same post-processing: bit-identical
        np.testing.assert_array_equal(g.boxes, ref_xyxy)
        np.testing.assert_array_equal(g.scores, logits.numpy())
        assert g.labels == phrases
        assert np.all(g.scores > box_thr)
        total += len(g)
    assert 0 < total < 2 * prop.model.num_queries
    words = {w for g in got for t in g.labels for w in t.split()}
    assert words and words <= {"dog", "acoustic", "guitar", "piano", "[CLS]", "[SEP]"}
    assert runtime.counters["gdino.forward_passes"] >= 2


def test_batched_frames_match_single_frames_and_sizes_are_pixels():
    rt = Runtime(device="cpu", tiny=True, seed=0)
    caption = "dog. cat."
    frames = random_frames([(48, 64), (48, 64), (48, 64), (40, 90)], seed=1)
    probe = make(rt)
    scores = torch.cat([_raw(probe, f, caption)[0] for f in frames])
    thr = _gap_threshold(scores.numpy(), 0.5)
    prop = make(rt, box_threshold=thr, text_threshold=0.5, batch_size=8)
    before = rt.counters["gdino.forward_passes"]
    out = prop.propose(frames, [["dog", "cat"]] * 4)
    # one forward for the three 48x64 frames, one for the 40x90 frame (no padding across sizes)
    assert rt.counters["gdino.forward_passes"] - before == 2
    assert sum(len(p) for p in out) > 0
    for f, p in zip(frames, out, strict=True):
        alone = prop.propose([f], [["dog", "cat"]])[0]
        assert len(alone) == len(p) and alone.labels == p.labels
        np.testing.assert_allclose(alone.boxes, p.boxes, atol=1e-3)  # batch of 3 vs 1: rounding only
        np.testing.assert_allclose(alone.scores, p.scores, atol=1e-5)
        assert p.boxes.dtype == np.float32 and p.scores.dtype == np.float32
    # boxes are xyxy in pixels of each original frame (centres inside the frame)
    for f, p in zip(frames, out, strict=True):
        if len(p):
            h, w = f.shape[:2]
            cx, cy = (p.boxes[:, 0] + p.boxes[:, 2]) / 2, (p.boxes[:, 1] + p.boxes[:, 3]) / 2
            assert np.all((cx >= 0) & (cx <= w) & (cy >= 0) & (cy <= h))
            assert np.all(p.boxes[:, 2] >= p.boxes[:, 0]) and np.all(p.boxes[:, 3] >= p.boxes[:, 1])


def test_empty_prompts_and_long_vocabularies(runtime):
    from importlib import resources

    rt = Runtime(device="cpu", tiny=True, seed=0)
    prop = make(rt, box_threshold=0.0)
    out = prop.propose(random_frames([(32, 32)] * 2), [[], ["  "]])
    assert [len(p) for p in out] == [0, 0] and rt.counters["gdino.forward_passes"] == 0
    tags = resources.files("avseg.data").joinpath("audioset_labels.txt").read_text().splitlines()
    chunks = prop.chunks(normalise_prompts(tags))
    assert len(chunks) > 1
    for c in chunks:
        assert len(prop.model.tokenizer(prompt_text(c))["input_ids"]) <= prop.model.max_text_len


def test_checkpoint_round_trip_and_wrong_checkpoint(tmp_path):
    a = official.build_tiny_official(0).eval()
    b = official.build_tiny_official(1).eval()
    path = tmp_path / "ckpt.pth"
    torch.save({"model": {"module." + k: v for k, v in a.state_dict().items()}}, path)  # as DDP saves
    official.load_checkpoint(b, path)
    x = official.preprocess(random_frames([(48, 64)], seed=5), official.TINY_RESIZE)[0][None]
    with torch.inference_mode():
        oa, ob = a(x, captions=["dog."]), b(x, captions=["dog."])
    torch.testing.assert_close(oa["pred_boxes"], ob["pred_boxes"], rtol=0, atol=0)
    bad = tmp_path / "bad.pth"
    torch.save({"model": {"feat_map.bias": a.feat_map.bias.detach()}}, bad)
    with pytest.raises(AvsegError) as ei:
        official.load_checkpoint(b, bad)
    assert "does not fit" in str(ei.value) and "\n" not in str(ei.value)


def test_missing_weights_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    rt = Runtime(device="cpu", tiny=False)
    with pytest.raises(WeightsMissing) as ei:
        make(rt)
    msg = str(ei.value)
    assert "\n" not in msg and "groundingdino_swint_ogc.pth" in msg
    assert "avseg weights fetch gdino/official-swin-t" in msg
    # the checkpoint is there, bert-base-uncased is not: the error names BERT
    ckpt = tmp_path / "groundingdino_swint_ogc.pth"
    ckpt.write_bytes(b"")
    with pytest.raises(WeightsMissing) as ei:
        make(rt, checkpoint=str(ckpt))
    assert "bert-base-uncased" in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(WeightsMissing) as ei:
        make(rt, checkpoint=str(tmp_path / "nowhere.pth"))
    assert str(tmp_path / "nowhere.pth") in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(WeightsMissing) as ei:
        make(rt, variant="swin-b")
    assert "groundingdino_swinb_cogcoor.pth" in str(ei.value)


def test_config_and_declared_weights():
    from pydantic import ValidationError

    assert GroundingDinoProposer.Config().backend == "transformers"
    with pytest.raises(ValidationError, match="official"):
        GroundingDinoProposer.Config(backend="offical")
    files = {v: [wf.filename for wf in fs] for v, fs in GroundingDinoProposer.weights.items()}
    assert files["official-swin-t"] == ["groundingdino_swint_ogc.pth", "bert-base-uncased"]
    swint = GroundingDinoProposer.weights["official-swin-t"][0]
    assert swint.url.endswith("/v0.1.0-alpha/groundingdino_swint_ogc.pth") and swint.licence == "Apache-2.0"
    assert GroundingDinoProposer.weights["official-swin-t"][1].hf_repo == "google-bert/bert-base-uncased"
