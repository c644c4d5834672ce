"""Which files a component's source fingerprint counts, found statically from a throwaway package
on ``sys.path`` that is never imported: relative and lazy imports, ``TYPE_CHECKING`` blocks,
imports Python would refuse, modules that cannot be found or parsed. Fast, for ``make mutants``
on avseg/fingerprint.py (every test name holds "fingerprint")."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import shutil
import sys
import types
from pathlib import Path

import pytest

from avseg import fingerprint as fp

_IDS = itertools.count()


@pytest.fixture
def pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A writer of a fresh top-level package (a name no other test uses) on sys.path."""
    name = f"fpedge{next(_IDS)}_{tmp_path.name[-6:].replace('-', '_')}"
    root = tmp_path / "site"
    monkeypatch.syspath_prepend(str(root))
    fp.clear_caches()

    def write(files: dict[str, str]) -> str:
        for rel, text in files.items():
            p = root / name / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        importlib.invalidate_caches()
        return name

    yield write
    fp.clear_caches()


def mods(name: str) -> set[str]:
    return set(fp.source_modules(name))


def test_fingerprint_follows_relative_imports_up_and_from_dot(pkg) -> None:
    n = pkg({"__init__.py": "from .helper import f\n", "helper.py": "", "other.py": "",
             "sub/__init__.py": "", "sub/mod.py": "from ..other import g\nfrom . import leaf\n",
             "sub/leaf.py": ""})
    assert mods(f"{n}.sub.mod") == {f"{n}.sub.mod", f"{n}.sub.leaf", f"{n}.other"}
    assert mods(n) == {n, f"{n}.helper"}  # the package's own relative import, as a package


def test_fingerprint_from_package_import_module_counts_that_module(pkg) -> None:
    n = pkg({"__init__.py": "", "helper.py": "", "mod.py": ""})
    (Path(fp.locate(f"{n}.mod")[0])).write_text(f"from {n} import helper\n")
    fp.clear_caches()
    assert mods(f"{n}.mod") == {f"{n}.mod", f"{n}.helper"}


def test_fingerprint_name_from_a_plain_module_is_not_a_sibling_file(pkg) -> None:
    n = pkg({"__init__.py": "", "thing.py": "", "util.py": "def thing(): pass\n", "mod.py": ""})
    fp.locate(f"{n}.mod")[0].write_text(f"from {n}.util import thing\nimport {n}.nothere.deep\n")
    fp.clear_caches()
    assert mods(f"{n}.mod") == {f"{n}.mod", f"{n}.util"}  # not thing.py: util is no package


def test_fingerprint_skips_type_checking_but_reads_other_ifs(pkg) -> None:
    n = pkg({"__init__.py": "", "a.py": "", "b.py": "", "tc.py": "", "mod.py": ""})
    fp.locate(f"{n}.mod")[0].write_text(
        f"import {n}.a\nif FLAG:\n    import {n}.b\nif TYPE_CHECKING:\n    import {n}.tc\n")
    fp.clear_caches()
    assert mods(f"{n}.mod") == {f"{n}.mod", f"{n}.a", f"{n}.b"}


def test_fingerprint_counts_import_module_calls_by_their_first_argument(pkg) -> None:
    n = pkg({"__init__.py": "", "lazy.py": "", "mod.py": ""})
    fp.locate(f"{n}.mod")[0].write_text(
        f"import importlib\ndef load():\n    return importlib.import_module('{n}.lazy', '{n}')\n"
        f"def other():\n    print('{n}')\n")
    fp.clear_caches()
    assert mods(f"{n}.mod") == {f"{n}.mod", f"{n}.lazy"}


def test_fingerprint_ignores_relative_imports_beyond_the_top_package(pkg) -> None:
    n = pkg({"__init__.py": "", "a.py": "", "helper.py": "", "sub/__init__.py": "", "sub/mod.py": ""})
    fp.locate(f"{n}.sub.mod")[0].write_text(
        f"import {n}.a\nfrom ... import helper\nfrom .... import helper\nfrom ...{n} import helper\n")
    fp.clear_caches()
    # `from ...n import helper` in n/sub/mod.py is one level beyond n: Python refuses it when run
    assert mods(f"{n}.sub.mod") == {f"{n}.sub.mod", f"{n}.a"}


@pytest.mark.parametrize("bad", ["missing", "broken"])
def test_fingerprint_skips_a_module_it_cannot_find_or_parse_and_goes_on(pkg, bad: str) -> None:
    body = "def (:\n" if bad == "broken" else None
    files = {"__init__.py": "", "x.py": "", "y.py": "", "mod.py": ""}
    if body:
        files |= {"bad1.py": body, "bad2.py": body}
    n = pkg(files)
    fp.locate(f"{n}.x")[0].write_text(f"import {n}.bad1\n")
    fp.locate(f"{n}.y")[0].write_text(f"import {n}.bad2\n")
    fp.locate(f"{n}.mod")[0].write_text(f"import {n}.x, {n}.y\n")
    fp.clear_caches()
    assert mods(f"{n}.mod") == {f"{n}.mod", f"{n}.x", f"{n}.y"}  # whichever is popped first


def test_fingerprint_finds_submodules_through_an_imported_namespace_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"fpns{next(_IDS)}"
    d = tmp_path / "elsewhere"
    d.mkdir()
    (d / "mod.py").write_text("")
    ns = types.ModuleType(name)
    ns.__path__ = [str(d)]  # a namespace package: a __path__, no __file__
    monkeypatch.setitem(sys.modules, name, ns)
    fp.clear_caches()
    assert fp.source_files(f"{name}.mod") == [d / "mod.py"]
    fp.clear_caches()


def test_fingerprint_is_16_hex_of_names_and_contents_and_the_same_at_two_paths(
        pkg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = pkg({"__init__.py": "", "mod.py": "from . import helper\n", "helper.py": "X = 1\n"})
    first = fp.source_fingerprint(f"{n}.mod")
    assert len(first) == 16 and int(first, 16) >= 0
    want = hashlib.sha256()
    for m in (f"{n}.helper", f"{n}.mod"):
        data = fp.locate(m)[0].read_bytes()
        want.update(m.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode() + b"\0")
    assert first == want.hexdigest()[:16]
    other = tmp_path / "copy"
    shutil.copytree(tmp_path / "site", other)
    monkeypatch.syspath_prepend(str(other))
    fp.clear_caches()
    assert fp.locate(f"{n}.mod")[0].is_relative_to(other)
    assert fp.source_fingerprint(f"{n}.mod") == first
    (other / n / "helper.py").write_text("X = 2\n")
    assert fp.source_fingerprint(f"{n}.mod") != first


def test_fingerprint_parse_gives_content_hash_and_reads_each_file_once(
        pkg, monkeypatch: pytest.MonkeyPatch) -> None:
    n = pkg({"__init__.py": "", "mod.py": "import os\n"})
    path = fp.locate(f"{n}.mod")[0]
    assert fp._parsed(path, f"{n}.mod", False) == (hashlib.sha256(b"import os\n").hexdigest(),
                                                   frozenset({"os"}))
    calls = []
    real = fp._imports
    monkeypatch.setattr(fp, "_imports", lambda *a: calls.append(a) or real(*a))
    fp.source_fingerprint(f"{n}.mod")
    assert calls == []  # unchanged files are not parsed again


def test_fingerprint_counts_no_compiled_module(pkg) -> None:
    n = pkg({"__init__.py": "", "ext.so": "import os\n", "mod.py": ""})  # text, but an extension's name
    fp.locate(f"{n}.mod")[0].write_text(f"import {n}.ext\n")
    fp.clear_caches()
    assert fp.locate(f"{n}.ext") is None
    assert mods(f"{n}.mod") == {f"{n}.mod"}


def test_fingerprint_counts_no_namespace_subfolder(pkg) -> None:
    n = pkg({"__init__.py": "", "nsdir/data.txt": "", "mod.py": ""})
    fp.locate(f"{n}.mod")[0].write_text(f"import {n}.nsdir\n")
    fp.clear_caches()
    assert mods(f"{n}.mod") == {f"{n}.mod"}
