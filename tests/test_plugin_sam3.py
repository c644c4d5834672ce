"""sam3: SAM 3 concept proposer. Instances match Sam3Model + Sam3Processor's post-processing at equal
random weights; tracking matches the Sam3VideoModel session driven as transformers documents it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydantic
import pytest

from tests.deps import requires

torch = requires("torch")
requires("transformers")

from avseg_sam3.models import build_random, tiny_tokenizer  # noqa: E402
from avseg_sam3.proposer import Sam3Proposer  # noqa: E402

from avseg.errors import WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402
from tests.helpers import cli, random_frames, step_of  # noqa: E402


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(device="cpu", tiny=True, seed=0)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return random_frames([(48, 64)] * 2, seed=5)


def make(runtime: Runtime, **cfg: object) -> Sam3Proposer:
    return Sam3Proposer(Sam3Proposer.Config(**cfg), runtime)


def test_instances_match_sam3model_and_its_post_processing(runtime: Runtime, frames: list[np.ndarray]) -> None:
    prop = make(runtime, threshold=0.3, top_k=None)
    out = prop.propose(frames, [["dog", "acoustic guitar"], ["dog"]])
    model, processor = build_random(video=False, tiny=True, seed=0)  # equal weights, built apart
    for frame, labels, got in zip(frames, [["dog", "acoustic guitar"], ["dog"]], out, strict=True):
        assert got.labels is not None and got.masks is not None
        assert set(got.labels) <= set(labels)
        for label in labels:
            # transformers' documented usage: processor(images, text) -> model -> instance post-processing
            inputs = processor(images=frame, text=label, return_tensors="pt")
            with torch.inference_mode():
                ref = processor.post_process_instance_segmentation(
                    model(**inputs), threshold=0.3, mask_threshold=0.5, target_sizes=inputs["original_sizes"].tolist()
                )[0]
            mine = [j for j, lab in enumerate(got.labels) if lab == label]
            order = np.argsort(-ref["scores"].numpy(), kind="stable")
            assert len(mine) == len(order) > 0
            np.testing.assert_allclose(got.scores[mine], ref["scores"].numpy()[order], atol=1e-4)
            np.testing.assert_allclose(got.boxes[mine], ref["boxes"].numpy()[order], atol=1e-2)
            assert (got.masks[mine] != ref["masks"].numpy()[order].astype(bool)).mean() < 1e-3
        assert np.all(np.diff(got.scores) <= 0)  # sorted by score across prompts
        np.testing.assert_array_equal(got.mask_scores, got.scores)
    assert runtime.counters["sam3.vision_encoder"] >= 2


def test_prompts_come_from_tags_or_the_vocabulary(runtime: Runtime, frames: list[np.ndarray]) -> None:
    out = make(runtime).propose(frames, [["Dog"], []])
    assert len(out[1]) == 0 and out[1].masks is not None and out[1].masks.shape == (0, 48, 64)
    assert set(out[0].labels or []) <= {"dog"}
    prop = make(runtime, vocabulary=["cat", "piano"], top_k=3)
    assert prop.frame_prompts(2, [["dog"], []]) == [["cat", "piano"], ["cat", "piano"]]
    out = prop.propose(frames, None)
    assert all(len(p) <= 3 and set(p.labels or []) <= {"cat", "piano"} for p in out)
    assert make(runtime, vocabulary="avsbench-s4").vocabulary[:2] == ["baby", "woman"]
    with pytest.raises(pydantic.ValidationError, match="neither a named vocabulary"):
        Sam3Proposer.Config(vocabulary="no-such-vocabulary")


def test_tracking_matches_the_documented_video_session(runtime: Runtime) -> None:
    clip = random_frames([(48, 64)] * 2, seed=2)
    out = make(runtime, track=True, threshold=0.0, vocabulary=["dog"]).propose(clip, None)
    model, processor = build_random(video=True, tiny=True, seed=0)
    # transformers' documented usage: session, text prompt, propagate, postprocess_outputs per frame
    session = processor.init_video_session(video=np.stack(clip), inference_device="cpu", processing_device="cpu",
                                           video_storage_device="cpu", dtype=torch.float32)
    session = processor.add_text_prompt(inference_session=session, text="dog")
    seen = 0
    with torch.inference_mode():
        for o in model.propagate_in_video_iterator(inference_session=session, max_frame_num_to_track=2):
            r = processor.postprocess_outputs(session, o)
            keep = [k for k in range(len(r["object_ids"])) if r["masks"][k].any()]
            got = out[o.frame_idx]
            assert len(got) == len(keep) and got.labels == ["dog"] * len(keep)
            if keep:
                order = np.argsort(-r["scores"].numpy()[keep], kind="stable")
                np.testing.assert_array_equal(got.masks, r["masks"].numpy()[keep][order])
            seen += len(keep)
    assert seen > 0 and runtime.counters["sam3.tracked_frames"] >= 2


def test_tiny_tokenizer_keeps_vocabulary_words_whole() -> None:
    tok = tiny_tokenizer()
    assert tok.convert_ids_to_tokens(tok("acoustic guitar")["input_ids"]) == [
        "<|startoftext|>", "acoustic</w>", "guitar</w>", "<|endoftext|>"]
    assert tok.unk_token_id not in tok("zqx!")["input_ids"][1:-1]  # any text encodes, byte by byte


def test_missing_checkpoint_fails_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(WeightsMissing) as ei:
        make(Runtime(device="cpu"))
    assert "\n" not in str(ei.value) and "facebook/sam3" in str(ei.value)


def test_at_sam3_runs_on_a_video(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from avseg.testing import make_video

    video = make_video(tmp_path / "clip.mp4", seconds=2, size=64, fps=5)
    code, _, err = cli(capsys, "run", "at-sam3", "--tiny", "--no-cache", "--input", str(video),
                       "--out", str(tmp_path / "out"), "--set", "filter.tag-threshold.threshold=0.0",
                       "--set", "filter.tag-threshold.top_k=2")
    assert code == 0, err
    meta = json.loads((tmp_path / "out" / "run.json").read_text())
    assert step_of(meta["config"], "segmenter") is None and meta["weights"]["proposer:sam3"] == "tiny"
    assert meta["counters"]["sam3.vision_encoder"] == meta["n_frames"] == 2
