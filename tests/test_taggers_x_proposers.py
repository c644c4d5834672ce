"""Every tagger prompts every text-prompted proposer, at tiny size, on a one-frame clip (any frame size: the tiny image processor resizes to 64 px).

Regression for ``at-gdino-sam --tagger panns`` failing on a 224x224 clip: the tiny GroundingDINO's
GroupNorm saw one value per group on its 1x1 feature level whenever a batch held one frame
(frames are batched by equal prompts, so a tagger giving each frame different tags made batches
of one). A one-frame clip makes that batch for every tagger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from avseg.components import Proposer
from avseg.data import open_input
from avseg.pipeline import Pipeline
from avseg.registry import load_registry
from avseg.runtime import Runtime
from avseg.spec import compose, resolve
from avseg.testing import make_frames_folder

REGISTRY = load_registry()
TAGGERS = sorted(r.name for r in REGISTRY.registrations("tagger"))


def _text_prompted() -> list[tuple[str, dict[str, str]]]:
    """(proposer, extra config) for every registered proposer that takes text prompts from tags.

    gdino's ``backend: official`` is left out: with this environment's transformers its BERT
    wrapper fails whatever the tagger (tests/test_plugin_gdino_official.py shows it)."""
    out: list[tuple[str, dict[str, str]]] = []
    for reg in REGISTRY.registrations("proposer"):
        cls = reg.cls
        assert issubclass(cls, Proposer)
        if cls.capabilities(cls.Config()).needs_prompts:
            out.append((reg.name, {}))
    return out


PROPOSERS = _text_prompted()
# per proposer: the option that keeps every detection at 0, and the counter of frames it encoded
KNOBS = {"gdino": ("box_threshold", "gdino.frames"), "sam3": ("threshold", "sam3.vision_encoder")}


def test_the_matrix_is_not_empty() -> None:
    assert {"ast", "clap", "panns"} <= set(TAGGERS)
    assert ("gdino", {}) in PROPOSERS
    assert {p for p, _ in PROPOSERS} <= set(KNOBS), "add the new text-prompted proposer to KNOBS"


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(device="cpu", tiny=True)  # one runtime: each model is built once for the module


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return open_input(make_frames_folder(tmp_path_factory.mktemp("one") / "frames", n=1, size=64), fps=1.0)


@pytest.mark.parametrize("tagger", TAGGERS)
@pytest.mark.parametrize(("proposer", "extra"), PROPOSERS, ids=lambda v: v if isinstance(v, str) else "-".join(v.values()))
def test_tagger_prompts_proposer(tagger: str, proposer: str, extra: dict[str, str], runtime: Runtime,
                                 clip, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    knob, frames_counter = KNOBS[proposer]
    sets = [f"proposer.{k}={v}" for k, v in extra.items()] + [
        "filter.tag-threshold.threshold=0.0", "filter.tag-threshold.top_k=3",  # a few prompts, always some
        f"proposer.{knob}=0.0"]
    spec = compose("at-gdino-sam", tagger=tagger, proposer=proposer, sets=sets, registry=REGISTRY)
    before = dict(runtime.counters)
    res = Pipeline(resolve(spec, REGISTRY), runtime).run_clip(clip)
    assert len(res.frames) == 1 and res.frames[0].mask.shape == (64, 64)
    # the proposer ran, prompted
    assert runtime.counters.get(frames_counter, 0) - before.get(frames_counter, 0) == 1
    assert len(res.frames[0].kept) > 0  # threshold 0: every detection survives to the mask
