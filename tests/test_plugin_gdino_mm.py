"""gdino variant mm-*: MM-GroundingDINO through the same proposer, at parity with transformers'
MMGroundingDinoForObjectDetection + GroundingDinoProcessor at equal random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.deps import requires

torch = requires("torch")
requires("transformers")

from avseg_gdino.mm import build_random  # noqa: E402
from avseg_gdino.proposer import GroundingDinoProposer  # noqa: E402

from avseg.errors import ConfigError, WeightsMissing  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402
from tests.helpers import random_frames  # noqa: E402


def test_mm_tiny_matches_upstream_usage() -> None:
    runtime = Runtime(device="cpu", tiny=True, seed=0)
    prop = GroundingDinoProposer(GroundingDinoProposer.Config(variant="mm-tiny", box_threshold=0.0), runtime)
    assert type(prop.model).__name__ == "MMGroundingDinoForObjectDetection"
    frames = random_frames([(48, 64), (48, 64)], seed=4)
    out = prop.propose(frames, [["dog", "acoustic guitar"], ["dog", "acoustic guitar"]])
    model, processor = build_random("mm-tiny", tiny=True, seed=0)  # equal weights, built apart
    for frame, got in zip(frames, out, strict=True):
        # transformers' documented usage: processor(images, text) -> model -> grounded post-processing
        inputs = processor(images=frame, text="dog. acoustic guitar.", return_tensors="pt")
        with torch.inference_mode():
            outputs = model.eval()(**inputs)
        ref = processor.post_process_grounded_object_detection(
            outputs, input_ids=inputs["input_ids"], threshold=0.0, text_threshold=0.25, target_sizes=[(48, 64)]
        )[0]
        assert len(got) == len(ref["scores"]) > 0
        np.testing.assert_allclose(got.scores, ref["scores"].numpy(), atol=1e-4)
        np.testing.assert_allclose(got.boxes, ref["boxes"].numpy(), atol=1e-2)
        assert got.labels == [str(t) for t in ref["text_labels"]]


def test_mm_variants_declare_their_checkpoints_and_fail_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    w = GroundingDinoProposer.weights
    assert w["mm-tiny"][0].hf_repo == "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det"
    assert {"mm-base", "mm-large", "swin-t", "swin-b"} <= set(w)
    monkeypatch.setenv("AVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(WeightsMissing) as ei:
        GroundingDinoProposer(GroundingDinoProposer.Config(variant="mm-base"), Runtime(device="cpu"))
    assert "\n" not in str(ei.value) and "mm_grounding_dino_base" in str(ei.value)
    with pytest.raises(ConfigError, match="backend=transformers"):
        GroundingDinoProposer(GroundingDinoProposer.Config(variant="mm-tiny", backend="official"), Runtime(device="cpu"))
