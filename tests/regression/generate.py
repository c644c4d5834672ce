"""Regenerate the regression snapshot: what every bundled preset gives on synthetic inputs.

Run from the repository root with ``python -m tests.regression.generate``. It writes

- ``presets.json``: each case's composed spec (a case already there keeps its stored spec);
- ``presets.npz``: each case's masks on a synthetic 3-frame clip (``--tiny`` weights);
- ``counters.json``: each case's run counters (what was computed, how often: their meaning);
- ``plans.json``: what each preset file (with the case's overrides) executes today;
- ``eval.json``: ``eval``'s metrics of a few presets on a small synthetic S4 tree.

tests/test_regression_presets.py checks that today's code still gives exactly these. Regenerate
only when a preset's output is meant to change, and say why in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).parent
_OWOD_KEEP = ["filter.score-threshold.threshold=0.0"]
_TAGS_KEEP = ["filter.tag-threshold.threshold=0.0"]
CASES: dict[str, tuple[str, list[str]]] = {
    # name: (preset, --set overrides that make tiny random weights keep something)
    "at-gdino-sam": ("at-gdino-sam", ["filter.tag-threshold.threshold=0.0", "proposer.box_threshold=0.0",
                                      "proposer.text_threshold=0.0"]),
    "owod-bind": ("owod-bind", ["filter.score-threshold.threshold=0.0", "filter.bind.cosine_threshold=-1.0"]),
    "owod-bind-softmax": ("owod-bind-softmax", ["filter.score-threshold.threshold=0.0",
                                                "filter.bind.softmax_threshold=0.0"]),
    "sam-bind": ("sam-bind", ["proposer.points_per_side=4", "proposer.pred_iou_thresh=0.0",
                              "proposer.stability_score_thresh=0.0", "filter.bind.cosine_threshold=-1.0"]),
    "bavs": ("bavs", ["proposer.box_threshold=0.0", "filter.avis.tag_threshold=0.0", "filter.avis.match=broad",
                      "filter.avis.link_threshold=-1.0"]),
    # every other bundled preset (added with the steps/kinds refactor of issue 22)
    "at-gdino-sam-plus": ("at-gdino-sam-plus", [*_TAGS_KEEP, "proposer.box_threshold=0.0",
                                                "proposer.text_threshold=0.0"]),
    "at-gdino-sam2": ("at-gdino-sam2", [*_TAGS_KEEP, "proposer.box_threshold=0.0", "proposer.text_threshold=0.0"]),
    "at-sam3": ("at-sam3", _TAGS_KEEP),
    "owod-bind-authors": ("owod-bind-authors", [*_OWOD_KEEP, "filter.bind.softmax_threshold=0.0"]),
    "owod-bind-sam2": ("owod-bind-sam2", [*_OWOD_KEEP, "filter.bind.cosine_threshold=-1.0"]),
}
#: presets whose eval metrics are frozen: name -> (preset, --set overrides)
EVAL_CASES: dict[str, tuple[str, list[str]]] = {
    "owod-bind": CASES["owod-bind"],
    "at-gdino-sam": CASES["at-gdino-sam"],
    "owod-bind-authors": CASES["owod-bind-authors"],
}
#: the metrics.json keys that describe the masks (not timings, paths or versions)
EVAL_KEYS = ("miou", "fscore", "n_clips", "n_frames", "counters")


def make_clip(tmp: Path):  # type: ignore[no-untyped-def]
    from avseg.data import open_input
    from avseg.testing import make_frames_folder

    return open_input(make_frames_folder(tmp / "frames", n=3, size=64), fps=1.0)


def run_case_full(spec: dict, clip):  # type: ignore[no-untyped-def]
    """The masks per frame and the run counters of ``spec`` on ``clip`` (fresh tiny runtime)."""
    from avseg.pipeline import Pipeline
    from avseg.registry import load_registry
    from avseg.runtime import Runtime
    from avseg.spec import resolve

    reg = load_registry()
    runtime = Runtime(tiny=True)
    pipe = Pipeline(resolve(spec, reg), runtime)
    masks = [fr.mask for fr in pipe.run_clip(clip).frames]
    return masks, dict(sorted((k, int(v)) for k, v in runtime.counters.items() if v))


def run_case(spec: dict, clip):  # type: ignore[no-untyped-def]
    return run_case_full(spec, clip)[0]


def plan(spec: dict) -> dict[str, Any]:  # type: ignore[type-arg]
    """What a spec executes: each step's kind, name and full config in order, the combiner, the audio."""
    from avseg.registry import load_registry
    from avseg.spec import resolve

    r = resolve(spec, load_registry())
    return json.loads(json.dumps({
        "steps": [[s.kind, s.name, s.config.model_dump(mode="json")] for s in r.steps],
        "combiner": r.combiner and [r.combiner.name, r.combiner.config.model_dump(mode="json")],
        "audio": r.audio.model_dump(mode="json"),
    }))


def make_s4(tmp: Path) -> Path:
    from avseg.testing import make_s4_tree

    return make_s4_tree(tmp / "s4", n_per_split={"test": 2}, size=48)


def eval_case(preset: str, sets: list[str], root: Path, out: Path) -> dict[str, Any]:
    """``eval``'s frozen metrics of ``preset`` on the S4 tree at ``root``."""
    import avseg

    pipe = avseg.load(preset, tiny=True, cache=False, set=sets)
    metrics = pipe.evaluate(root, "s4", out=out)
    return {k: metrics[k] for k in EVAL_KEYS if k in metrics}


def main() -> None:
    import tempfile

    from avseg.registry import load_registry
    from avseg.spec import compose

    reg = load_registry()
    old = json.loads((HERE / "presets.json").read_text()) if (HERE / "presets.json").is_file() else {}
    old_masks = dict(np.load(HERE / "presets.npz")) if (HERE / "presets.npz").is_file() else {}
    specs, arrays, counters, evals, plans = {}, {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as d:
        clip = make_clip(Path(d))
        for name, (preset, sets) in CASES.items():
            spec = old.get(name) or compose(preset, sets=sets, registry=reg)
            masks, counts = run_case_full(spec, clip)
            if name in old_masks and not np.array_equal(np.stack(masks), old_masks[name]):
                print(f"{name}: masks CHANGED from the stored snapshot")
            specs[name], arrays[name], counters[name] = spec, np.stack(masks), counts
            plans[name] = plan(compose(preset, sets=sets, registry=reg))
            print(f"{name}: {[int(m.sum()) for m in masks]} mask pixels per frame")
        root = make_s4(Path(d))
        for name, (preset, sets) in EVAL_CASES.items():
            evals[name] = eval_case(preset, sets, root, Path(d) / f"eval-{name}")
            print(f"eval {name}: {evals[name]}")
    np.savez_compressed(HERE / "presets.npz", **arrays)
    (HERE / "presets.json").write_text(json.dumps(specs, indent=2, sort_keys=True) + "\n")
    (HERE / "counters.json").write_text(json.dumps(counters, indent=2, sort_keys=True) + "\n")
    (HERE / "plans.json").write_text(json.dumps(plans, indent=2, sort_keys=True) + "\n")
    (HERE / "eval.json").write_text(json.dumps(evals, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
