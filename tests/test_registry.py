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
from tests.helpers import steps_of


@pytest.fixture
def fake_dists(monkeypatch: pytest.MonkeyPatch) -> list[FakeDist]:
    """Replace the installed distributions with in-memory ones (nothing is installed)."""
    dists: list[FakeDist] = []
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(dists))
    yield dists
    for name in [m for m in sys.modules if m.startswith("fakeplug_")]:
        del sys.modules[name]


def test_register_through_plugin_object() -> None:
    reg = load_registry(plugins=[("fake", FakePlugin())], defaults=False, entry_points=False)
    assert reg.get("proposer", "grid-boxes") is GridBoxes
    assert reg.names("segmenter") == ["box-masks"]
    assert reg.lookup("proposer", "grid-boxes").provider == "fake"


def test_provider_lives_on_the_registration_not_the_class() -> None:
    a = load_registry(plugins=[("first", FakePlugin())], defaults=False, entry_points=False)
    b = load_registry(plugins=[("second", FakePlugin())], defaults=False, entry_points=False)
    assert a.lookup("proposer", "grid-boxes").provider == "first"
    assert b.lookup("proposer", "grid-boxes").provider == "second"
    assert "provider" not in vars(GridBoxes) and not hasattr(GridBoxes, "version")


def test_given_plugin_already_registered_is_not_registered_twice() -> None:
    import avseg_filters

    reg = load_registry(plugins=[("filters", avseg_filters)])
    regs = reg.components[("filter", "nms")]
    assert len(regs) == 1 and regs[0].provider == "avseg"


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
    assert reg.get("proposer", "PKG_B:grid-boxes") is Other  # distribution names are normalised
    with pytest.raises(UnknownComponent) as e:
        reg.get("proposer", "nosuch:grid-boxes")
    msg = str(e.value)
    assert "no distribution 'nosuch' provides proposer 'grid-boxes'" in msg and "pkg-a, pkg-b" in msg
    assert "did you mean" not in msg and "'pkg-a:grid-boxes'" in msg


def test_unknown_name_with_unknown_distribution() -> None:
    reg = load_registry()
    with pytest.raises(UnknownComponent, match=r"unknown segmenter 'sma' \(no distribution 'nosuch' provides one\)"
                       r" \(did you mean 'sam', 'sam2'\?\)"):
        reg.get("segmenter", "nosuch:sma")


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
    from avseg.data import open_dataset
    from avseg.errors import UsageError

    with pytest.raises(UsageError, match=r"unknown dataset subset 'theirs'.*; broken plugins: bad"):
        open_dataset(".", "theirs", registry=reg)  # perhaps the broken plugin's dataset


def test_hook_that_raises_is_broken_not_fatal(fake_dists: list[FakeDist]) -> None:
    def boom(register: Any) -> None:
        raise RuntimeError("model zoo offline")

    module("fakeplug_boom", register_filters=hookimpl(boom))
    fake_dists.append(FakeDist("boom", "1", {"boom": "fakeplug_boom"}))
    reg = load_registry()
    assert [b.reason for b in reg.broken] == ["register_filters failed: RuntimeError: model zoo offline"]


@pytest.mark.parametrize("exc", ["SystemExit(3)", "BaseException('bye')"])
def test_plugin_that_exits_at_import_is_broken_by_name(fake_dists: list[FakeDist], tmp_path: Any,
                                                        monkeypatch: pytest.MonkeyPatch, exc: str) -> None:
    (tmp_path / "fakeplug_exit.py").write_text(f"raise {exc}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_dists.append(FakeDist("exiting-plugin", "1", {"exiter": "fakeplug_exit"}))
    reg = load_registry()
    [b] = reg.broken
    assert b.plugin == "exiter" and b.provider == "exiting-plugin"
    assert b.reason.startswith("Error importing plugin 'exiter'") and "\n" not in b.reason
    assert "nms" in reg.names("filter")  # everything else still works


def test_unknown_needs_value_is_refused(fake_dists: list[FakeDist]) -> None:
    from avseg.components import Filter

    class Typo(Filter):
        name: ClassVar[str] = "typo-filter"
        needs: ClassVar[frozenset[str]] = frozenset({"embedding"})

        def __call__(self, ctx: Any) -> Any:
            raise AssertionError

    def reg_f(register: Any) -> None:
        register(Typo)

    module("fakeplug_needs", register_filters=hookimpl(reg_f),
           register_proposers=hookimpl(lambda register: register(GridBoxes)))
    fake_dists.append(FakeDist("needy", "1", {"needy": "fakeplug_needs"}))
    reg = load_registry()
    [b] = reg.broken
    assert b.reason == ("filter 'typo-filter' declares unknown needs 'embedding' (did you mean 'embeddings'?); "
                        "allowed: embeddings, labels, masks, tags")
    assert "typo-filter" not in reg.names("filter") and "grid-boxes" not in reg.names("proposer")


def test_misspelled_hook_is_caught(fake_dists: list[FakeDist]) -> None:
    module("fakeplug_typo", register_proposer=hookimpl(lambda register: None))
    fake_dists.append(FakeDist("typo", "1", {"typo": "fakeplug_typo"}))
    reg = load_registry()
    [b] = reg.broken
    assert "unknown hook 'register_proposer'" in b.reason and "register_proposers" in b.reason


def test_entry_point_without_hooks_or_naming_a_class_is_broken(fake_dists: list[FakeDist]) -> None:
    class MyPlugin:  # the plugin guide's shape: hooks as methods
        @hookimpl
        def register_proposers(self, register: Any) -> None:
            register(GridBoxes)

    module("fakeplug_cls", MyPlugin=MyPlugin, plugin=MyPlugin())
    fake_dists += [FakeDist("nohooks", "1", {"nohooks": "fakeplug_cls"}),  # the module: its hooks are methods
                   FakeDist("klass", "1", {"klass": "fakeplug_cls:MyPlugin"}),
                   FakeDist("good", "1", {"good": "fakeplug_cls:plugin"})]
    reg = load_registry()
    reasons = {b.provider: b.reason for b in reg.broken}
    assert set(reasons) == {"nohooks", "klass"}
    assert "has no @hookimpl functions" in reasons["nohooks"] and "docs/plugin-guide.md" in reasons["nohooks"]
    assert "names the class MyPlugin; point it at an instance (plugin = MyPlugin())" in reasons["klass"]
    assert reg.lookup("proposer", "grid-boxes").provider == "good"


def test_registering_a_non_component_is_broken() -> None:
    class P:
        @hookimpl
        def register_taggers(self, register: Any) -> None:
            register(object)

    reg = load_registry(plugins=[("p", P())], entry_points=False)
    assert "is not a Tagger subclass" in reg.broken[0].reason


def test_disable_autoload_and_load_plugins(fake_dists: list[FakeDist], monkeypatch: pytest.MonkeyPatch) -> None:
    """The switches select third-party plugins only: the bundled ones are always there."""
    module("fakeplug_x", register_proposers=hookimpl(lambda register: register(GridBoxes)))
    fake_dists.append(FakeDist("xdist", "1", {"x": "fakeplug_x"}))
    monkeypatch.setenv("AVSEG_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = load_registry()
    assert "grid-boxes" not in reg.names("proposer") and "bind" in reg.names("filter") and "owod-bind" in reg.presets
    monkeypatch.setenv("AVSEG_LOAD_PLUGINS", "x")
    reg = load_registry()
    assert "grid-boxes" in reg.names("proposer") and {"bind", "nms"} <= set(reg.names("filter"))
    monkeypatch.delenv("AVSEG_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("AVSEG_LOAD_PLUGINS", "")
    assert "grid-boxes" not in load_registry().names("proposer")
    monkeypatch.setenv("AVSEG_LOAD_PLUGINS", "xdist")
    reg = load_registry()
    assert "grid-boxes" in reg.names("proposer") and "bind" in reg.names("filter") and not reg.broken
    monkeypatch.setenv("AVSEG_LOAD_PLUGINS", "xdits")
    [b] = load_registry().broken
    assert b.reason == "AVSEG_LOAD_PLUGINS names 'xdits', which no installed plugin is called (did you mean 'xdist'?)"


def test_bundled_plugins_are_registered_in_code(fake_dists: list[FakeDist]) -> None:
    """No entry points at all (fake_dists is empty): the bundled components and presets are there."""
    reg = load_registry()
    regs = {r.name: r for r in reg.registrations("filter")}
    assert {"tag-threshold", "score-threshold", "nms", "bind"} <= set(regs)
    assert regs["nms"].provider == "avseg" and regs["nms"].plugin == "filters"
    assert set(reg.presets) >= {"owod-bind", "sam-bind"} and not reg.broken
    from pathlib import Path

    assert "[project.entry-points.avseg]" not in (Path(__file__).parent.parent / "pyproject.toml").read_text()


def test_hooks_are_called_through_pluggy_once_per_plugin(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def register_components(self, register: Any) -> Any:  # bundled plugins use the one hook
            seen.append(register.plugin)
            return (yield)

    monkeypatch.setenv("AVSEG_TRACE_PLUGINS", "1")
    reg = load_registry(plugins=[("wrap", Wrapper())])
    assert "filters" in seen and "nms" in reg.names("filter")
    err = capsys.readouterr().err
    assert "register_components [hook]" in err and "<register for plugin 'filters' (avseg " in err


def test_register_presets_adds_a_usable_preset() -> None:
    from avseg.spec import compose, load_preset

    class P:
        @hookimpl
        def register_presets(self, register: Any) -> None:
            register("my-saliency", {"description": "mine", "proposer": {"type": "saliency"},
                                     "filters": [{"type": "score-threshold", "threshold": 0.4}]})

    reg = load_registry(plugins=[("p", P())])
    assert load_preset("my-saliency", reg)["description"] == "mine"
    # a plugin preset in the legacy form is converted into steps when it is loaded
    assert compose("my-saliency", registry=reg)["steps"] == [{"proposer": {"type": "saliency"}},
                                                             {"filter": {"type": "score-threshold", "threshold": 0.4}}]

    class Dup:
        @hookimpl
        def register_presets(self, register: Any) -> None:
            register("owod-bind", {"proposer": "owod"})

    reg = load_registry(plugins=[("dup", Dup())])
    assert load_preset("sam-bind", reg)["steps"][0]["proposer"]["type"] == "sam-grid"  # other presets are unaffected
    # no preset named: the implicit default is the bundled owod-bind (dup's has no filters)
    assert [f["type"] for f in steps_of(compose(proposer="owod", registry=reg), "filter")] == ["score-threshold", "bind"]
    with pytest.raises(AmbiguousComponent, match=r"preset 'owod-bind' is registered by both avseg .* and dup .*"
                                                 r"'avseg:owod-bind', 'dup:owod-bind'"):
        load_preset("owod-bind", reg)
    assert load_preset("dup:owod-bind", reg) == {"proposer": "owod"}
    assert steps_of(load_preset("avseg:owod-bind", reg), "filter")
    from avseg.commands import list_plugins, list_presets

    assert {"avseg:owod-bind", "dup:owod-bind", "sam-bind"} <= set(list_presets(reg))
    rows = {(r["name"], r["provider"]): r for r in list_plugins("preset", reg)}
    assert rows[("owod-bind", "dup")]["collides_with"] == ["avseg"] and rows[("sam-bind", "avseg")]["collides_with"] == []


# ---- mistakes caught at registration, without building anything (avseg.plugin_checks) ----

def _broken_mistakes() -> dict[str, Any]:
    from pydantic import BaseModel, Field

    from avseg.components import ComponentConfig, Proposer, Tagger

    class NoVocabulary(Tagger):
        name: ClassVar[str] = "no-vocab"

        def tag(self, windows: Any) -> Any:
            return []

    class PlainConfig(BaseModel):
        threshold: float = 0.5

    class PlainConfigProposer(GridBoxes):
        name: ClassVar[str] = "plain-config"
        Config: ClassVar[Any] = PlainConfig

    class WrongDefaultConfig(ComponentConfig):
        count: int = Field("two")  # type: ignore[assignment]
        fine: int = 3

    class WrongDefault(Proposer):
        name: ClassVar[str] = "wrong-default"
        Config: ClassVar[Any] = WrongDefaultConfig

        def propose(self, frames: Any, prompts: Any = None) -> Any:
            return []

    return {"tagger": NoVocabulary, "plain": PlainConfigProposer, "default": WrongDefault}


BROKEN_REASONS = {
    "tagger": "tagger 'no-vocab' (tests.test_registry._broken_mistakes.<locals>.NoVocabulary): does not implement "
              "vocabulary (abstract in Tagger)",
    "plain": "proposer 'plain-config' (tests.test_registry._broken_mistakes.<locals>.PlainConfigProposer): its "
             "Config is a plain pydantic BaseModel; subclass avseg.components.ComponentConfig",
    "default": "proposer 'wrong-default' (tests.test_registry._broken_mistakes.<locals>.WrongDefault): its Config "
               "has an invalid default: count: Input should be a valid integer, unable to parse string as an "
               "integer (default 'two')",
}


@pytest.mark.parametrize("which", sorted(BROKEN_REASONS))
def test_mistakes_are_broken_plugins_at_registration(fake_dists: list[FakeDist], which: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A tagger without vocabulary, a Config that is a plain BaseModel, and a config default its own
    field refuses: each is a broken-plugin row with a one-line reason; the other plugins work."""
    cls = _broken_mistakes()[which]
    hook = "register_taggers" if which == "tagger" else "register_proposers"
    module(f"fakeplug_{which}", **{hook: hookimpl(lambda register: register(cls))})
    module("fakeplug_fine", register_proposers=hookimpl(lambda register: register(GridBoxes)))
    fake_dists += [FakeDist(f"mistake-{which}", "1", {which: f"fakeplug_{which}"}),
                   FakeDist("fine", "1", {"fine": "fakeplug_fine"})]
    reg = load_registry()
    [b] = reg.broken
    assert (b.plugin, b.provider, b.reason) == (which, f"mistake-{which}", BROKEN_REASONS[which])
    assert cls.name not in reg.names(cls.kind) and reg.get("proposer", "grid-boxes") is GridBoxes
    from tests.helpers import cli

    code, out, _ = cli(capsys, "plugins")
    assert code == 0
    assert f"? {which} (mistake-{which}) broken {BROKEN_REASONS[which]}" in " ".join(out.split())


def test_a_correct_config_with_a_required_field_and_validators_is_accepted() -> None:
    """validate_default checks defaults only: a required field (no default) and a cross-field
    validator that holds for the defaults are fine; a validator that fails on the defaults is not."""
    from pydantic import model_validator

    from avseg.components import ComponentConfig
    from avseg.plugin_checks import component_problem

    class Cfg(ComponentConfig):
        low: float = 0.1
        high: float = 0.9
        label: str

        @model_validator(mode="after")
        def ordered(self) -> Cfg:
            if self.low > self.high:
                raise ValueError("low must not exceed high")
            return self

    class Ok(GridBoxes):
        name: ClassVar[str] = "ok-config"
        Config: ClassVar[Any] = Cfg

    assert component_problem("proposer", Ok) is None

    class BadCfg(Cfg):
        low: float = 0.95
        label: str = "x"

    class Bad(GridBoxes):
        name: ClassVar[str] = "bad-config"
        Config: ClassVar[Any] = BadCfg

    assert "low must not exceed high" in (component_problem("proposer", Bad) or "")
    assert component_problem("proposer", GridBoxes) is None


def _hint_rows() -> list[dict[str, Any]]:
    from avseg.components import Proposer

    class NeedsRay(Proposer):
        name: ClassVar[str] = "needs-ray"
        description: ClassVar[str] = "a proposer whose dependency is missing " * 4
        requires: ClassVar[tuple[str, ...]] = ("a_module_that_is_not_installed",)
        extra: ClassVar[str | None] = "ray"

        def propose(self, frames: Any, prompts: Any = None) -> Any:
            return []

    from avseg import api

    reg = load_registry(plugins=[("theirs", module("fakeplug_ray", register_proposers=hookimpl(
        lambda register: register(NeedsRay))))], defaults=True, entry_points=False)
    return api.list_plugins(registry=reg)


def test_plugins_listing_at_80_columns_keeps_install_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a pipe: one short block per row, no line over 80 columns, hints keep '[extra]'."""
    import io

    from avseg.plugin_listing import print_plugins

    rows = _hint_rows()
    monkeypatch.setenv("COLUMNS", "80")
    buf = io.StringIO()
    print_plugins(rows, buf)
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert len(text.splitlines()) <= 4 * len(rows)  # not hundreds of 8-character cells
    assert "pip install 'theirs[ray]'" in " ".join(text.split())
    assert "proposer needs-ray  (theirs" in text

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "250")
    wide = Tty()
    print_plugins(rows, wide)
    assert "│" in wide.getvalue() and "theirs[ray]" in " ".join(wide.getvalue().split())


def test_help_keeps_the_extra_in_install_hints(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import cli

    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = cli(capsys, "eval", "--help")
    assert code == 0 and "pip install 'avseg[ray]'" in out


def test_a_refiner_that_implements_neither_refine_nor_refine_clip_is_refused() -> None:
    from avseg.components import Refiner
    from avseg.plugin_checks import component_problem

    class Idle(Refiner):
        name: ClassVar[str] = "idle"

    class Frame(Refiner):
        name: ClassVar[str] = "frame-refiner"

        def refine(self, frame: Any, kept: Any) -> Any:
            return kept

    assert (component_problem("refiner", Idle) or "").endswith("implements neither refine nor refine_clip")
    assert component_problem("refiner", Frame) is None
