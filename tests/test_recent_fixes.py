"""Tests that would have caught the last bugs fixed before issue 21 where no test did.

- gdino and sam3 prompt frames through one function (commit "gdino and sam3 share frame_prompts"):
  both must prompt with the same normalised names, a vocabulary must win over the tags, and a
  wrong number of prompt lists must be refused, for each of them, as a user sees it (the labels
  of the objects they return).
(The Ray dead-worker pool, the HF checkpoint-folder loader and the lost config.json each came with
a test: tests/test_ray.py, tests/test_weights.py, tests/test_hostile_inputs.py and
tests/test_survivors.py::test_resume_refuses_progress_files_of_another_config.)
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from tests.deps import requires
from tests.helpers import random_frames

requires("torch")
requires("transformers")

from avseg.registry import load_registry  # noqa: E402
from avseg.runtime import Runtime  # noqa: E402

RAW_TAGS = [["Dog_Bark", "the dog-bark", "", "Acoustic.Guitar"], ["A Piano"]]
NORMALISED = [["dog bark", "acoustic guitar"], ["piano"]]


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(device="cpu", tiny=True, seed=0)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return random_frames([(48, 64)] * 2, seed=5)


def words(labels: list[str] | None) -> set[str]:
    """The words of returned labels (gdino's phrases are token spans of the caption it was
    prompted with, which a random tiny model cuts anywhere; sam3 returns the prompt itself)."""
    return {w for lab in labels or [] for w in re.findall(r"[a-z]+", lab.lower())} - {"sep"}


def proposer(name: str, runtime: Runtime, **cfg: Any) -> Any:
    cls = load_registry().get("proposer", name)
    # every candidate through: the labels show what each frame was prompted with
    loose = {"gdino": {"box_threshold": 0.0}, "sam3": {"threshold": 0.0}}[name]
    return cls(cls.Config(**{**loose, **cfg}), runtime)


@pytest.mark.parametrize("name", ["gdino", "sam3"])
def test_tags_are_normalised_into_each_frames_prompts(name: str, runtime: Runtime, frames: list[np.ndarray]) -> None:
    out = proposer(name, runtime).propose(frames, RAW_TAGS)
    assert len(out) == 2
    for got, wanted in zip(out, NORMALISED, strict=True):
        assert got.labels is not None and len(got) > 0
        assert words(got.labels) <= words(wanted), (name, got.labels, wanted)
        if name == "sam3":
            assert set(got.labels) <= set(wanted)
    assert words(out[1].labels) == {"piano"}  # frame 2 never gets frame 1's tags


@pytest.mark.parametrize("name", ["gdino", "sam3"])
def test_a_vocabulary_wins_over_the_tags(name: str, runtime: Runtime, frames: list[np.ndarray]) -> None:
    out = proposer(name, runtime, vocabulary=["trumpet"]).propose(frames, RAW_TAGS)
    assert all(got.labels is not None and len(got) > 0 and words(got.labels) == {"trumpet"} for got in out)


@pytest.mark.parametrize("name", ["gdino", "sam3"])
def test_a_prompt_list_per_frame_or_a_clear_error(name: str, runtime: Runtime, frames: list[np.ndarray]) -> None:
    with pytest.raises(Exception, match=rf"{name}.*2 frames but 1 prompt lists"):
        proposer(name, runtime).propose(frames, RAW_TAGS[:1])
