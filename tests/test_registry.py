"""The plugin registry: registration, collisions, unknown names, broken plugins, env switches."""

from __future__ import annotations

import importlib.metadata
import sys
from typing import Any, ClassVar

import pytest

from avseg import hookimpl
from avseg.errors import AmbiguousComponent, UnknownComponent
from avseg.registry import load_registry
from tests.fakes import FakeDist, FakePlugin, GridBoxes, module


@pytest.fixture
def fake_dists(monkeypatch: pytest.MonkeyPatch) -> list[FakeDist]:
    """Replace the installed distributions with in-memory ones (nothing is installed)."""
    dists: list[FakeDist] = []
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(dists))
    yield dists
    for name in [m for m in sys.modules if m.startswith("fakeplug_")]:
        del sys.modules[name]


def test_register_through_plugin_object() -> None:
    reg = load_registry(plugins=[("fake", FakePlugin())], entry_points=False)
    assert reg.get("proposer", "grid-boxes") is GridBoxes
    assert reg.names("segmenter") == ["box-masks"]
    assert GridBoxes.provider == "fake"


def test_unknown_name_lists_close_matches() -> None:
    reg = load_registry(plugins=[("fake", FakePlugin())], entry_points=False)
    with pytest.raises(UnknownComponent, match=r"unknown proposer 'grid-box'.*did you mean 'grid-boxes'"):
        reg.get("proposer", "grid-box")


def test_collision_names_both_providers_and_qualified_name_picks_one(fake_dists: list[FakeDist]) -> None:
    class Other(GridBoxes):
        name: ClassVar[str] = "grid-boxes"

    def reg_a(register: Any) -> None:
        register(GridBoxes)

    def reg_b(register: Any) -> None:
        register(Other)

    module("fakeplug_a", register_proposers=hookimpl(reg_a))
    module("fakeplug_b", register_proposers=hookimpl(reg_b))
    fake_dists += [FakeDist("pkg-a", "1.0", {"a": "fakeplug_a"}), FakeDist("pkg-b", "2.0", {"b": "fakeplug_b"})]
    reg = load_registry()
    with pytest.raises(AmbiguousComponent) as e:
        reg.get("proposer", "grid-boxes")
    msg = str(e.value)
    assert "pkg-a 1.0" in msg and "pkg-b 2.0" in msg and "'pkg-b:grid-boxes'" in msg
    assert "\n" not in msg
    assert reg.get("proposer", "pkg-b:grid-boxes") is Other
    assert reg.get("proposer", "pkg-a:grid-boxes") is GridBoxes


def test_broken_plugin_is_reported_and_others_work(fake_dists: list[FakeDist]) -> None:
    module("fakeplug_ok", register_proposers=hookimpl(lambda register: register(GridBoxes)))
    fake_dists += [
        FakeDist("good", "1.0", {"ok": "fakeplug_ok"}),
        FakeDist("bad", "0.1", {"bad": "fakeplug_does_not_exist"}),
    ]
    reg = load_registry()
    assert reg.get("proposer", "grid-boxes") is GridBoxes
    [b] = reg.broken
    assert b.provider == "bad" and "Error importing plugin 'bad'" in b.reason and "ModuleNotFoundError" in b.reason
    with pytest.raises(UnknownComponent, match="broken plugins: bad"):
        reg.get("proposer", "nope")


def test_hook_that_raises_is_broken_not_fatal(fake_dists: list[FakeDist]) -> None:
    def boom(register: Any) -> None:
        raise RuntimeError("model zoo offline")

    module("fakeplug_boom", register_filters=hookimpl(boom))
    fake_dists.append(FakeDist("boom", "1", {"boom": "fakeplug_boom"}))
    reg = load_registry()
    assert [b.reason for b in reg.broken] == ["register_filters failed: RuntimeError: model zoo offline"]


def test_misspelled_hook_is_caught(fake_dists: list[FakeDist]) -> None:
    module("fakeplug_typo", register_proposer=hookimpl(lambda register: None))
    fake_dists.append(FakeDist("typo", "1", {"typo": "fakeplug_typo"}))
    reg = load_registry()
    [b] = reg.broken
    assert "unknown hook 'register_proposer'" in b.reason and "register_proposers" in b.reason


def test_registering_a_non_component_is_broken() -> None:
    class P:
        @hookimpl
        def register_taggers(self, register: Any) -> None:
            register(object)

    reg = load_registry(plugins=[("p", P())], entry_points=False)
    assert "is not a Tagger subclass" in reg.broken[0].reason


def test_disable_autoload_and_load_plugins(fake_dists: list[FakeDist], monkeypatch: pytest.MonkeyPatch) -> None:
    module("fakeplug_x", register_proposers=hookimpl(lambda register: register(GridBoxes)))
    fake_dists.append(FakeDist("xdist", "1", {"x": "fakeplug_x"}))
    monkeypatch.setenv("AVSEG_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert load_registry().names("proposer") == []
    monkeypatch.setenv("AVSEG_LOAD_PLUGINS", "x")
    assert load_registry().names("proposer") == ["grid-boxes"]
    monkeypatch.delenv("AVSEG_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("AVSEG_LOAD_PLUGINS", "")
    assert load_registry().names("proposer") == []
    monkeypatch.setenv("AVSEG_LOAD_PLUGINS", "xdist")
    assert load_registry().names("proposer") == ["grid-boxes"]


def test_bundled_plugins_come_through_entry_points() -> None:
    """The real environment: bundled filters are found via the 'avseg' group, not imported by name."""
    reg = load_registry()
    regs = {r.name: r for r in reg.registrations("filter")}
    assert {"tag-threshold", "score-threshold", "nms"} <= set(regs)
    assert regs["nms"].provider == "avseg" and regs["nms"].plugin == "filters"


def test_register_presets_adds_a_usable_preset() -> None:
    from avseg.spec import compose, load_preset

    class P:
        @hookimpl
        def register_presets(self, register: Any) -> None:
            register("my-saliency", {"description": "mine", "proposer": {"type": "saliency"},
                                     "filters": [{"type": "score-threshold", "threshold": 0.4}]})

    reg = load_registry(plugins=[("p", P())])
    assert load_preset("my-saliency", reg)["description"] == "mine"
    assert compose("my-saliency", registry=reg)["filters"] == [{"type": "score-threshold", "threshold": 0.4}]

    class Dup:
        @hookimpl
        def register_presets(self, register: Any) -> None:
            register("owod-bind", {"proposer": "owod"})

    with pytest.raises(Exception, match="preset 'owod-bind' is defined more than once"):
        load_preset("owod-bind", load_registry(plugins=[("dup", Dup())]))
