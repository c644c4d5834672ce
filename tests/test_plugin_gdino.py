"""gdino: GroundingDINO proposer. Tiny variant, parity with upstream transformers post-processing."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from tests.deps import requires

torch = requires("torch")
requires("transformers")

from avseg_gdino.proposer import (  # noqa: E402
    GroundingDinoProposer,
    normalise_prompts,
    prompt_text,
    resolve_vocabulary,
)

from avseg.errors import WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402
from tests.helpers import random_frames  # noqa: E402


@pytest.fixture(scope="module")
def runtime():
    return Runtime(device="cpu", tiny=True, seed=0)


def make(runtime, **cfg):
    return GroundingDinoProposer(GroundingDinoProposer.Config(**cfg), runtime)


def upstream(prop, frames, caption, box_threshold, text_threshold):
    """What transformers itself gives for these frames and caption, on the same model object."""
    proc, model = prop.processor, prop.model
    inputs = proc(images=frames, text=[caption] * len(frames), return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    return outputs, proc.post_process_grounded_object_detection(
        outputs,
        threshold=box_threshold,
        text_threshold=text_threshold,
        target_sizes=[f.shape[:2] for f in frames],
    )


def test_prompt_formatting():
    labels = normalise_prompts(["Dog", "acoustic_guitar", "dog", "  ", "Mr. Bean", "ACOUSTIC guitar"])
    assert labels == ["dog", "acoustic guitar", "mr bean"]
    assert prompt_text(labels) == "dog. acoustic guitar. mr bean."
    assert prompt_text([]) == ""


def test_parity_with_upstream(runtime):
    frames = random_frames([(48, 80), (48, 80)])
    tags = ["Dog", "acoustic_guitar", "dog", "piano"]
    probe = make(runtime)
    caption = prompt_text(normalise_prompts(tags))
    assert caption == "dog. acoustic guitar. piano."
    # Pick a box threshold inside the tiny model's score range so that some, not all, boxes pass.
    outputs, _ = upstream(probe, frames, caption, 0.0, 0.0)
    raw = torch.sigmoid(outputs.logits).max(-1).values.flatten()
    thr = float(raw.median())
    prop = make(runtime, box_threshold=thr, text_threshold=0.5)
    got = prop.propose(frames, [tags, tags])
    _, ref = upstream(prop, frames, caption, thr, 0.5)
    total = 0
    for g, r in zip(got, ref, strict=True):
        # Same model object, same inputs, same upstream post-processing: bit-identical.
        np.testing.assert_array_equal(g.boxes, r["boxes"].numpy())
        np.testing.assert_array_equal(g.scores, r["scores"].numpy())
        assert g.labels == list(r["text_labels"])
        assert np.all(g.scores > thr)
        total += len(g)
    assert 0 < total < 2 * prop.model.config.num_queries
    # labels are decoded prompt tokens (random weights: any mix of them), never [CLS]
    words = {w for g in got for t in (g.labels or []) for w in re.findall(r"\[?[a-z]+\]?", t.lower())}
    assert words and words <= {"dog", "acoustic", "guitar", "piano", "[sep]"}
    # boxes are in pixels of the 48x80 frame
    allb = np.concatenate([g.boxes for g in got])
    assert allb[:, [0, 2]].max() <= 80 + 1e-3 and allb[:, [1, 3]].max() <= 48 + 1e-3


def test_empty_prompts_make_empty_proposals_without_a_model_call():
    rt = Runtime(device="cpu", tiny=True, seed=0)
    prop = make(rt, box_threshold=0.0)
    out = prop.propose(random_frames([(32, 32)] * 2), [[], ["  "]])
    assert [len(p) for p in out] == [0, 0] and all(p.labels == [] for p in out)
    assert rt.counters["gdino.forward_passes"] == 0
    out = prop.propose(random_frames([(32, 32)]), None)
    assert len(out) == 1 and len(out[0]) == 0 and rt.counters["gdino.forward_passes"] == 0


def test_frames_with_equal_prompts_share_a_forward():
    rt = Runtime(device="cpu", tiny=True, seed=0)
    prop = make(rt, box_threshold=0.0, text_threshold=0.5)
    frames = random_frames([(48, 64)] * 3, seed=1)
    prompts = [["dog", "cat"], ["piano"], ["Dog", "cat", "dog"]]
    out = prop.propose(frames, prompts)
    assert rt.counters["gdino.forward_passes"] == 2 and rt.counters["gdino.frames"] == 3
    for i in range(3):
        alone = prop.propose([frames[i]], [prompts[i]])[0]
        assert len(alone) == len(out[i]) > 0
        np.testing.assert_allclose(alone.boxes, out[i].boxes, atol=1e-3)  # batch of 2 vs 1: rounding only
        np.testing.assert_allclose(alone.scores, out[i].scores, atol=1e-5)


def test_vocabulary_replaces_tags(runtime, tmp_path):
    frames = random_frames([(48, 64)], seed=2)
    fixed = make(runtime, box_threshold=0.0, text_threshold=0.5, vocabulary=["Dog", "cat"])
    from_tags = make(runtime, box_threshold=0.0, text_threshold=0.5)
    a = fixed.propose(frames, [["piano"]])[0]
    b = from_tags.propose(frames, [["dog", "cat"]])[0]
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert a.labels == b.labels
    assert len(fixed.propose(frames, None)[0]) == len(a)  # no tags needed at all
    assert GroundingDinoProposer.capabilities(fixed.config).has_vocabulary
    caps = GroundingDinoProposer.capabilities(from_tags.config)
    assert caps.needs_prompts and caps.gives_labels and not caps.has_vocabulary and not caps.gives_masks


def test_named_and_file_vocabularies(tmp_path):
    s4 = resolve_vocabulary("avsbench-s4")
    assert len(s4) == 23 and "acoustic guitar" in s4 and "dog" in s4
    avss = resolve_vocabulary("avss")
    assert len(avss) == 70 and "emergency car" in avss and "background" not in avss
    assert len(resolve_vocabulary("coco")) == 80
    f = tmp_path / "v.txt"
    f.write_text("# my classes\nDog\n\ncat\ndog\n")
    assert resolve_vocabulary(str(f)) == ["dog", "cat"]
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="avss"):
        GroundingDinoProposer.Config(vocabulary="avsss")
    with pytest.raises(ValidationError):
        GroundingDinoProposer.Config(box_threshold=-0.1)


def test_long_vocabularies_are_split_to_fit_the_text_length(runtime):
    from importlib import resources

    prop = make(runtime)
    tags = resources.files("avseg.data").joinpath("audioset_labels.txt").read_text().splitlines()
    labels = normalise_prompts(tags)
    chunks = prop.chunks(labels)
    assert len(chunks) > 1 and [x for c in chunks for x in c] == labels
    limit = prop.model.config.max_text_len
    for c in chunks:
        n = len(prop.processor.tokenizer(prompt_text(c))["input_ids"])
        assert n <= limit


def test_tiny_tokenizer_uses_grounding_dino_delimiter_ids(runtime):
    tok = make(runtime).processor.tokenizer
    ids = tok("dog. acoustic guitar.")["input_ids"]
    assert ids[0] == 101 and ids[-1] == 102 and ids.count(1012) == 2
    assert tok.unk_token_id not in ids


def test_missing_weights_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    rt = Runtime(device="cpu", tiny=False)
    with pytest.raises(WeightsMissing) as ei:
        make(rt, variant="swin-b")
    msg = str(ei.value)
    assert (
        "\n" not in msg and "IDEA-Research/grounding-dino-base" in msg and "avseg weights fetch gdino" in msg
    )
    with pytest.raises(WeightsMissing) as ei:
        make(rt, checkpoint=str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(ei.value) and "\n" not in str(ei.value)


def test_loads_a_local_checkpoint_folder(runtime, tmp_path):
    tiny = make(runtime, box_threshold=0.0, text_threshold=0.5)
    tiny.model.save_pretrained(tmp_path)
    tiny.processor.save_pretrained(tmp_path)
    tiny.processor.image_processor.save_pretrained(tmp_path)  # the hub repo's preprocessor_config.json
    rt = Runtime(device="cpu", tiny=False)
    real = make(rt, box_threshold=0.0, text_threshold=0.5, checkpoint=str(tmp_path))
    assert real.weights_used() == {"grounding-dino-tiny": str(tmp_path)}
    assert tiny.weights_used() == "tiny"
    frames = random_frames([(48, 64)], seed=4)
    a, b = tiny.propose(frames, [["dog"]])[0], real.propose(frames, [["dog"]])[0]
    assert len(a) > 0 and a.labels == b.labels
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)


def test_registry():
    import avseg_gdino

    from avseg.registry import load_registry

    reg = load_registry(plugins=[("gdino", avseg_gdino)], entry_points=False)
    assert reg.get("proposer", "gdino") is GroundingDinoProposer


def test_package_import_is_light():
    code = "import sys, avseg_gdino; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_top_k_keeps_the_best_boxes_in_order():
    rt = Runtime(device="cpu", tiny=True, seed=0)
    frames = random_frames([(48, 64)], seed=1)
    full = make(rt, box_threshold=0.0).propose(frames, [["dog", "cat"]])[0]
    assert len(full) > 3
    top = make(rt, box_threshold=0.0, top_k=3).propose(frames, [["dog", "cat"]])[0]
    best = np.sort(np.argsort(-full.scores, kind="stable")[:3])
    np.testing.assert_array_equal(top.boxes, full.boxes[best])
    assert top.labels == [full.labels[j] for j in best]


def test_old_variant_names_are_refused_with_the_new_one():
    from avseg.errors import ConfigError
    from avseg.registry import load_registry
    from avseg.spec import compose, resolve

    reg = load_registry()
    for old, new in (("tiny", "swin-t"), ("base", "swin-b")):
        spec = compose("at-gdino-sam", sets=[f"proposer.variant={old}"], registry=reg)
        with pytest.raises(ConfigError, match=f"variant '{old}' is now '{new}'") as ei:
            resolve(spec, reg)
        assert "\n" not in str(ei.value)
    assert GroundingDinoProposer.Config().variant == "swin-t"
    assert set(GroundingDinoProposer.weights) >= {"swin-t", "swin-b", "official-swin-t", "official-swin-b"}


def test_weights_fetch_refuses_an_old_variant_name_with_the_new_one(capsys):
    from tests.helpers import cli

    for old, new in (("gdino/tiny", "swin-t"), ("gdino/official-base", "official-swin-b")):
        code, _, err = cli(capsys, "weights", "fetch", old)
        assert code == 2 and f"it is now '{new}'" in err and err.count("\n") == 1
def test_preprocessing_equals_the_authors_transform(runtime, monkeypatch):
    """The transformers backend feeds the model exactly what GroundingDINO's own transforms make
    (PIL bilinear resize, the authors' output-size rounding); transformers' default torchvision
    processor would not."""
    requires("groundingdino")
    from avseg_gdino.official import TINY_RESIZE, preprocess
    from avseg_gdino.tiny import TINY_LONGEST_EDGE, TINY_SHORTEST_EDGE
    from transformers import GroundingDinoImageProcessor

    assert TINY_RESIZE == (TINY_SHORTEST_EDGE, TINY_LONGEST_EDGE)
    prop = make(runtime, box_threshold=1.0)
    seen = []
    forward = prop.model.forward
    monkeypatch.setattr(prop.model, "forward", lambda *a, **k: (seen.append(k["pixel_values"]), forward(*a, **k))[1])
    for shape in [(48, 100), (60, 64)]:  # (48, 100): transformers alone would make it 61x128, the authors 61x127
        frames = random_frames([shape], seed=3)
        prop.propose(frames, [["dog"]])
        ref = preprocess(frames, TINY_RESIZE)[0]
        assert seen[-1].shape[-2:] == ref.shape[-2:]
        torch.testing.assert_close(seen[-1][0], ref, rtol=0, atol=0)
    default = GroundingDinoImageProcessor(size={"shortest_edge": TINY_SHORTEST_EDGE, "longest_edge": TINY_LONGEST_EDGE})
    assert default(images=random_frames([(48, 100)]), return_tensors="pt")["pixel_values"].shape[-2:] == (61, 128)
    frames = random_frames([(48, 100)], seed=3)
    ref = preprocess(frames, TINY_RESIZE)[0]
    tv = default(images=frames, size={"height": 61, "width": 127}, return_tensors="pt")["pixel_values"][0]
    assert tv.shape == ref.shape and float((tv - ref).abs().max()) > 0.01  # measured 0.0175: one grey level
