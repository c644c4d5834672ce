"""The CLI: light imports, the example plugin end to end, and one-line errors with exit codes."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from avseg import hookimpl
from avseg.testing import make_frames_folder
from tests.fakes import FakeDist, GridBoxes, module
from tests.helpers import cli, step_of


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(make_frames_folder(tmp_path_factory.mktemp("in") / "clip", n=3, size=64))


@pytest.mark.parametrize("args", [["--help"], ["plugins", "--json"], ["presets"]])
def test_no_heavy_imports(args: list[str]) -> None:
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print('HEAVY' if {'torch','transformers','segment_anything'} & set(sys.modules) else 'LIGHT'))\n"
        f"from avseg.cli import main; main({args!r})\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("LIGHT")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.startswith("avseg 0.")


def test_plugins_json_lists_example_and_model_free_filters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "plugins", "--json")
    assert code == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(out)}
    sal = rows[("proposer", "saliency")]
    assert sal["provider"] == "avseg-example-plugin" and sal["status"] == "ok" and sal["weights"] == "none needed"
    for name in ("tag-threshold", "score-threshold", "nms", "bind"):
        assert rows[("filter", name)]["status"] == "ok"
    assert {"name", "kind", "provider", "status"} <= set(sal)


def test_run_with_the_example_plugin(capsys: pytest.CaptureFixture[str], frames: Path, tmp_path: Path) -> None:
    code, out, err = cli(capsys, "run", "--input", str(frames), "--out", str(tmp_path), "--proposer", "saliency",
                         "--filter", "score-threshold", "--no-cache")
    assert code == 0, err
    masks = sorted((tmp_path / "masks").glob("*.png"))
    assert len(masks) == 3 and len(list((tmp_path / "overlays").glob("*.png"))) == 3
    m = np.asarray(Image.open(masks[0]))
    assert set(np.unique(m)) <= {0, 255} and (m == 255).any()  # the synthetic object is found
    meta = json.loads((tmp_path / "run.json").read_text())
    assert step_of(meta["config"], "proposer")["type"] == "saliency"  # type: ignore[index]
    assert meta["components"]["proposer:saliency"]["provider"] == "avseg-example-plugin"
    assert step_of(meta["config"], "embedder") is None and step_of(meta["config"], "segmenter") is None
    assert "proposer.saliency" in meta["timings"] and meta["weights"]["proposer:saliency"] == "none"


@pytest.mark.parametrize("args,code,needle", [
    (["run", "--proposer", "salency"], 2, "unknown proposer 'salency' (did you mean 'saliency'?)"),
    (["run", "--proposer", "saliency", "--embedder", "none", "--filter", "bind"], 2,
     "filter 'bind' needs embeddings but the chain has no embedder"),
    (["run", "--proposer", "saliency", "--filter", "nms", "--set", "filter.nms.iou=0.3"], 2,
     "unknown option 'iou' for filter 'nms'"),
    (["run", "--proposer", "saliency", "--filter", "nms", "--set", "filter.nms.iou_threshold=lots"], 2,
     "invalid iou_threshold='lots'"),
    (["run", "owod-bnd"], 2, "unknown preset 'owod-bnd' (did you mean 'owod-bind'"),
    (["run", "--proposer", "saliency", "--filter", "nms", "--device", "tpu"], 2, "--device 'tpu'"),
])
def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], frames: Path, tmp_path: Path,
                                   args: list[str], code: int, needle: str) -> None:
    got, out, err = cli(capsys, *args, "--input", str(frames), "--out", str(tmp_path))
    assert got == code
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_and_corrupt_input(capsys: pytest.CaptureFixture[str], frames: Path, tmp_path: Path) -> None:
    base = ["run", "--proposer", "saliency", "--filter", "score-threshold", "--out", str(tmp_path)]
    code, _, err = cli(capsys, *base, "--input", str(tmp_path / "nope"))
    assert code == 1 and "nope" in err and err.count("\n") == 1
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in frames.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "frame_1.png").write_bytes(b"not a png")
    code, _, err = cli(capsys, *base, "--input", str(broken))
    assert code == 1 and "frame_1.png" in err and err.count("\n") == 1


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed distributions plus two that clash and one that is broken."""
    real = list(importlib.metadata.distributions())
    class Clash(GridBoxes):
        pass
    Clash.name = "saliency"  # type: ignore[misc]

    def reg(register: Any) -> None:
        register(Clash)

    module("fakeplug_clash", register_proposers=hookimpl(reg))
    fakes = [FakeDist("clashing-plugin", "9.9", {"clash": "fakeplug_clash"}),
             FakeDist("broken-plugin", "0.0.1", {"broken": "fakeplug_missing_module"})]
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(real + fakes))
    yield
    sys.modules.pop("fakeplug_clash", None)


def test_collision_and_broken_plugin_via_cli(capsys: pytest.CaptureFixture[str], fake_env: None, frames: Path,
                                             tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "plugins", "--json")
    assert code == 0
    rows = json.loads(out)
    broken = [r for r in rows if r["status"] == "broken"]
    assert [b["provider"] for b in broken] == ["broken-plugin"] and "ModuleNotFoundError" in broken[0]["description"]
    args = ["run", "--input", str(frames), "--out", str(tmp_path), "--filter", "score-threshold", "--no-cache"]
    code, _, err = cli(capsys, *args, "--proposer", "saliency")
    assert code == 2 and "registered by both" in err and "'clashing-plugin:saliency'" in err and err.count("\n") == 1
    code, _, err = cli(capsys, *args, "--proposer", "avseg-example-plugin:saliency")
    assert code == 0, err


def test_presets_show_resolves(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "presets", "show", "sam-bind", "--set", "filter.bind.cosine_threshold=0.6")
    assert code == 0
    assert "type: sam-grid" in out and "cosine_threshold: 0.6" in out


def test_option_errors_exit_2_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", "--bogus")
    assert code == 2 and "No such option: --bogus" in err and "Traceback" not in err
    code, _, err = cli(capsys, "eval", "--root", "x")
    assert code == 2 and "Missing option '--subset'" in err


def test_python_m_avseg_from_the_parent_folder_of_a_clone_named_avseg(tmp_path: Path) -> None:
    """The clone's root is taken for a namespace package `avseg` there; its __main__.py runs the
    real CLI instead of failing with "'avseg' is a package and cannot be directly executed"."""
    import os
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    clone = tmp_path / "avseg"
    clone.mkdir()
    shutil.copy(root / "__main__.py", clone / "__main__.py")
    (clone / "avseg").symlink_to(root / "avseg")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-m", "avseg", "--version"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("avseg "), done.stderr
