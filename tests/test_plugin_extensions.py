"""Plugins as an author meets them: name collisions with bundled components and presets, the
plugin switches and trace, and the register_commands / register_datasets / register_metrics hooks
of a test plugin (tests/plugin_extras.py), installed-looking, used from the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml
from PIL import Image

from avseg import hookimpl
from avseg.components import Filter, FrameContext
from avseg.errors import DependencyMissing
from avseg.registry import load_registry
from avseg.testing import make_frames_folder
from avseg.types import FilterResult
from tests import plugin_extras
from tests.fakes import FakeDist, GridBoxes, module
from tests.helpers import cli, step_of, steps_of


class OtherNMS(Filter):
    """A third party's filter that reuses the bundled name 'nms' (it keeps everything)."""

    name: ClassVar[str] = "nms"
    description: ClassVar[str] = "someone else's nms"

    def __call__(self, ctx: FrameContext) -> FilterResult:
        return FilterResult(keep=list(range(len(ctx.proposals or []))))



@pytest.fixture
def other_nms(installed: list[FakeDist]) -> list[FakeDist]:
    module("fakeplug_nms", register_filters=hookimpl(lambda register: register(OtherNMS)))
    installed.append(FakeDist("other-nms", "2.0", {"othernms": "fakeplug_nms"}))
    return installed


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(make_frames_folder(tmp_path_factory.mktemp("in") / "clip", n=2, size=64))


def test_third_party_nms_leaves_sam_bind_working(capsys: pytest.CaptureFixture[str], other_nms: list[FakeDist],
                                                 frames: Path, tmp_path: Path) -> None:
    code, _, err = cli(capsys, "run", "sam-bind", "--tiny", "--no-cache", "--input", str(frames),
                       "--out", str(tmp_path / "run"), "--set", "proposer.points_per_side=4")
    assert code == 0, err
    # sam-bind's NMS is the mask generator's own (the paper's); owod-bind-softmax has an nms filter
    code, shown, err = cli(capsys, "presets", "show", "owod-bind-softmax")
    assert code == 0, err
    assert "type: avseg:nms" in shown and "type: bind" in shown  # the qualifier survives
    (tmp_path / "shown.yaml").write_text(shown)  # what presets show prints runs again
    code, again, err = cli(capsys, "presets", "show", str(tmp_path / "shown.yaml"))
    assert code == 0 and "type: avseg:nms" in again, err
    code, shown, err = cli(capsys, "presets", "show", "owod-bind-softmax", "--set", "filter.nms.iou_threshold=0.4")
    assert code == 0 and "iou_threshold: 0.4" in shown, err


def test_third_party_sam_leaves_steps_presets_working(capsys: pytest.CaptureFixture[str],
                                                     installed: list[FakeDist], frames: Path,
                                                     tmp_path: Path) -> None:
    """A bare name in a `steps:` preset means the preset's own distribution's component too."""
    from tests.fakes import BoxMasks

    class OtherSam(BoxMasks):
        name: ClassVar[str] = "sam"

    module("fakeplug_sam", register_segmenters=hookimpl(lambda register: register(OtherSam)))
    installed.append(FakeDist("other-sam", "1.0", {"othersam": "fakeplug_sam"}))
    code, shown, err = cli(capsys, "presets", "show", "owod-bind-authors")
    assert code == 0, err
    assert step_of(yaml.safe_load(shown), "segmenter")["type"] == "avseg:sam"  # type: ignore[index]
    code, _, err = cli(capsys, "run", "owod-bind-authors", "--tiny", "--no-cache", "--input", str(frames),
                       "--out", str(tmp_path / "run"))
    assert code == 0, err
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert "segmenter:avseg:sam" in meta["steps"] and step_of(meta["config"], "segmenter")["type"] == "avseg:sam"  # type: ignore[index]


def test_bare_colliding_name_on_the_command_line(capsys: pytest.CaptureFixture[str], other_nms: list[FakeDist],
                                                 frames: Path, s4: Path, tmp_path: Path) -> None:
    args = ["run", "--input", str(frames), "--out", str(tmp_path), "--proposer", "saliency", "--no-cache"]
    code, _, err = cli(capsys, *args, "--filter", "nms")
    assert code == 2 and err.count("\n") == 1
    assert "filter 'nms' is registered by both avseg 0.1.0" in err and "other-nms 2.0" in err
    assert "'avseg:nms', 'other-nms:nms'" in err
    code, _, err = cli(capsys, *args, "--filter", "other-nms:nms")
    assert code == 0, err
    assert steps_of(json.loads((tmp_path / "run.json").read_text())["config"], "filter") == [{"type": "other-nms:nms"}]
    code, _, err = cli(capsys, "eval", "--proposer", "saliency", "--filter", "other-nms:nms", "--no-cache", "--root",
                       str(s4), "--subset", "s4", "--limit", "1", "--out", str(tmp_path / "eval"))
    assert code == 0, err
    ident = json.loads((tmp_path / "eval" / "config.json").read_text())
    assert steps_of(ident["pipeline"], "filter") == [{"type": "other-nms:nms"}]  # the qualifier survives into config.json
    code, _, err = cli(capsys, *args, "--filter", "nosuch:nms")
    assert code == 2 and "no distribution 'nosuch' provides filter 'nms'" in err and "did you mean" not in err
    code, out, _ = cli(capsys, "plugins", "--json", "--kind", "filter")
    rows = {(r["name"], r["provider"]): r for r in json.loads(out)}
    assert rows[("nms", "avseg")]["collides_with"] == ["other-nms"]
    assert rows[("bind", "avseg")]["collides_with"] == []
    code, out, err = cli(capsys, "plugins", "--json", "--kind", "combiner")  # every kind the table lists
    assert code == 0 and {"union", "label-map"} <= {r["name"] for r in json.loads(out)}, err


def test_load_plugins_selects_third_party_only(capsys: pytest.CaptureFixture[str], other_nms: list[FakeDist],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVSEG_LOAD_PLUGINS", "other-nms")
    code, out, _ = cli(capsys, "plugins", "--json", "--kind", "filter")
    names = {(r["name"], r["provider"]) for r in json.loads(out)}
    assert {("bind", "avseg"), ("nms", "avseg"), ("nms", "other-nms")} <= names
    code, out, _ = cli(capsys, "plugins", "--json", "--kind", "proposer")
    assert "saliency" not in {r["name"] for r in json.loads(out)}  # the example plugin was not named


def test_trace_shows_each_hook_call_with_its_plugin(capsys: pytest.CaptureFixture[str], other_nms: list[FakeDist],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVSEG_TRACE_PLUGINS", "1")
    code, _, err = cli(capsys, "plugins")
    assert code == 0
    assert "register_filters [hook]" in err
    assert "<register for plugin 'filters' (avseg 0.1.0)>" in err
    assert "<register for plugin 'othernms' (other-nms 2.0)>" in err


def test_trace_names_the_plugin_of_register_commands(capsys: pytest.CaptureFixture[str], extras: list[FakeDist],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVSEG_TRACE_PLUGINS", "1")
    code, out, err = cli(capsys, "--help")
    assert code == 0 and "frame-count" in out
    assert "register_commands [hook]" in err and "<typer app for plugin 'extras' (avseg-extras 0.3)>" in err


def test_missing_dependency_hint_names_the_plugins_distribution(capsys: pytest.CaptureFixture[str],
                                                                installed: list[FakeDist]) -> None:
    class NeedsGpu(GridBoxes):
        name: ClassVar[str] = "needs-gpu"
        requires: ClassVar[tuple[str, ...]] = ("no_such_module_for_avseg",)
        extra: ClassVar[str | None] = "gpu"

    module("fakeplug_gpu", register_proposers=hookimpl(lambda register: register(NeedsGpu)))
    installed.append(FakeDist("cool-plugin", "1.0", {"cool": "fakeplug_gpu"}))
    code, out, _ = cli(capsys, "plugins", "--json", "--kind", "proposer")
    row = next(r for r in json.loads(out) if r["name"] == "needs-gpu")
    assert row["status"] == "missing-deps"
    assert row["dependencies"] == "missing no_such_module_for_avseg (pip install 'cool-plugin[gpu]')"
    # at build time, the class's own distribution (found from its module) is named
    NeedsGpu.__module__ = "avseg_example_saliency"
    with pytest.raises(DependencyMissing, match=r"pip install 'avseg-example-plugin\[gpu\]'"):
        NeedsGpu(NeedsGpu.Config(), None).import_requirements()  # type: ignore[arg-type]


# -- the extension hooks ---------------------------------------------------------------------------
@pytest.fixture
def extras(installed: list[FakeDist]) -> list[FakeDist]:
    """tests/plugin_extras.py installed as the distribution 'avseg-extras'."""
    installed.append(FakeDist("avseg-extras", "0.3", {"extras": "tests.plugin_extras"}))
    return installed


S4_TREE = {"n_per_split": {"test": 3}, "size": 48}  # the shared s4 fixture (tests/conftest.py)


def test_extension_hooks_registered_in_a_fixture(s4: Path) -> None:
    from avseg.data import open_dataset

    reg = load_registry(plugins=[("extras", plugin_extras)], entry_points=False)
    assert reg.dataset("s4-every-other").provider == "extras"
    ds = open_dataset(s4, "s4-every-other", "test", registry=reg)
    full = open_dataset(s4, "s4", "test")
    assert ds.ids == full.ids[::2] and len(ds.ids) == 2
    assert {k: m.per for k, m in reg.metric_table().items()} == {"any-hit": "clip", "fg-fraction": "frame"}


def test_plugin_command_from_the_cli(capsys: pytest.CaptureFixture[str], extras: list[FakeDist], frames: Path) -> None:
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and "frame-count" in out
    code, out, err = cli(capsys, "frame-count", str(frames))
    assert code == 0, err
    assert out.strip() == "clip: 2 frames"


def test_plugin_command_may_not_replace_a_builtin(capsys: pytest.CaptureFixture[str], installed: list[FakeDist]) -> None:
    def add(app: Any) -> None:
        @app.command("run")
        def hijack() -> None:
            print("hijacked")

    module("fakeplug_cmd", register_commands=hookimpl(add))
    installed.append(FakeDist("hijacker", "1", {"hijack": "fakeplug_cmd"}))
    code, out, err = cli(capsys, "--help")
    assert code == 0 and "hijack" not in out
    assert "warning: plugin 'hijack' (hijacker): register_commands: command 'run' already exists" in err


def _fg(masks: Path) -> float:
    return float(np.mean([(np.asarray(Image.open(p)) > 127).mean() for p in sorted(masks.rglob("*.png"))]))


def test_plugin_dataset_and_metrics_in_eval_score_and_ablate(capsys: pytest.CaptureFixture[str],
                                                             extras: list[FakeDist], s4: Path,
                                                             tmp_path: Path) -> None:
    chain = ["--proposer", "saliency", "--filter", "score-threshold", "--no-cache"]
    base = ["--root", str(s4), "--subset", "s4-every-other", "--split", "test"]
    code, _, err = cli(capsys, "eval", *chain, *base, "--out", str(tmp_path / "e"))
    assert code == 0, err
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["n_clips"] == 2 and m["subset"] == "s4-every-other"
    assert set(m["plugin_metrics"]) == {"fg-fraction", "any-hit"}
    assert m["plugin_metrics"]["fg-fraction"] == pytest.approx(_fg(tmp_path / "e" / "masks"), abs=1e-6)
    assert 0.0 <= m["plugin_metrics"]["any-hit"] <= 1.0

    code, out, err = cli(capsys, "score", *base, "--pred", str(tmp_path / "e" / "masks"), "--json")
    assert code == 0, err
    scored = json.loads(out)
    assert scored["n_clips"] == 2 and scored["miou"] == pytest.approx(m["miou"])

    pipeline = tmp_path / "saliency.yaml"
    pipeline.write_text("proposer: saliency\nfilters: [score-threshold]\n")
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"base: {pipeline}\naxes:\n  filter.score-threshold.threshold: [0.0, 0.99]\n")
    code, _, err = cli(capsys, "ablate", str(grid), *base, "--out", str(tmp_path / "ab"), "--no-cache")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "ab" / "results.csv").open()))
    assert [r["n_clips"] for r in rows] == ["2", "2"]
    assert float(rows[1]["fg-fraction"]) == 0.0 and "any-hit" in rows[0]

    code, _, err = cli(capsys, "eval", *chain, *base[:2], "--subset", "s4-every-othr", "--out", str(tmp_path / "x"))
    assert code == 2 and "did you mean 's4-every-other'" in err


def test_broken_metric_costs_only_its_own_number(s4: Path, tmp_path: Path) -> None:
    from avseg.eval.runner import run_eval
    from avseg.runtime import make_runtime

    class Bad:
        @hookimpl
        def register_metrics(self, register: Any) -> None:
            register("bad", lambda p, g: 1 / 0)
            register("fine", lambda p, g: 1.0)

    def evaluate(out: Path, reg: Any) -> dict[str, Any]:
        return run_eval(root=s4, subset="s4", split="test", out=out, limit=2, registry=reg, progress=False,
                        pipeline={"proposer": "saliency", "filters": ["score-threshold"]},
                        runtime=make_runtime(no_cache=True))

    m = evaluate(tmp_path / "bad", load_registry(plugins=[("bad", Bad())]))
    clean = evaluate(tmp_path / "clean", load_registry())
    # the clips keep their masks and official scores; the metric has no number, and says why
    assert m["failed"] == [] and m["n_clips"] == 2
    assert (m["miou"], m["fscore"]) == (clean["miou"], clean["fscore"])
    assert m["plugin_metrics"] == {"bad": None, "fine": 1.0}
    clip = m["plugin_metric_failures"][0].split(" on clip ")[1].split(":")[0]
    assert m["plugin_metric_failures"][0] == f"metric 'bad' failed on clip {clip}: ZeroDivisionError: division by zero"
    assert len(m["plugin_metric_failures"]) == 2


def test_preset_collisions_fail_only_where_used(capsys: pytest.CaptureFixture[str], installed: list[FakeDist],
                                                frames: Path, tmp_path: Path) -> None:
    """A plugin that reuses the preset name 'sam-bind' and the filter name 'nms', and ships a
    preset of its own that says bare 'nms' (meaning its own)."""
    def presets(register: Any) -> None:
        register("sam-bind", {"description": "theirs", "proposer": "saliency", "filters": ["nms"]})
        register("x-preset", {"description": "x", "proposer": "saliency", "filters": ["nms", "score-threshold"]})

    module("fakeplug_presets", register_presets=hookimpl(presets),
           register_filters=hookimpl(lambda register: register(OtherNMS)))
    installed.append(FakeDist("x-dist", "1.0", {"x": "fakeplug_presets"}))
    code, out, _ = cli(capsys, "presets")
    assert code == 0
    lines = {(line.split()[0], line.split()[2]): line for line in out.splitlines()}  # name, provenance, provider
    assert "[collision with x-dist: use 'avseg:sam-bind']" in lines[("sam-bind", "avseg")]
    assert "[collision with avseg: use 'x-dist:sam-bind']" in lines[("sam-bind", "x-dist")]
    assert "collision" not in lines[("owod-bind", "avseg")] and ("x-preset", "x-dist") in lines
    code, _, err = cli(capsys, "presets", "show", "sam-bind")
    assert code == 2 and "preset 'sam-bind' is registered by both" in err and "'x-dist:sam-bind'" in err
    code, out, err = cli(capsys, "presets", "show", "avseg:sam-bind")
    assert code == 0 and "type: sam-grid" in out and "description: 'CMSF SAM-BIND" in out, err
    code, out, err = cli(capsys, "presets", "show", "x-preset")
    assert code == 0 and "type: x-dist:nms" in out, err  # a bare name in a preset means its own distribution's
    code, _, err = cli(capsys, "run", "--proposer", "saliency", "--filter", "score-threshold", "--no-cache",
                       "--input", str(frames), "--out", str(tmp_path))
    assert code == 0, err  # no preset named: the collision is not in the way
