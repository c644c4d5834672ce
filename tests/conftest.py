"""Test-wide settings (offline, deterministic, small) and the fixtures several files share."""

import os

# Never reach a model hub from a test; tiny variants build from configs.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "2")

# Never touch the user's real cache from a test run.
import importlib.metadata  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

os.environ["AVSEG_CACHE_DIR"] = tempfile.mkdtemp(prefix="avseg-test-cache-")

#: the synthetic S4 tree of the ``s4`` fixture; a test module that needs another sets ``S4_TREE``
S4_TREE: dict[str, Any] = {"n_per_split": {"train": 1, "val": 1, "test": 3}, "size": 32}


@pytest.fixture(scope="module")
def s4(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic AVSBench S4 tree, once per test module (``S4_TREE`` in the module overrides
    its splits and frame size). Read-only: a test that damages a tree makes its own."""
    from avseg.testing import make_s4_tree

    shape = {**S4_TREE, **getattr(request.module, "S4_TREE", {})}
    return make_s4_tree(tmp_path_factory.mktemp("s4"), **shape)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The real installed distributions plus the fake ones (``tests.fakes.FakeDist``) a test
    appends; the plugin modules the test made with ``tests.fakes.module`` are forgotten after it."""
    from tests import fakes

    real = list(importlib.metadata.distributions())
    extra: list[Any] = []
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(real + extra))
    before = set(fakes.MADE)
    yield extra
    for name in fakes.MADE - before:
        sys.modules.pop(name, None)
        fakes.MADE.discard(name)
