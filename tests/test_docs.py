"""Docs and tests keep each other honest (datasette style)."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from avseg import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOK_HEADING = re.compile(r"^## (\w+)\(([^)]*)\)\s*$", re.M)


def hookspecs_now() -> dict[str, inspect.Signature]:
    """Every hookspec the plugin manager knows, found in avseg.hookspecs (not a list kept here)."""
    from avseg.registry import make_plugin_manager

    pm = make_plugin_manager()
    specs = {name: caller.spec for name, caller in vars(pm.hook).items() if getattr(caller, "spec", None) is not None}
    assert specs, "no hookspecs found"
    assert all(getattr(hookspecs, n, None) is not None for n in specs)  # they live in avseg.hookspecs
    return {name: inspect.signature(getattr(hookspecs, name)) for name in specs}


def documented_hooks() -> dict[str, list[str]]:
    doc = (ROOT / "docs" / "hooks.md").read_text()
    return {m[1]: [a.strip() for a in m[2].split(",") if a.strip()] for m in HOOK_HEADING.finditer(doc)}


def test_every_hookspec_is_documented_with_its_signature_and_nothing_else_is() -> None:
    specs, docs = hookspecs_now(), documented_hooks()
    assert set(specs) == set(docs), (f"undocumented hooks: {sorted(set(specs) - set(docs))}; "
                                     f"documented hooks that do not exist: {sorted(set(docs) - set(specs))}")
    for name, sig in specs.items():
        wanted = [p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
                  for p in sig.parameters.values()]
        assert docs[name] == wanted, f"docs/hooks.md documents {name}({', '.join(docs[name])}); the hookspec is {name}{sig}"


def test_the_docs_check_sees_a_changed_hookspec(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above reads the hookspecs themselves: a new parameter makes the docs wrong."""
    @hookspecs.hookspec
    def register_filters(register, extra):  # type: ignore[no-untyped-def]
        """A changed hookspec."""

    @hookspecs.hookspec
    def register_widgets(register):  # type: ignore[no-untyped-def]
        """A new hookspec."""

    monkeypatch.setattr(hookspecs, "register_filters", register_filters)
    with pytest.raises(AssertionError, match=r"register_filters\(register\); the hookspec is register_filters\(register, extra\)"):
        test_every_hookspec_is_documented_with_its_signature_and_nothing_else_is()
    monkeypatch.undo()
    monkeypatch.setattr(hookspecs, "register_widgets", register_widgets, raising=False)
    with pytest.raises(AssertionError, match=r"undocumented hooks: \['register_widgets'\]"):
        test_every_hookspec_is_documented_with_its_signature_and_nothing_else_is()


def _run_guide(before_tests: Callable[[dict[str, Any]], None] = lambda ns: None) -> dict[str, Any]:
    doc = (ROOT / "docs" / "plugin-guide.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict[str, Any] = {"__name__": "plugin_guide"}
    exec(compile(blocks[0], "docs/plugin-guide.md", "exec"), namespace)
    before_tests(namespace)
    for block in blocks[1:]:
        exec(compile(block, "docs/plugin-guide.md", "exec"), namespace)
    return namespace


def test_plugin_guide_examples_run() -> None:
    """As the shared environment has it: the example plugin is installed."""
    assert "avseg-example-plugin" in {d.metadata["Name"] for d in importlib.metadata.distributions()}
    ns = _run_guide()
    assert ns["registry"].lookup("filter", "min-area").provider == "MyPlugin"


def test_plugin_guide_examples_run_with_their_plugin_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's own plugin installed (an entry point), the example plugin not: the guide's test
    code still registers min-area once, and needs nothing else installed."""
    from tests.fakes import FakeDist, module

    def install(ns: dict[str, Any]) -> None:
        module("fakeplug_guide", register_components=ns["MyPlugin"]().register_components)
        dists = [FakeDist("my-plugin", "1.0", {"my-plugin": "fakeplug_guide"})]
        monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(dists))
        from avseg.registry import load_registry

        installed = load_registry()
        assert installed.lookup("filter", "min-area").provider == "my-plugin"
        assert "saliency" not in installed.names("proposer")

    try:
        ns = _run_guide(install)
    finally:
        sys.modules.pop("fakeplug_guide", None)
    assert len(ns["registry"].components[("filter", "min-area")]) == 1


def test_readme_links_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    for link in re.findall(r"\]\(((?:docs|examples)/[^)#]+)\)", readme):
        assert (ROOT / link).exists(), f"README links to missing {link}"
