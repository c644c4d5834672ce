"""The source fingerprint depends on code alone: module names and contents, never paths or how the
code was installed; only modules the component imports count (avseg.fingerprint)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from avseg.fingerprint import source_fingerprint, source_modules
from tests.deps import requires

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = {
    "__init__.py": '''
        from avseg.hookspecs import hookimpl


        @hookimpl
        def register_proposers(register):
            from fpplug.boxes import FixedBox

            register(FixedBox)
    ''',
    "boxes.py": '''
        from typing import ClassVar

        import numpy as np

        from avseg.components import Capabilities, Proposer
        from avseg.types import Proposals

        from .sizes import side


        class FixedBox(Proposer):
            name: ClassVar[str] = "fixed-box"
            description: ClassVar[str] = "one box with its mask in the top-left corner"

            @classmethod
            def capabilities(cls, config):
                return Capabilities(gives_masks=True)

            def propose(self, frames, prompts=None):
                out = []
                for f in frames:
                    s = side(f.shape[0])
                    mask = np.zeros((1, *f.shape[:2]), bool)
                    mask[0, :s, :s] = True
                    out.append(Proposals(np.asarray([[0, 0, s, s]], np.float32), np.ones(1, np.float32),
                                         masks=mask))
                return out
    ''',
    "sizes.py": '''
        def side(h):
            return max(1, h // 2)
    ''',
    "commands.py": '''
        # a module the proposer never imports
        VALUE = 1
    ''',
}


def write_plugin(root: Path) -> Path:
    pkg = root / "fpplug"
    pkg.mkdir(parents=True)
    for name, text in PLUGIN.items():
        (pkg / name).write_text(textwrap.dedent(text).lstrip())
    (root / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "fpplug"
        version = "1.0"

        [project.entry-points.avseg]
        fpplug = "fpplug"

        [tool.setuptools]
        packages = ["fpplug"]
    '''))
    return pkg


def fingerprint_at(root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fingerprint of fpplug.boxes.FixedBox imported from ``root``."""
    for name in [m for m in sys.modules if m == "fpplug" or m.startswith("fpplug.")]:
        del sys.modules[name]
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    mod = importlib.import_module("fpplug.boxes")
    assert Path(mod.__file__).parent.parent == root
    return source_fingerprint(mod.FixedBox)


@pytest.fixture
def unload() -> object:
    yield None
    for name in [m for m in sys.modules if m == "fpplug" or m.startswith("fpplug.")]:
        del sys.modules[name]


def test_same_code_at_two_paths_has_one_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    unload: object) -> None:
    write_plugin(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "elsewhere" / "b")
    fp_a = fingerprint_at(tmp_path / "a", monkeypatch)
    fp_b = fingerprint_at(tmp_path / "elsewhere" / "b", monkeypatch)
    assert fp_a == fp_b and fp_a != "no-source"


def test_only_imported_modules_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unload: object) -> None:
    pkg = write_plugin(tmp_path)
    fp = fingerprint_at(tmp_path, monkeypatch)
    from fpplug.boxes import FixedBox

    names = set(source_modules(FixedBox))
    # its own module, the relative import, the avseg modules it imports; never the unimported command
    assert {"fpplug.boxes", "fpplug.sizes", "avseg.components", "avseg.types"} <= names
    assert "fpplug.commands" not in names and "fpplug" not in names
    (pkg / "commands.py").write_text("# edited\nVALUE = 2\n")
    (pkg / "__init__.py").write_text((pkg / "__init__.py").read_text() + "\n# edited\n")
    assert source_fingerprint(FixedBox) == fp
    (pkg / "sizes.py").write_text("def side(h):\n    return max(1, h // 3)\n")
    os.utime(pkg / "sizes.py", ns=(1, 1))  # a different stat, whatever the clock's resolution
    assert source_fingerprint(FixedBox) != fp


CORE_PROBE = '''
import sys
from avseg.fingerprint import source_fingerprint, source_modules
import probe
print(source_fingerprint(probe.__name__), sorted(source_modules(probe.__name__)))
'''


def core_fingerprint(copy: Path) -> tuple[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    out = subprocess.run([sys.executable, "-c", CORE_PROBE], env=env, cwd=copy, capture_output=True, text=True,
                         check=True).stdout.split(" ", 1)
    return out[0], eval(out[1])  # noqa: S307 (our own probe's list)


def test_an_edit_to_an_imported_core_helper_changes_it(tmp_path: Path) -> None:
    """Two copies of avseg at two paths: same fingerprint; an edit to avseg.regions (imported
    lazily) changes it; an edit to a core module it does not import (avseg.ablate) does not."""
    copies = []
    for where in ("one", "two/deeper"):
        copy = tmp_path / where
        shutil.copytree(ROOT / "avseg", copy / "avseg", ignore=shutil.ignore_patterns("__pycache__"))
        (copy / "probe.py").write_text("def crop():\n    from avseg.regions import region_crop\n"
                                       "    return region_crop\n")
        copies.append(copy)
    fp1, names = core_fingerprint(copies[0])
    assert "avseg.regions" in names and "avseg.ablate" not in names
    assert core_fingerprint(copies[1])[0] == fp1
    with open(copies[1] / "avseg" / "ablate.py", "a") as f:
        f.write("\n# edited\n")
    assert core_fingerprint(copies[1])[0] == fp1
    with open(copies[1] / "avseg" / "regions.py", "a") as f:
        f.write("\n# edited\n")
    assert core_fingerprint(copies[1])[0] != fp1


# ---- the real thing: one distribution installed editable in one venv and as a wheel in another ----

def make_venv(path: Path) -> Path:
    """A venv whose python sees this test's site-packages (through a .pth) and this checkout."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(path)], check=True)
    python = path / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    import site as site_mod

    parents = [p for p in site_mod.getsitepackages() if Path(p).is_dir()]
    Path(site, "zz_parent.pth").write_text("\n".join(parents) + "\n")
    return python


def pip(python: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", *args], check=True, capture_output=True)


def in_venv(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", "AVSEG_CACHE_DIR": "",
           "COLUMNS": "80"}
    return subprocess.run([str(python), *args], env=env, capture_output=True, text=True, cwd=python.parent)


FP_PROBE = ("import fpplug.boxes as b; from avseg.cache import source_fingerprint; "
            "print(b.__file__); print(source_fingerprint(b.FixedBox))")


@pytest.mark.slow
def test_editable_and_wheel_installs_share_fingerprint_and_eval_resumes(tmp_path: Path) -> None:
    requires("setuptools")
    from avseg.testing import make_s4_tree

    src = tmp_path / "src"
    write_plugin(src)
    editable, wheel = make_venv(tmp_path / "venv-editable"), make_venv(tmp_path / "venv-wheel")
    pip(editable, "-e", str(src))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    pip(wheel, *map(str, (tmp_path / "dist").glob("fpplug-*.whl")))
    probes = [in_venv(py, "-c", FP_PROBE) for py in (editable, wheel)]
    for p in probes:
        assert p.returncode == 0, p.stderr
    (file_e, fp_e), (file_w, fp_w) = (p.stdout.split() for p in probes)
    assert file_e.startswith(str(src)) and "venv-wheel" in file_w  # really two installs
    assert fp_e == fp_w

    data = make_s4_tree(tmp_path / "s4", n_per_split={"train": 1, "val": 1, "test": 2})
    pipeline = tmp_path / "pipe.yaml"
    pipeline.write_text("steps:\n  - proposer: fixed-box\n")
    out = tmp_path / "eval"
    base = ["-m", "avseg", "eval", str(pipeline), "--root", str(data), "--subset", "s4", "--out", str(out),
            "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    first = in_venv(editable, *base, "--limit", "1")
    assert first.returncode == 0, first.stderr
    second = in_venv(wheel, *base)
    assert second.returncode == 0, second.stderr  # not "results made by other code"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_skipped_finished"] == 1 and metrics["n_clips"] == 2
