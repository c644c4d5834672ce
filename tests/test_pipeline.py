"""Pipeline composition, validation before any load, execution order, and the stage cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avseg.cache import StageCache
from avseg.errors import ChainError, ConfigError, UsageError
from avseg.pipeline import Pipeline
from avseg.registry import load_registry
from avseg.runtime import Runtime
from avseg.spec import compose, resolve
from avseg.types import Clip
from tests.fakes import FakePlugin, GridBoxes
from tests.helpers import step_of, steps_of


@pytest.fixture
def registry():  # type: ignore[no-untyped-def]
    """Bundled filters (via entry points) plus the fake model components."""
    return load_registry(plugins=[("fake", FakePlugin())])


def red_clip(n: int = 3, size: int = 40, freq: float = 1000.0) -> Clip:
    """Left third of each frame red, the rest blue; a tone of ``freq`` Hz."""
    frames = []
    for _ in range(n):
        f = np.zeros((size, size * 2, 3), np.uint8)
        f[..., 2] = 200
        f[:, : size * 2 // 4] = [220, 0, 0]
        frames.append(f)
    sr = 8000
    t = np.arange(n * sr) / sr
    return Clip.from_arrays("red", frames, np.sin(2 * np.pi * freq * t).astype(np.float32), sr)


def spec(**kw):  # type: ignore[no-untyped-def]
    base = {"tagger": None, "proposer": {"type": "grid-boxes"}, "embedder": None,
            "segmenter": {"type": "box-masks"}, "filters": []}
    base.update(kw)
    return base


# -- validation ---------------------------------------------------------------------------------
def test_filter_needing_embeddings_without_embedder(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ChainError, match="filter 'cos' needs embeddings but the chain has no embedder"):
        resolve(spec(filters=[{"type": "cos"}]), registry)


def test_prompted_proposer_without_tagger_or_vocabulary(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ChainError, match="needs text prompts but the chain has no tagger and no vocabulary"):
        resolve(spec(proposer={"type": "prompted"}), registry)


def test_boxes_without_segmenter(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ChainError, match="gives boxes without masks and the chain has no segmenter"):
        resolve(spec(segmenter=None), registry)


def test_tag_filter_without_tagger(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ChainError, match="filters audio tags but the chain has no tagger"):
        resolve(spec(filters=[{"type": "tag-threshold"}]), registry)


def test_unknown_option_and_bad_value(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"unknown option 'thresold' for filter 'nms'.*did you mean"):
        resolve(spec(filters=[{"type": "nms", "thresold": 0.3}]), registry)
    with pytest.raises(ConfigError, match=r"filter 'nms': invalid iou_threshold='high'"):
        resolve(spec(filters=[{"type": "nms", "iou_threshold": "high"}]), registry)


def test_a_cross_field_error_names_the_component_and_the_values_not_an_empty_field(registry) -> None:  # type: ignore[no-untyped-def]
    """A model validator's error has no field: the message is its own text and the values given,
    never ``invalid ={...}``."""
    with pytest.raises(ConfigError) as e:
        resolve(spec(filters=[{"type": "bind", "mode": "cosine", "temperature": 0.1}]), registry)
    assert str(e.value) == ("filter 'bind': temperature applies to mode 'softmax' only "
                            "(given mode='cosine', temperature=0.1)")
    with pytest.raises(ConfigError, match=r"^audio: invalid window=-1"):
        resolve({**spec(), "audio": {"window": -1}}, registry)


def test_validation_loads_no_model(registry, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    built: list[str] = []
    init = GridBoxes.__init__

    def counting_init(self, *a):  # type: ignore[no-untyped-def]
        built.append("grid-boxes")
        init(self, *a)

    monkeypatch.setattr(GridBoxes, "__init__", counting_init)
    rs = resolve(spec(), registry)
    assert built == []
    Pipeline(rs, Runtime(device="cpu"))  # building is what constructs it
    assert built == ["grid-boxes"]


# -- composition ------------------------------------------------------------------------------------
def test_compose_keeps_preset_params_for_named_components(registry) -> None:  # type: ignore[no-untyped-def]
    s = compose(proposer="owod", filters=["bind"], registry=registry)  # default preset owod-bind
    assert step_of(s, "proposer") == {"type": "owod"}
    assert steps_of(s, "filter") == [{"type": "bind", "mode": "cosine", "cosine_threshold": 0.7}]
    assert step_of(s, "embedder")["type"] == "imagebind" and step_of(s, "segmenter")["type"] == "sam"  # type: ignore[index]


def test_compose_swaps_removes_and_sets(registry) -> None:  # type: ignore[no-untyped-def]
    s = compose("at-gdino-sam", tagger="none", proposer="grid-boxes", filters=["nms", "score-threshold"],
                sets=["proposer.n=2", "filter.nms.iou_threshold=0.3", "filter.1.threshold=0.25"], registry=registry)
    assert step_of(s, "tagger") is None
    assert step_of(s, "proposer") == {"type": "grid-boxes", "n": 2}
    assert steps_of(s, "filter") == [{"type": "nms", "iou_threshold": 0.3}, {"type": "score-threshold", "threshold": 0.25}]


@pytest.mark.parametrize("assignment,message", [
    ("proposer", "expected KEY=VALUE"),
    ("propser.x=1", "unknown stage 'propser'"),
    ("filter.bnd.threshold=1", "no filter 'bnd'"),
    ("embedder.x=1", "the pipeline has no embedder"),
])
def test_bad_set(registry, assignment: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=message):
        compose("sam-bind", embedder="none", sets=[assignment], registry=registry)


def test_unknown_preset(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match="did you mean 'owod-bind'"):
        compose("owod-bnd", registry=registry)


@pytest.mark.parametrize("preset", ["at-gdino-sam", "owod-bind", "owod-bind-softmax", "sam-bind", "bavs"])
def test_presets_resolve(registry, preset: str) -> None:  # type: ignore[no-untyped-def]
    """Every shipped preset resolves against the installed bundled plugins (no model load)."""
    rs = resolve(compose(preset, registry=registry), registry)
    assert rs.proposer is not None


# -- execution ---------------------------------------------------------------------------------------
def test_mask_is_union_of_kept_and_trace_records_drops(registry) -> None:  # type: ignore[no-untyped-def]
    rs = resolve(spec(proposer={"type": "grid-boxes", "n": 3}, filters=[{"type": "score-threshold", "threshold": 0.6}]),
                 registry)
    res = Pipeline(rs, Runtime(device="cpu")).run_clip(red_clip(1))
    fr = res.frames[0]
    # boxes score 0.9, 0.7, 0.5: the third is dropped; masks are the box areas (top half, x in [0, 2w/4))
    assert len(fr.kept) == 2
    expected = np.zeros((40, 80), bool)
    expected[:20, :40] = True
    assert np.array_equal(fr.mask, expected)
    dropped = [r for r in fr.trace if not r["kept"]]
    assert dropped[0]["id"] == 2 and dropped[0]["dropped_by"] == "score-threshold" and "0.500 < 0.600" in dropped[0]["reason"]


def test_tags_prompt_the_proposer(registry) -> None:  # type: ignore[no-untyped-def]
    rs = resolve(spec(tagger={"type": "tone"}, proposer={"type": "prompted"},
                      filters=[{"type": "tag-threshold", "threshold": 0.5, "deny": []}]), registry)
    res = Pipeline(rs, Runtime(device="cpu")).run_clip(red_clip(2, freq=1000.0))
    assert [fr.kept.labels for fr in res.frames] == [["Bark"], ["Bark"]]
    assert res.frames[0].label_map is not None and res.frames[0].labels == ["Bark"]
    res = Pipeline(rs, Runtime(device="cpu")).run_clip(red_clip(2, freq=200.0))
    assert [fr.kept.labels for fr in res.frames] == [["Speech"], ["Speech"]]


def test_embedder_runs_before_the_filter_that_needs_it(registry) -> None:  # type: ignore[no-untyped-def]
    rs = resolve(spec(proposer={"type": "grid-boxes", "n": 4}, embedder={"type": "mean-colour"},
                      filters=[{"type": "cos", "threshold": 0.9}]), registry)
    res = Pipeline(rs, Runtime(device="cpu")).run_clip(red_clip(1))
    # 4 boxes of width 16 over 80 px: only the first (x 0..16) lies inside the red left quarter
    assert res.frames[0].kept.boxes[:, 0].tolist() == [0.0]
    assert res.frames[0].trace[1]["scores"]["cos"] < 0.9


# -- stage cache ---------------------------------------------------------------------------------------
def _run(registry, tmp: Path, threshold: float, n: int = 4) -> Runtime:  # type: ignore[no-untyped-def]
    rt = Runtime(device="cpu", cache=StageCache(tmp))
    rs = resolve(spec(tagger={"type": "tone"}, proposer={"type": "grid-boxes", "n": n},
                      embedder={"type": "mean-colour"}, filters=[{"type": "cos", "threshold": threshold}]), registry)
    Pipeline(rs, rt).run_clip(red_clip(2))
    return rt


def test_changing_a_filter_threshold_recomputes_no_model_stage(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = _run(registry, tmp_path, 0.9)
    assert first.counters["proposer.grid-boxes.computed"] == 1
    assert [first.counters[f"fake.{n}.calls"] for n in ("grid-boxes", "mean-colour", "tone")] == [1, 1, 1]
    # cosine of box 2 (a quarter red) is 0.34: 0.3 keeps one more box than 0.9
    second = _run(registry, tmp_path, 0.3)
    assert not [n for n in ("grid-boxes", "mean-colour", "tone") if second.counters.get(f"fake.{n}.calls")]
    for stage in ("tagger.tone", "proposer.grid-boxes", "embedder.mean-colour.audio", "embedder.mean-colour.regions"):
        assert second.counters[f"{stage}.cache_hit"] == 1 and second.counters[f"{stage}.computed"] == 0
    # the segmenter gets other boxes, so it runs; the same threshold again hits everything
    assert second.counters["segmenter.box-masks.computed"] == 1
    third = _run(registry, tmp_path, 0.3)
    assert not [k for k, v in third.counters.items() if k.endswith(".computed") and v]


def test_changing_the_proposer_invalidates_downstream_not_upstream(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _run(registry, tmp_path, 0.9, n=4)
    rt = _run(registry, tmp_path, 0.9, n=5)
    assert rt.counters["tagger.tone.cache_hit"] == 1
    assert rt.counters["proposer.grid-boxes.computed"] == 1
    assert rt.counters["embedder.mean-colour.regions.computed"] == 1
    assert rt.counters["embedder.mean-colour.audio.cache_hit"] == 1


def test_a_component_bug_is_one_line_naming_it(registry, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from avseg.errors import ComponentFailed

    rs = resolve(spec(proposer={"type": "crash"}, segmenter=None), registry)
    with pytest.raises(ComponentFailed) as e:
        Pipeline(rs, Runtime(device="cpu")).run_clip(red_clip(1))
    msg = str(e.value)
    assert msg.startswith("proposer 'crash' (from fake) failed on clip red: IndexError: list index out of range")
    assert "\n" not in msg
    monkeypatch.setenv("AVSEG_DEBUG", "1")  # plugin authors get the real traceback
    with pytest.raises(IndexError):
        Pipeline(rs, Runtime(device="cpu")).run_clip(red_clip(1))
