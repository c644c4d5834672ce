"""The stage cache cannot serve the wrong output: provider, version and source are in the key,
and eval refuses to resume into a folder made by other code."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from avseg import hookimpl
from avseg.cache import StageCache, source_fingerprint
from avseg.components import Proposer
from avseg.errors import UsageError
from avseg.eval.runner import run_eval
from avseg.pipeline import Pipeline
from avseg.registry import Registry, load_registry
from avseg.runtime import Runtime
from avseg.spec import resolve
from avseg.testing import make_s4_tree
from avseg.types import Clip, Image, Proposals
from tests.fakes import FakeDist, FakePlugin, module


def boxes_proposer(box: list[float]) -> type[Proposer]:
    class DupBox(Proposer):
        name: ClassVar[str] = "dupbox"
        description: ClassVar[str] = "one fixed box"

        def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
            return [Proposals(np.asarray([box], np.float32), np.ones(1, np.float32)) for _ in frames]

    return DupBox


ALPHA = boxes_proposer([0, 0, 10, 10])
BETA = boxes_proposer([20, 20, 40, 40])


@pytest.fixture
def plugins() -> Iterator[None]:
    module("dupplug_alpha", register_proposers=hookimpl(lambda register: register(ALPHA)))
    module("dupplug_beta", register_proposers=hookimpl(lambda register: register(BETA)))
    module("dupplug_same", register_proposers=hookimpl(lambda register: register(ALPHA)))
    yield
    for name in [m for m in sys.modules if m.startswith("dupplug_")]:
        del sys.modules[name]


def registry(*dists: FakeDist) -> Registry:
    return load_registry(plugins=[("fake", FakePlugin())], distributions=list(dists))


def clip() -> Clip:
    return Clip.from_arrays("c", [np.zeros((48, 48, 3), np.uint8)] * 2, np.zeros(16000, np.float32), 8000)


def run(reg: Registry, proposer: str, cache: Path) -> tuple[Runtime, list[float]]:
    rt = Runtime(device="cpu", cache=StageCache(cache))
    spec = {"steps": [{"proposer": proposer}, {"segmenter": "box-masks"}]}
    res = Pipeline(resolve(spec, reg), rt).run_clip(clip())
    return rt, res.frames[0].kept.boxes[0].tolist()


def test_two_distributions_with_the_same_component_name_never_share_an_entry(plugins: None, tmp_path: Path) -> None:
    reg = registry(FakeDist("alpha-dist", "1.0", {"a": "dupplug_alpha"}), FakeDist("beta-dist", "1.0", {"b": "dupplug_beta"}))
    rt, box = run(reg, "alpha-dist:dupbox", tmp_path)
    assert box == [0, 0, 10, 10] and rt.counters["proposer.dupbox.computed"] == 1
    rt, box = run(reg, "beta-dist:dupbox", tmp_path)
    assert box == [20, 20, 40, 40] and rt.counters["proposer.dupbox.computed"] == 1
    rt, box = run(reg, "alpha-dist:dupbox", tmp_path)
    assert box == [0, 0, 10, 10] and rt.counters["proposer.dupbox.cache_hit"] == 1


def test_the_same_class_from_two_distributions_is_two_entries(plugins: None, tmp_path: Path) -> None:
    reg = registry(FakeDist("alpha-dist", "1.0", {"a": "dupplug_alpha"}), FakeDist("same-dist", "1.0", {"s": "dupplug_same"}))
    run(reg, "alpha-dist:dupbox", tmp_path)
    rt, _ = run(reg, "same-dist:dupbox", tmp_path)
    assert rt.counters["proposer.dupbox.computed"] == 1 and "proposer.dupbox.cache_hit" not in rt.counters


def test_a_new_version_of_the_provider_recomputes(plugins: None, tmp_path: Path) -> None:
    run(registry(FakeDist("alpha-dist", "1.0", {"a": "dupplug_alpha"})), "dupbox", tmp_path)
    rt, _ = run(registry(FakeDist("alpha-dist", "1.1", {"a": "dupplug_alpha"})), "dupbox", tmp_path)
    assert rt.counters["proposer.dupbox.computed"] == 1


SOURCE = '''
from typing import ClassVar
import numpy as np
from avseg import hookimpl
from avseg.components import Proposer
from avseg.types import Proposals

SIDE = {side}


class Edited(Proposer):
    name: ClassVar[str] = "edited"
    description: ClassVar[str] = "a box whose size is in the source"

    def propose(self, frames, prompts=None):
        return [Proposals(np.asarray([[0, 0, SIDE, SIDE]], np.float32), np.ones(1, np.float32)) for _ in frames]


@hookimpl
def register_proposers(register):
    register(Edited)
'''


def test_editing_a_component_source_with_the_same_version_recomputes(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src" / "editable_plug.py"
    src.parent.mkdir()
    src.write_text(textwrap.dedent(SOURCE.format(side=10)))
    monkeypatch.syspath_prepend(str(src.parent))
    dist = FakeDist("editable-dist", "1.0", {"e": "editable_plug"})
    try:
        mod = importlib.import_module("editable_plug")
        rt, box = run(registry(dist), "edited", tmp_path / "cache")
        assert box == [0, 0, 10, 10] and rt.counters["proposer.edited.computed"] == 1
        rt, _ = run(registry(dist), "edited", tmp_path / "cache")
        assert rt.counters["proposer.edited.cache_hit"] == 1
        old_fp = source_fingerprint(mod.Edited)
        src.write_text(textwrap.dedent(SOURCE.format(side=20)))  # an edit in place, version unchanged
        mod = importlib.reload(mod)
        assert source_fingerprint(mod.Edited) != old_fp
        rt, box = run(registry(dist), "edited", tmp_path / "cache")
        assert box == [0, 0, 20, 20] and rt.counters["proposer.edited.computed"] == 1
    finally:
        sys.modules.pop("editable_plug", None)


def test_fingerprint_covers_the_plugin_modules_a_component_imports() -> None:
    """A bundled plugin's fingerprint hashes the modules of its package that it imports, lazily
    too (SAM's model and checkpoint converter), and not the ones it never imports."""
    from avseg_sam.segmenter import SamSegmenter

    from avseg.cache import source_files

    names = {p.name for p in source_files(SamSegmenter)}
    assert {"segmenter.py", "model.py", "convert.py", "components.py"} <= names
    assert "__init__.py" not in {p.name for p in source_files(SamSegmenter) if p.parent.name == "avseg_sam"}


def test_fingerprint_covers_the_core_helpers_a_component_imports(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """ImageBind crops through avseg.regions (the shared crop helper): an edit there changes its
    embeddings, so the file is part of its fingerprint, as is a core module imported lazily."""
    from avseg_imagebind.embedder import ImageBindEmbedder

    from avseg.cache import source_files

    assert "regions.py" in {p.name for p in source_files(ImageBindEmbedder)}
    src = tmp_path / "lazy_core_plug.py"
    src.write_text("def f():\n    from avseg.regions import region_crop\n    return region_crop\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("lazy_core_plug")
        names = {p.name for p in source_files("lazy_core_plug")}
        assert {"lazy_core_plug.py", "regions.py"} <= names
    finally:
        sys.modules.pop("lazy_core_plug", None)


MEMO_SOURCE = '''
import numpy as np

def encode(runtime):
    def compute():
        return {{"v": np.asarray([{value}])}}
    return runtime.memo("memo-plug/enc", "frame0", compute)["v"].tolist()
'''


def test_an_edited_encoder_never_gets_its_old_memo_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """runtime.memo's disk entries (SAM's image encodings) carry the encoder's source fingerprint:
    the stage key alone would recompute the segmenter on top of the old encodings."""
    src = tmp_path / "src" / "memo_plug.py"
    src.parent.mkdir()
    src.write_text(MEMO_SOURCE.format(value=1))
    monkeypatch.syspath_prepend(str(src.parent))

    def encode() -> tuple[Runtime, list[int]]:
        rt = Runtime(device="cpu", cache=StageCache(tmp_path / "cache"))
        return rt, sys.modules["memo_plug"].encode(rt)

    try:
        mod = importlib.import_module("memo_plug")
        rt, v = encode()
        assert v == [1] and rt.counters["memo-plug/enc.computed"] == 1
        rt, v = encode()
        assert v == [1] and rt.counters["memo-plug/enc.cache_hit"] == 1
        src.write_text(MEMO_SOURCE.format(value=2))  # edited in place, same namespace and version
        importlib.reload(mod)
        rt, v = encode()
        assert v == [2] and rt.counters["memo-plug/enc.computed"] == 1
    finally:
        sys.modules.pop("memo_plug", None)


def test_eval_refuses_to_resume_after_a_provider_version_change(plugins: None, tmp_path: Path) -> None:
    root = make_s4_tree(tmp_path / "s4", n_per_split={"train": 0, "val": 0, "test": 1})
    preset = tmp_path / "dup.yaml"
    preset.write_text("steps:\n  - proposer: dupbox\n  - segmenter: box-masks\n")
    out = tmp_path / "out"

    def ev(version: str, **kw: Any) -> dict[str, Any]:
        reg = registry(FakeDist("alpha-dist", version, {"a": "dupplug_alpha"}))
        return run_eval(root=root, subset="s4", split="test", out=out, pipeline={"preset": str(preset)},
                        runtime=Runtime(device="cpu"), progress=False, registry=reg, **kw)

    m = ev("1.0")
    assert m["components"]["proposer:dupbox"]["version"] == "1.0" and m["steps"] == ["proposer:dupbox",
                                                                                      "segmenter:box-masks"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["components"]["proposer:dupbox"] == {"provider": "alpha-dist", "version": "1.0",
                                                    "fingerprint": source_fingerprint(ALPHA)}
    assert ev("1.0")["n_skipped_finished"] == 1  # same code: resumed
    with pytest.raises(UsageError) as e:
        ev("2.0")
    msg = str(e.value)
    assert "proposer:dupbox version changed from '1.0' to '2.0'" in msg and "--overwrite" in msg and "\n" not in msg
    assert ev("2.0", overwrite=True)["n_skipped_finished"] == 0
