"""Under CI=true a missing dependency of a bundled plugin fails the run; elsewhere it skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SUITE = '''
from tests.deps import requires

requires("torch")  # a bundled plugin's dependency, at module level
requires("no_such_module_for_avseg_tests")  # not one: may always skip


def test_runs():
    assert True
'''

PER_TEST = '''
from tests.deps import requires


def test_needs_a_bundled_dependency():
    requires("segment_anything")


def test_needs_something_else():
    requires("no_such_module_for_avseg_tests")
'''


def pytest_in(tmp_path: Path, source: str, ci: str | None, hide: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``source`` in a child whose ``hide`` module cannot be imported."""
    (tmp_path / "test_child.py").write_text(source)
    (tmp_path / "conftest.py").write_text(
        "import sys\n"
        f"sys.modules[{hide!r}] = None  # as if not installed: importing it raises ImportError\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:randomly",
                           str(tmp_path / "test_child.py")], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)


def test_missing_bundled_dependency_skips_outside_ci(tmp_path: Path) -> None:
    p = pytest_in(tmp_path, SUITE, None, "torch")  # 5: pytest collected no test (the module skipped)
    assert p.returncode in (0, 5) and "1 skipped" in p.stdout and "missing dependency 'torch'" in p.stdout, p.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_bundled_dependency_fails_under_ci(tmp_path: Path, ci: str) -> None:
    p = pytest_in(tmp_path, SUITE, ci, "torch")
    assert p.returncode != 0 and "CI=true: missing dependency 'torch'" in p.stdout and "avseg[torch]" in p.stdout, p.stdout


def test_under_ci_only_bundled_dependencies_fail(tmp_path: Path) -> None:
    p = pytest_in(tmp_path, PER_TEST, "true", "segment_anything")
    assert p.returncode != 0 and "1 failed" in p.stdout and "1 skipped" in p.stdout, p.stdout
    assert "avseg[sam]" in p.stdout
    p = pytest_in(tmp_path, PER_TEST, "false", "segment_anything")
    assert p.returncode == 0 and "2 skipped" in p.stdout, p.stdout


def test_core_test_files_never_skip_for_a_model_dependency() -> None:
    """The core's tests import no optional model dependency at module level: only tests/deps.py
    decides to skip, and only test files of plugins (or a test inside a core file) call it at the top."""
    offenders = []
    for f in sorted((ROOT / "tests").glob("test_*.py")):
        if f.name == Path(__file__).name:
            continue
        text = f.read_text()
        if "importorskip(" in text or "allow_module_level" in text:
            offenders.append(f.name)
    assert offenders == [], f"use tests.deps.requires, not importorskip / module-level skips: {offenders}"
