"""The official metrics are registered through ``register_metrics`` by a bundled plugin (as the
built-in dataset readers are), and an eval's ``metrics.json`` is what it was before: the official
scores at the top level from the official accumulators, no ``plugin_metrics`` for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avseg import hookimpl
from avseg.eval.builtin_metrics import OFFICIAL_METRICS
from avseg.eval.metrics import BinaryMetrics
from avseg.eval.runner import run_eval
from avseg.registry import load_registry
from avseg.runtime import Runtime
from avseg.testing import make_s4_tree


def _clips(n: int = 5, frames: int = 3, seed: int = 0) -> BinaryMetrics:
    rng = np.random.default_rng(seed)
    acc = BinaryMetrics()
    for c in range(n):
        gts = [(rng.random((8, 8)) > 0.6).astype(np.uint8) for _ in range(frames)]
        if c == 1:
            gts[0][:] = 0  # an empty GT: its frame has no F curve
        preds = [(rng.random((8, 8)) * 255).astype(np.uint8) for _ in range(frames)]
        acc.add_clip(f"c{c}", preds, gts)
    return acc


def test_the_official_metrics_come_through_the_hook_from_the_bundled_plugin() -> None:
    reg = load_registry(entry_points=False)
    got = {name: exts for name, exts in reg.metrics.items() if name in OFFICIAL_METRICS}
    assert set(got) == set(OFFICIAL_METRICS) == {"miou", "miou_frame", "fscore", "fscore_b1", "fscore_dataset"}
    for name, exts in got.items():
        assert exts[0].name == name and len(exts) == 1 and exts[0].provider == "avseg" and exts[0].plugin == "metrics"
        assert exts[0].obj.per == "dataset"
    # computed by the official accumulators, not the plugin-metric path
    assert not set(OFFICIAL_METRICS) & set(reg.metric_table())


@pytest.mark.parametrize("batch_videos", [1, 2, 4])
def test_each_registered_function_is_the_official_value(batch_videos: int) -> None:
    acc = _clips()
    states = [acc.clip_scores(f"c{c}").to_dict() for c in range(5)]
    expected = acc.result(batch_videos=batch_videos)
    reg = load_registry(entry_points=False)
    for name in OFFICIAL_METRICS:
        assert reg.metrics[name][0].obj.fn(states, batch_videos) == expected[name], name
    # the clips are such that batching changes the official scores (else batch_videos could be ignored)
    other = acc.result(batch_videos=batch_videos + 1)
    assert expected["miou"] != other["miou"] and expected["fscore"] != other["fscore"]


class TakesMiou:
    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register("fg", lambda p, g: float(p.mean()))
        register("miou", lambda p, g: 0.0)


class DatasetLevel:
    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register("mine", lambda clips, bv: 0.0, per="dataset")


def test_a_plugin_cannot_take_an_official_metric_name() -> None:
    reg = load_registry(plugins=[("takes", TakesMiou())], entry_points=False)
    broken = {b.plugin: b.reason for b in reg.broken}
    assert broken == {"takes": "metric 'miou' is built in; choose another name"}
    assert "fg" not in reg.metrics and [e.provider for e in reg.metrics["miou"]] == ["avseg"]


def test_per_dataset_is_for_the_official_metrics_only() -> None:
    reg = load_registry(plugins=[("level", DatasetLevel())], entry_points=False)
    assert [b.plugin for b in reg.broken] == ["level"]
    assert "per='frame' or 'clip'" in reg.broken[0].reason and "mine" not in reg.metrics


def test_eval_metrics_json_keeps_the_official_keys_and_no_plugin_metrics(tmp_path: Path) -> None:
    root = make_s4_tree(tmp_path / "s4", n_per_split={"test": 2}, size=32)
    m = run_eval(root=root, subset="s4", split="test", out=tmp_path / "out", registry=load_registry(),
                 progress=False, pipeline={"proposer": "saliency", "filters": ["score-threshold"],
                           "sets": ["filter.score-threshold.threshold=0.0"]}, runtime=Runtime(device="cpu"))
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(saved)[:8] == ["miou", "miou_frame", "fscore", "fscore_b1", "fscore_dataset", "n_frames", "n_clips",
                               "batch_videos"]
    assert "plugin_metrics" not in saved and "plugin_metric_failures" not in saved
    assert saved["miou"] == m["miou"] and isinstance(saved["n_clips"], int) and saved["n_clips"] == 2
    header = (tmp_path / "out" / "per_clip.csv").read_text().splitlines()[0]
    assert header == "clip,category,j,f,n_frames,time_s"
