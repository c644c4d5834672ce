"""Docs and tests keep each other honest (datasette style)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from avseg import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = [n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, "avseg_spec")]


def test_hooks_found() -> None:
    assert "register_taggers" in HOOKS and "register_metrics" in HOOKS and len(HOOKS) == 9


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


def test_plugin_guide_examples_run() -> None:
    doc = (ROOT / "docs" / "plugin-guide.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "plugin_guide"}
    for block in blocks:
        exec(compile(block, "docs/plugin-guide.md", "exec"), namespace)


def test_readme_links_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    for link in re.findall(r"\]\(((?:docs|examples)/[^)#]+)\)", readme):
        assert (ROOT / link).exists(), f"README links to missing {link}"
