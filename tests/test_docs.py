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
HOOKS = [n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, "avseg_spec")]


def test_hooks_found() -> None:
    assert "register_components" in HOOKS and "register_taggers" in HOOKS and "register_combiners" in HOOKS
    assert "register_metrics" in HOOKS and len(HOOKS) == 11


def test_every_hook_is_documented_with_its_signature() -> None:
    doc = (ROOT / "docs" / "hooks.md").read_text()
    for name in HOOKS:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"## {name}({params})" in doc, f"docs/hooks.md lacks '## {name}({params})'"


def test_every_hook_has_a_test() -> None:
    text = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != "test_docs.py")
    text += (ROOT / "tests" / "fakes.py").read_text() + (ROOT / "tests" / "plugin_extras.py").read_text()
    for name in HOOKS:
        assert re.search(rf"\b{name}\b", text), f"no test uses the hook {name}"


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
        module("fakeplug_guide", register_filters=ns["MyPlugin"]().register_filters)
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
