"""Issue 24: a pipeline that keeps nothing is visible, plugin metrics cover the official metrics'
frames (failed clips included as empty predictions, or excluded for all), and a metric name two
distributions register is an error naming both."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avseg import hookimpl
from avseg.data import open_dataset
from avseg.errors import AmbiguousComponent
from avseg.eval import emptiness
from avseg.eval.runner import print_summary, run_eval
from avseg.eval.score import score_predictions
from avseg.registry import load_registry
from avseg.report import write_report
from avseg.runtime import Runtime
from avseg.testing import corrupt_file, make_s4_tree
from tests.helpers import cli


class NonEmpty:
    """A per-frame plugin metric: 1 when the prediction has a foreground pixel."""

    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register("non-empty", lambda p, g: float(np.asarray(p).any()))


def _eval(root: Path, out: Path, reg: Any = None, threshold: float = 0.0, **kw: Any) -> dict[str, Any]:
    return run_eval(root=root, subset="s4", split="test", out=out, registry=reg or load_registry(), progress=False,
                    pipeline={"proposer": "saliency", "filters": ["score-threshold"],
                              "sets": [f"filter.score-threshold.threshold={threshold}"]},
                    runtime=Runtime(device="cpu"), **kw)


@pytest.fixture(scope="module")
def s4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_s4_tree(tmp_path_factory.mktemp("s4"), n_per_split={"test": 3}, size=32)


def test_counts_and_warning_boundary() -> None:
    full, empty = np.full((4, 4), 255, np.uint8), np.zeros((4, 4), np.uint8)
    gt_pos, gt_neg = np.ones((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    assert emptiness.clip_counts([empty, full, empty], [gt_pos, gt_pos, gt_neg]) == [3, 2, 2, 1]
    assert emptiness.is_empty(np.full((2, 2), 127, np.uint8)) and not emptiness.is_empty(np.full((2, 2), 128, np.uint8))
    s = emptiness.summarise([{"empty": [4, 2, 2, 1]}, {"empty": "tampered"}, {}])
    assert s["empty_prediction_share"] == 0.5 and s["gt_positive_predicted_empty_share"] == 0.5
    assert emptiness.dead_warning(s) is None  # exactly half: not "most"
    s = emptiness.summarise([{"empty": [4, 3, 3, 2]}])
    line = emptiness.dead_warning(s)
    assert line is not None and "\n" not in line and "67%" in line and "those of an empty prediction" in line


def test_a_pipeline_that_keeps_nothing_is_visible(s4: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    base = ["eval", "--root", str(s4), "--subset", "s4", "--proposer", "saliency", "--no-cache"]
    code, out, err = cli(capsys, *base, "--filter", "score-threshold", "--set", "filter.score-threshold.threshold=1.0",
                         "--out", str(tmp_path / "dead"))
    m = json.loads((tmp_path / "dead" / "metrics.json").read_text())
    assert code == 0 and m["empty_prediction_share"] == 1.0 and m["gt_positive_predicted_empty_share"] == 1.0
    assert m["n_frames_predicted_empty"] == m["n_frames"] == 15
    warned = [ln for ln in err.splitlines() if "those of an empty prediction" in ln]
    assert len(warned) == 1 and warned[0].startswith("warning: 100% of the frames with a sounding object")
    assert "frames predicted empty" in out and "100.0%" in out
    html = write_report(tmp_path / "dead").read_text()
    assert "those of an empty prediction" in html and "GT-positive frames predicted empty" in html
    # a pipeline that keeps something: the shares, no warning
    code, out, err = cli(capsys, *base, "--filter", "score-threshold", "--set", "filter.score-threshold.threshold=0.0",
                         "--out", str(tmp_path / "alive"))
    m = json.loads((tmp_path / "alive" / "metrics.json").read_text())
    assert code == 0 and m["gt_positive_predicted_empty_share"] < 0.5 and "empty prediction" not in err


def test_plugin_metrics_cover_the_official_frames_with_a_failed_clip(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = make_s4_tree(tmp_path / "data", n_per_split={"test": 4}, size=32)
    ds = open_dataset(root, "s4", "test")
    bad = ds.ids[2]
    corrupt_file(ds.frame_path(ds.record(bad), 1))
    reg = load_registry(plugins=[("nonempty", NonEmpty())])
    m = _eval(root, tmp_path / "out", reg)
    assert [f["clip"] for f in m["failed"]] == [bad] and m["n_frames"] == 20
    # over the same 20 frames as miou: the failed clip's 5 frames count as empty predictions
    assert m["empty_prediction_share"] < 1.0
    assert m["plugin_metrics"]["non-empty"] == pytest.approx(1.0 - m["empty_prediction_share"], abs=1e-6)
    assert m["n_frames_predicted_empty"] >= 5
    # excluded for all with --exclude-failed: 15 frames
    ex = _eval(root, tmp_path / "ex", reg, exclude_failed=True)
    assert ex["n_frames"] == 15
    assert ex["plugin_metrics"]["non-empty"] == pytest.approx(1.0 - ex["empty_prediction_share"], abs=1e-6)
    assert ex["plugin_metrics"]["non-empty"] > m["plugin_metrics"]["non-empty"]
    # in the printed table, per_clip.csv and the report
    print_summary(m)
    out = capsys.readouterr().out
    assert "non-empty (plugin)" in out and f"{m['plugin_metrics']['non-empty']:.4f}" in out
    rows = list(csv.DictReader((tmp_path / "out" / "per_clip.csv").open()))
    assert all(r["non-empty"] != "" for r in rows) and len(rows) == 3
    html = write_report(tmp_path / "out").read_text()
    assert "non-empty (plugin)" in html
    # and in `score`, over the written masks (the failed clip's missing masks count as empty)
    s = score_predictions(root, "s4", "test", tmp_path / "out" / "masks", registry=reg)
    assert s["plugin_metrics"]["non-empty"] == pytest.approx(m["plugin_metrics"]["non-empty"], abs=1e-6)


def test_a_metric_name_from_two_distributions_is_an_error_naming_both(tmp_path: Path) -> None:
    class Other:
        @hookimpl
        def register_metrics(self, register: Any) -> None:
            register("non-empty", lambda p, g: 0.0)

    reg = load_registry(plugins=[("nonempty", NonEmpty()), ("other", Other())])
    with pytest.raises(AmbiguousComponent) as exc:
        reg.metric_table()
    msg = str(exc.value)
    assert "metric 'non-empty' is registered by both" in msg and "nonempty" in msg and "other" in msg
    assert "\n" not in msg
    root = make_s4_tree(tmp_path / "data", n_per_split={"test": 1}, size=32)
    with pytest.raises(AmbiguousComponent, match="metric 'non-empty'"):
        _eval(root, tmp_path / "out", reg)
    assert not (tmp_path / "out" / "metrics.json").exists()
