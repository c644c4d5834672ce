"""Where each step runs, and which orders are refused: what ``avseg presets show`` and a run's
``steps:`` record show a user. Fast (fake components, no model), so that ``make mutants`` can
judge the step order rules (``avseg/steps.py``) with it.

A tagger/proposer/embedder/segmenter/filters spec runs in the legacy order: tag filters right
after the tagger in their order; each proposal filter after the one before it; the embedder just
before the first filter needing embeddings (a masked-region embedder after the segmenter), the
segmenter just before the first filter needing masks, or at the end. A ``steps:`` spec runs as
written, and a step whose input no earlier step produces is refused in one line naming it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import Field, create_model

from avseg import hookimpl
from avseg.components import Capabilities, ComponentConfig, Filter, FrameContext
from avseg.errors import ChainError
from avseg.registry import load_registry
from avseg.spec import compose, resolve
from avseg.types import FilterResult
from tests.fakes import FakePlugin, MeanColour


class NeedsConfig(ComponentConfig):
    needs: list[str] = Field(default_factory=list)


def needs_filter(name: str, target: str = "proposals", needs: tuple[str, ...] = ()) -> type[Filter]:
    """A filter that keeps everything and needs what its config says (tags, embeddings, masks,
    labels; by default ``needs``)."""

    def call(self: Filter, ctx: FrameContext) -> FilterResult:
        return FilterResult(keep=list(range(len(ctx.proposals or []))))

    def capabilities(cls: type[Filter], config: ComponentConfig) -> Capabilities:
        return Capabilities(needs=frozenset(config.needs))  # type: ignore[attr-defined]

    config = create_model(f"{name}Config", __base__=NeedsConfig, needs=(list[str], list(needs)))
    return type(name, (Filter,), {"name": name, "description": "keeps all", "Config": config, "target": target,
                                  "needs": frozenset(needs), "__call__": call,
                                  "capabilities": classmethod(capabilities)})


class MaskedConfig(ComponentConfig):
    masked: bool = True


class MaskedRegions(MeanColour):
    """An embedder of masked regions when ``masked``: it needs masks."""

    name: ClassVar[str] = "masked-regions"
    Config = MaskedConfig

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        return Capabilities(needs=frozenset({"masks"}) if config.masked else frozenset())  # type: ignore[attr-defined]


FILTERS = {n: needs_filter(n) for n in ("p1", "p2", "p3")}
FILTERS["t1"] = needs_filter("t1", target="tags")
FILTERS["p-masks"] = needs_filter("p-masks", needs=("masks",))
FILTERS["p-emb"] = needs_filter("p-emb", needs=("embeddings",))
#: steps presets, on which --filter/--embedder/--segmenter place what they add
PRESETS = {"with-tagger": [{"tagger": "tone"}, {"proposer": "prompted"}, {"segmenter": "box-masks"}],
           "no-tagger": [{"proposer": "grid-boxes"}, {"segmenter": "box-masks"}],
           "bare": [{"proposer": "grid-boxes"}, {"filter": "p1"}]}


class Plugin:
    @hookimpl
    def register_filters(self, register: Any) -> None:
        for cls in FILTERS.values():
            register(cls)

    @hookimpl
    def register_embedders(self, register: Any) -> None:
        register(MaskedRegions)

    @hookimpl
    def register_presets(self, register: Any) -> None:
        for name, steps in PRESETS.items():
            register(name, {"description": "steps", "steps": steps})


@pytest.fixture(scope="module")
def reg() -> Any:
    return load_registry(plugins=[("fake", FakePlugin()), ("order", Plugin())])


def f(name: str, *needs: str) -> dict[str, Any]:
    return {"type": name, "needs": list(needs)} if name in FILTERS else {"type": name}


def legacy(reg: Any, filters: list[dict[str, Any]], **parts: Any) -> list[str]:
    spec = {"proposer": "grid-boxes", "segmenter": "box-masks", **parts, "filters": filters}
    return list(resolve(spec, reg).step_names())


# -- the legacy order ------------------------------------------------------------------------------
def test_tag_filters_run_right_after_the_tagger_in_their_order(reg: Any) -> None:
    got = legacy(reg, [f("p1"), f("tag-threshold"), f("p2"), f("t1")], tagger="tone")
    assert got == ["tagger:tone", "filter:tag-threshold", "filter:t1", "proposer:grid-boxes", "filter:p1",
                   "filter:p2", "segmenter:box-masks"]


def test_proposal_filters_keep_their_order_around_a_tag_filter(reg: Any) -> None:
    """A tag filter listed between two proposal filters must not let the second jump the first."""
    got = legacy(reg, [f("p1"), f("p2"), f("tag-threshold"), f("p3")], tagger="tone")
    assert got == ["tagger:tone", "filter:tag-threshold", "proposer:grid-boxes", "filter:p1", "filter:p2",
                   "filter:p3", "segmenter:box-masks"]


def test_the_embedder_runs_just_before_the_first_filter_needing_embeddings(reg: Any) -> None:
    got = legacy(reg, [f("p1"), f("p2", "embeddings"), f("p3", "embeddings")], embedder="mean-colour",
                 segmenter="box-masks")
    assert got == ["proposer:grid-boxes", "filter:p1", "embedder:mean-colour", "filter:p2", "filter:p3",
                   "segmenter:box-masks"]


def test_an_embedder_no_filter_needs_does_not_run(reg: Any) -> None:
    assert legacy(reg, [f("p1")], embedder="mean-colour", segmenter="box-masks") == [
        "proposer:grid-boxes", "filter:p1", "segmenter:box-masks"]


def test_the_segmenter_runs_just_before_the_first_filter_needing_masks(reg: Any) -> None:
    got = legacy(reg, [f("p1"), f("p2", "masks"), f("p3")], segmenter="box-masks")
    assert got == ["proposer:grid-boxes", "filter:p1", "segmenter:box-masks", "filter:p2", "filter:p3"]
    # needing nothing it gives, the segmenter runs last
    assert legacy(reg, [f("p1"), f("p2")], segmenter="box-masks")[-1] == "segmenter:box-masks"


def test_a_masked_region_embedder_gets_the_segmenter_first(reg: Any) -> None:
    got = legacy(reg, [f("p1"), f("p2", "embeddings")], embedder="masked-regions", segmenter="box-masks")
    assert got == ["proposer:grid-boxes", "filter:p1", "segmenter:box-masks", "embedder:masked-regions",
                   "filter:p2"]
    # an unmasked one does not pull the segmenter forward
    got = legacy(reg, [f("p1"), f("p2", "embeddings")], embedder={"type": "masked-regions", "masked": False},
                 segmenter="box-masks")
    assert got == ["proposer:grid-boxes", "filter:p1", "embedder:masked-regions", "filter:p2", "segmenter:box-masks"]


def test_embeddings_then_masks_pull_each_in_once(reg: Any) -> None:
    got = legacy(reg, [f("p1", "embeddings"), f("p2", "masks"), f("p3", "embeddings", "masks")],
                 embedder="mean-colour", segmenter="box-masks")
    assert got == ["proposer:grid-boxes", "embedder:mean-colour", "filter:p1", "segmenter:box-masks", "filter:p2",
                   "filter:p3"]


SEG = {"segmenter": "box-masks"}


def test_a_proposal_filter_needing_tags_runs_after_the_proposer(reg: Any) -> None:
    assert legacy(reg, [f("p1", "tags"), f("t1")], tagger="tone") == [
        "tagger:tone", "filter:t1", "proposer:grid-boxes", "filter:p1", "segmenter:box-masks"]


# -- --filter / --embedder / --segmenter on a steps preset -------------------------------------------
def composed(reg: Any, preset: str, **options: Any) -> list[str]:
    return list(resolve(compose(preset, registry=reg, **options), reg).step_names())


def test_filters_go_right_after_what_they_need_on_a_steps_preset(reg: Any) -> None:
    assert composed(reg, "with-tagger", filters=["p1", "p2"]) == [
        "tagger:tone", "proposer:prompted", "filter:p1", "filter:p2", "segmenter:box-masks"]
    assert composed(reg, "no-tagger", filters=["p1"]) == ["proposer:grid-boxes", "filter:p1", "segmenter:box-masks"]
    assert composed(reg, "with-tagger", filters=["p-masks", "p1"]) == [
        "tagger:tone", "proposer:prompted", "segmenter:box-masks", "filter:p-masks", "filter:p1"]


def test_a_tag_filter_between_proposal_filters_on_a_steps_preset(reg: Any) -> None:
    assert composed(reg, "with-tagger", filters=["p1", "t1", "p2"]) == [
        "tagger:tone", "filter:t1", "proposer:prompted", "filter:p1", "filter:p2", "segmenter:box-masks"]


def test_an_added_embedder_goes_before_the_filter_needing_it(reg: Any) -> None:
    assert composed(reg, "with-tagger", embedder="mean-colour", filters=["p-emb", "p2"]) == [
        "tagger:tone", "proposer:prompted", "embedder:mean-colour", "filter:p-emb", "filter:p2",
        "segmenter:box-masks"]


def test_a_named_embedder_no_filter_needs_still_runs_last(reg: Any) -> None:
    assert composed(reg, "with-tagger", embedder="mean-colour", filters=["p1"]) == [
        "tagger:tone", "proposer:prompted", "filter:p1", "segmenter:box-masks", "embedder:mean-colour"]
    # a masked-region embedder gets an added segmenter first; another one runs before it
    assert composed(reg, "bare", embedder="masked-regions", segmenter="box-masks") == [
        "proposer:grid-boxes", "filter:p1", "segmenter:box-masks", "embedder:masked-regions"]
    assert composed(reg, "bare", embedder="mean-colour", segmenter="box-masks", filters=["p1"]) == [
        "proposer:grid-boxes", "filter:p1", "embedder:mean-colour", "segmenter:box-masks"]


def test_an_unknown_filter_does_not_hide_the_next_ones(reg: Any) -> None:
    spec = compose("with-tagger", registry=reg, filters=["no-such-filter", "p1", "p2"])
    # placed last (its needs are unknown), and resolve() then names it
    assert [next(iter(s.values()))["type"] for s in spec["steps"] if "filter" in s] == ["p1", "p2", "no-such-filter"]


# -- a steps: spec is checked as written -----------------------------------------------------------
def test_a_steps_spec_runs_as_written(reg: Any) -> None:
    steps = [{"tagger": "tone"}, {"proposer": "prompted"}, {"filter": f("p1")}, {"segmenter": "box-masks"},
             {"filter": f("p2", "masks")}, {"embedder": "masked-regions"}, {"filter": f("p3", "embeddings")}]
    assert list(resolve({"steps": steps}, reg).step_names()) == [
        "tagger:tone", "proposer:prompted", "filter:p1", "segmenter:box-masks", "filter:p2",
        "embedder:masked-regions", "filter:p3"]


@pytest.mark.parametrize(("steps", "message"), [
    # the first missing input by name: audio embeddings before region embeddings
    ([{"proposer": "grid-boxes"}, {"filter": f("p1", "embeddings")}, {"embedder": "mean-colour"}, SEG],
     r"^step 2 \(filter 'p1'\) needs audio embeddings but no earlier step produces them; put an embedder before it$"),
    ([{"proposer": "grid-boxes"}, {"filter": f("p1")}, {"filter": f("p2", "masks")}, SEG],
     r"^step 3 \(filter 'p2'\) needs masks but no earlier step produces them; put a segmenter before it$"),
    ([{"proposer": "grid-boxes"}, {"embedder": "masked-regions"}, {"segmenter": "box-masks"}],
     r"^step 2 \(embedder 'masked-regions'\) needs masks .*; put a segmenter before it$"),
    ([{"proposer": "prompted"}, {"tagger": "tone"}, SEG],
     r"^step 1 \(proposer 'prompted'\) needs tags but no earlier step produces them; put a tagger before it$"),
    ([{"filter": f("t1")}, {"tagger": "tone"}, {"proposer": "grid-boxes"}, SEG],
     r"^step 1 \(filter 't1'\) needs tags .*; put a tagger before it$"),
])
def test_a_step_whose_input_comes_later_is_refused_naming_it(reg: Any, steps: list[dict[str, Any]],
                                                             message: str) -> None:
    with pytest.raises(ChainError, match=message):
        resolve({"steps": steps}, reg)


def test_inputs_produced_earlier_are_accepted(reg: Any) -> None:
    """What each step produces is seen by every later step, not only the next one."""
    steps = [{"tagger": "tone"}, {"filter": f("t1")}, {"proposer": "prompted"}, {"segmenter": "box-masks"},
             {"filter": f("p1")}, {"embedder": "mean-colour"}, {"filter": f("p2", "masks", "tags", "embeddings")}]
    assert len(resolve({"steps": steps}, reg).step_names()) == 7
