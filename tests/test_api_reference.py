"""The API reference (docs/reference/*.md, built by mkdocstrings) documents every public name of
the modules plugin authors use: each class of those modules is on a reference page, and each of
its public fields, properties and methods, and each hook, has a docstring in the code."""

from __future__ import annotations

import re
from pathlib import Path

import griffe
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: the modules whose every public class must be in the reference
MODULES = ("avseg.types", "avseg.components", "avseg.pipeline_schema")


def referenced() -> set[str]:
    names = set()
    for page in (ROOT / "docs" / "reference").glob("*.md"):
        names.update(re.findall(r"^::: ([\w.]+)", page.read_text(), flags=re.M))
    return names


def package() -> griffe.Object:
    return griffe.load("avseg", search_paths=[str(ROOT)], resolve_aliases=False)


def undocumented(obj: griffe.Object) -> list[str]:
    missing = [] if obj.docstring else [obj.path]
    for name, member in obj.members.items():
        if name.startswith("_") or member.is_alias:
            continue
        if member.is_class:
            missing += undocumented(member)
        elif name == "model_config":  # pydantic's settings, not a field
            continue
        elif member.is_attribute and "description=" in str(member.value or ""):
            continue  # a pydantic field documented with Field(description=...)
        elif not member.docstring:
            missing.append(member.path)
    return missing


def test_every_public_class_is_on_a_reference_page() -> None:
    pkg = package()
    refs = referenced()
    for mod in MODULES:
        module = pkg[mod.removeprefix("avseg.")]
        classes = [m.path for n, m in module.members.items() if not n.startswith("_") and not m.is_alias
                   and m.is_class]
        assert classes
        assert not [c for c in classes if c not in refs], mod


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "docs" / "reference").glob("*.md")))
def test_everything_on_a_reference_page_is_documented(page: str) -> None:
    pkg = package()
    text = (ROOT / "docs" / "reference" / page).read_text()
    for ref in re.findall(r"^::: ([\w.]+)", text, flags=re.M):
        obj = pkg[ref.removeprefix("avseg.")]
        if obj.is_module:  # the hooks page: every hook of the module
            hooks = [m for n, m in obj.members.items() if n.startswith("register_") and m.is_function]
            assert len(hooks) >= 10 and all(h.docstring for h in hooks), [h.path for h in hooks if not h.docstring]
            continue
        assert not undocumented(obj), undocumented(obj)
