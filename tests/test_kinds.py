"""The kinds table (avseg/kinds.py) and the one registration hook that dispatches on it."""

from __future__ import annotations

from typing import Any

from avseg import hookimpl
from avseg.components import Combiner, Filter, Proposer, Segmenter, Tagger
from avseg.kinds import BASE_CLASSES, HOOK_KINDS, KIND_TABLE, KINDS_BY_NAME, MANY_KINDS, SINGLE_KINDS, kind_of
from avseg.registry import load_registry
from tests.fakes import BoxMasks, CosineFilter, GridBoxes, ToneTagger


def test_register_components_takes_the_kind_from_the_class() -> None:
    class OneHook:
        @hookimpl
        def register_components(self, register: Any) -> None:
            for cls in (ToneTagger, GridBoxes, BoxMasks, CosineFilter):
                register(cls)

    reg = load_registry(plugins=[("one", OneHook())], defaults=False, entry_points=False)
    assert reg.get("tagger", "tone") is ToneTagger and reg.get("proposer", "grid-boxes") is GridBoxes
    assert reg.get("segmenter", "box-masks") is BoxMasks and reg.get("filter", "cos") is CosineFilter
    assert reg.names("tagger") == ["tone"] and reg.names("filter") == ["cos"]  # each under its own kind only
    assert not reg.broken


def test_register_components_refuses_a_class_of_no_kind() -> None:
    class NotAComponent:
        name = "x"

    class Bad:
        @hookimpl
        def register_components(self, register: Any) -> None:
            register(GridBoxes)
            register(NotAComponent)

    reg = load_registry(plugins=[("bad", Bad())], defaults=False, entry_points=False)
    [b] = reg.broken
    assert b.plugin == "bad" and "not a component class" in b.reason
    assert reg.names("proposer") == []  # a broken plugin contributes nothing


def test_the_per_kind_hooks_keep_working_next_to_the_one_hook() -> None:
    class Old:
        @hookimpl
        def register_proposers(self, register: Any) -> None:
            register(GridBoxes)

    reg = load_registry(plugins=[("old", Old())], defaults=False, entry_points=False)
    assert reg.get("proposer", "grid-boxes") is GridBoxes and not reg.broken


def test_the_table_derives_the_core_lists() -> None:
    assert [k.name for k in KIND_TABLE][:5] == ["tagger", "proposer", "embedder", "segmenter", "filter"]
    assert BASE_CLASSES["tagger"] is Tagger and BASE_CLASSES["combiner"] is Combiner
    assert HOOK_KINDS["register_filters"] == "filter" and HOOK_KINDS["register_combiners"] == "combiner"
    assert "filter" in MANY_KINDS and "segmenter" in SINGLE_KINDS and "combiner" not in SINGLE_KINDS + MANY_KINDS
    assert kind_of(CosineFilter) is KINDS_BY_NAME["filter"] and kind_of(GridBoxes) is KINDS_BY_NAME["proposer"]
    assert kind_of(int) is None
    assert KINDS_BY_NAME["segmenter"].option == "--segmenter" and KINDS_BY_NAME["filter"].override == "filters"
    assert issubclass(KINDS_BY_NAME["proposer"].base, Proposer) and KINDS_BY_NAME["filter"].base is Filter
    assert KINDS_BY_NAME["segmenter"].base is Segmenter
