"""The ``bind`` filter on crafted embeddings whose right answer is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from avseg_filters.bind import BindFilter, bind_scores
from pydantic import ValidationError

from avseg.components import FrameContext
from avseg.errors import ChainError
from avseg.runtime import Runtime
from avseg.types import Proposals


def _props(n: int) -> Proposals:
    boxes = np.tile(np.array([[0, 0, 4, 4]], np.float32), (n, 1))
    return Proposals(boxes, np.ones(n, np.float32))


def _ctx(regions: list[list[float]], audio: list[float]) -> FrameContext:
    r = np.asarray(regions, np.float32).reshape(len(regions), -1)
    return FrameContext(
        clip_id="c",
        index=0,
        frame=np.zeros((8, 8, 3), np.uint8),
        proposals=_props(len(regions)),
        region_embeddings=r,
        audio_embedding=np.asarray(audio, np.float32),
    )


def _filter(**cfg: object) -> BindFilter:
    return BindFilter(BindFilter.Config(**cfg), Runtime(device="cpu"))


# audio along x; regions at cosine 1, 0.6 (3-4-5 triangle), 0, -1 from it
REGIONS = [[1, 0, 0], [3, 4, 0], [0, 1, 0], [-1, 0, 0]]
AUDIO = [1, 0, 0]


def test_class_attributes() -> None:
    assert BindFilter.name == "bind"
    assert BindFilter.target == "proposals"
    assert BindFilter.needs == frozenset({"embeddings"})
    assert BindFilter.capabilities(BindFilter.Config()).needs == frozenset({"embeddings"})


def test_cosine_default_threshold_is_0_7() -> None:
    res = _filter()(_ctx(REGIONS, AUDIO))
    assert res.keep == [0]
    assert res.scores == pytest.approx([1.0, 0.6, 0.0, -1.0], abs=1e-12)
    assert set(res.drops) == {1, 2, 3}
    d = res.drops[1]
    assert d.filter == "bind"
    assert d.reason == "similarity 0.60 < 0.70"
    assert d.score == pytest.approx(0.6)


def test_cosine_ignores_embedding_norms() -> None:
    """Cosine is scale-free: ImageBind's audio vectors carry a logit scale of 20."""
    regions = [[5, 0, 0], [0.3, 0.4, 0], [0, 7, 0]]
    res = _filter(cosine_threshold=0.5)(_ctx(regions, [20, 0, 0]))
    assert res.keep == [0, 1]
    # 0.3 and 0.4 are not exact in float32 (the context's dtype): 1e-7 slack
    assert res.scores == pytest.approx([1.0, 0.6, 0.0], abs=1e-7)


def test_cosine_tie_is_kept() -> None:
    res = _filter(cosine_threshold=0.6)(_ctx(REGIONS, AUDIO))
    assert res.keep == [0, 1]  # 3/5 == 0.6 exactly: >= keeps it
    res = _filter(cosine_threshold=0.6000001)(_ctx(REGIONS, AUDIO))
    assert res.keep == [0]
    assert res.drops[1].reason == "similarity 0.6000000 < 0.6000001"  # more digits when 2 would read equal


def test_cosine_negative_threshold_and_zero_vector() -> None:
    res = _filter(cosine_threshold=-1.0)(_ctx(REGIONS + [[0, 0, 0]], AUDIO))
    assert res.keep == [0, 1, 2, 3, 4]
    assert res.scores is not None and res.scores[4] == 0.0  # a zero vector scores 0, not NaN


def test_softmax_uses_raw_dot_products() -> None:
    """As the authors: softmax over the frame's regions of vision @ audio (audio norm 20)."""
    regions = [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0]]  # exact in float32
    audio = [20, 0, 0]
    logits = [20.0, 10.0, 0.0]
    z = sum(math.exp(v) for v in logits)
    expected = [math.exp(v) / z for v in logits]
    res = _filter(mode="softmax")(_ctx(regions, audio))
    assert res.scores == pytest.approx(expected, rel=1e-9)
    assert res.keep == [0]  # default threshold 0.2; expected[1] ~ 5e-5
    assert res.drops[1].reason.startswith("softmax score 0.00 < 0.20")
    assert sum(res.scores) == pytest.approx(1.0)


def test_softmax_temperature_uses_cosines() -> None:
    regions = [[2, 0], [0, 3], [-5, 0]]  # cosines 1, 0, -1 whatever the norms
    t = 0.5
    logits = [1 / t, 0.0, -1 / t]
    z = sum(math.exp(v) for v in logits)
    expected = [math.exp(v) / z for v in logits]
    res = _filter(mode="softmax", temperature=t, softmax_threshold=0.1)(_ctx(regions, [7, 0]))
    assert res.scores == pytest.approx(expected, rel=1e-9)
    assert res.keep == [0, 1]  # 0.867, 0.117 >= 0.1 > 0.016


def test_softmax_ties_and_single_region() -> None:
    res = _filter(mode="softmax", softmax_threshold=0.5)(_ctx([[1, 0], [1, 0]], [20, 0]))
    assert res.scores == [0.5, 0.5]
    assert res.keep == [0, 1]
    res = _filter(mode="softmax", softmax_threshold=0.5)(_ctx([[1, 0], [1, 0], [0, 1]], [20, 0]))
    assert res.keep == []  # two equal winners share the mass: just under 0.5 each
    res = _filter(mode="softmax", softmax_threshold=1.0)(_ctx([[0, 1]], [1, 0]))
    assert res.keep == [0] and res.scores == [1.0]  # one region takes all the mass
    # strict (the authors' `values[index] > threshold`): an exact tie at the threshold is dropped
    res = _filter(mode="softmax", softmax_threshold=0.5, strict=True)(_ctx([[1, 0], [1, 0]], [20, 0]))
    assert res.keep == [] and "0.5 <= 0.5" in res.drops[0].reason
    res = _filter(mode="softmax", softmax_threshold=0.49, strict=True)(_ctx([[1, 0], [1, 0]], [20, 0]))
    assert res.keep == [0, 1]


def test_softmax_is_stable_for_large_logits() -> None:
    scores = bind_scores(np.array([[1000.0], [999.0]]), np.array([1.0]), "softmax")
    assert np.all(np.isfinite(scores))
    assert scores == pytest.approx([1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))])


def test_empty_proposals_keep_nothing() -> None:
    f = _filter()
    ctx = FrameContext(clip_id="c", index=0, frame=np.zeros((4, 4, 3), np.uint8), proposals=Proposals.empty())
    res = f(ctx)
    assert res.keep == [] and res.drops == {}
    ctx = FrameContext(clip_id="c", index=0, frame=np.zeros((4, 4, 3), np.uint8), proposals=None)
    assert f(ctx).keep == []
    ctx = FrameContext(
        clip_id="c",
        index=0,
        frame=np.zeros((4, 4, 3), np.uint8),
        proposals=Proposals.empty(),
        region_embeddings=np.zeros((0, 3), np.float32),
        audio_embedding=np.ones(3, np.float32),
    )
    assert _filter(mode="softmax")(ctx).keep == []


def test_missing_or_mismatched_embeddings_are_chain_errors() -> None:
    ctx = _ctx(REGIONS, AUDIO)
    ctx.audio_embedding = None
    with pytest.raises(ChainError, match="needs region and audio embeddings"):
        _filter()(ctx)
    ctx = _ctx(REGIONS, AUDIO)
    ctx.region_embeddings = ctx.region_embeddings[:2]
    with pytest.raises(ChainError, match="2 region embeddings for 4 proposals"):
        _filter()(ctx)
    with pytest.raises(ChainError, match="size 3 but an audio embedding of 2"):
        _filter()(_ctx(REGIONS, [1, 0]))


def test_config_defaults_and_validation() -> None:
    assert BindFilter.Config().effective_threshold == 0.7
    assert BindFilter.Config(mode="softmax").effective_threshold == 0.2
    assert BindFilter.Config(mode="minmax").effective_threshold == 0.5
    assert BindFilter.Config(mode="softmax", softmax_threshold=0.05).effective_threshold == 0.05
    # each mode reads only its own parameter: a cosine number never becomes a softmax one
    assert BindFilter.Config(mode="softmax", cosine_threshold=0.9).effective_threshold == 0.2
    with pytest.raises(ValidationError):
        BindFilter.Config(mode="softmax", softmax_threshold=-0.1)
    with pytest.raises(ValidationError):
        BindFilter.Config(cosine_threshold=1.5)
    with pytest.raises(ValidationError):
        BindFilter.Config(minmax_threshold=-0.5)
    with pytest.raises(ValidationError):
        BindFilter.Config(temperature=0.1)  # cosine mode has no temperature
    with pytest.raises(ValidationError):
        BindFilter.Config(mode="softmax", temperature=0.0)
    with pytest.raises(ValidationError):
        BindFilter.Config(mode="dot")
    # every field changes the output
    assert set(BindFilter.Config().output_params()) == {
        "mode", "cosine_threshold", "softmax_threshold", "minmax_threshold", "temperature", "strict"}
    assert "threshold" not in BindFilter.Config().model_dump()


def test_old_threshold_is_refused_naming_the_modes_parameter() -> None:
    from avseg.errors import ConfigError
    from avseg.registry import load_registry
    from avseg.spec import compose, resolve

    with pytest.raises(ValidationError, match="use softmax_threshold=0.3 for mode 'softmax'"):
        BindFilter.Config(mode="softmax", threshold=0.3)
    reg = load_registry()
    spec = compose("owod-bind", sets=["filter.bind.threshold=0.6"], registry=reg)
    with pytest.raises(ConfigError, match="use cosine_threshold=0.6 for mode 'cosine'") as err:
        resolve(spec, reg)
    assert "\n" not in str(err.value)


def test_minmax_scales_the_frames_cosines() -> None:
    # cosines 1, 0.6, 0, -1 -> (c + 1) / 2 = 1, 0.8, 0.5, 0
    res = _filter(mode="minmax")(_ctx(REGIONS, AUDIO))
    assert res.scores == pytest.approx([1.0, 0.8, 0.5, 0.0])
    assert res.keep == [0, 1, 2]  # default 0.5, tie kept
    res = _filter(mode="minmax", minmax_threshold=0.9)(_ctx(REGIONS, AUDIO))
    assert res.keep == [0]
    assert res.drops[1].reason == "min-max scaled similarity 0.80 < 0.90"
    # the scale is the frame's own: the same regions against a far audio rank the same way
    far = _filter(mode="minmax")(_ctx([[1, 0.1, 0], [1, 0.2, 0]], [0, 1, 0]))
    assert far.scores == pytest.approx([0.0, 1.0])


def test_minmax_equal_scores_and_single_region() -> None:
    res = _filter(mode="minmax", minmax_threshold=1.0)(_ctx([[0, 1]], [1, 0]))
    assert res.keep == [0] and res.scores == [1.0]
    res = _filter(mode="minmax", minmax_threshold=1.0)(_ctx([[1, 1], [2, 2]], [1, 0]))
    assert res.keep == [0, 1]


def test_registered_by_the_filters_plugin() -> None:
    import avseg_filters

    from avseg.registry import load_registry

    reg = load_registry(plugins=[("filters", avseg_filters)], entry_points=False)
    assert reg.get("filter", "bind") is BindFilter
