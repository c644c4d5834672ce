"""Regenerate tests/regression/presets.npz: the masks the bundled presets give on a synthetic clip.

Run from the repository root with ``python -m tests.regression.generate``. The snapshot was taken
with the executor *before* the clip-level refactor; tests/test_regression_presets.py checks that
today's executor still gives exactly these masks for the same specs. Regenerate only when a
preset's output is meant to change, and say why in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).parent
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
}


def make_clip(tmp: Path):  # type: ignore[no-untyped-def]
    from avseg.data import open_input
    from avseg.testing import make_frames_folder

    return open_input(make_frames_folder(tmp / "frames", n=3, size=64), fps=1.0)


def run_case(spec: dict, clip):  # type: ignore[no-untyped-def]
    from avseg.pipeline import Pipeline
    from avseg.registry import load_registry
    from avseg.runtime import Runtime
    from avseg.spec import resolve

    reg = load_registry()
    pipe = Pipeline(resolve(spec, reg), Runtime(tiny=True))
    return [fr.mask for fr in pipe.run_clip(clip).frames]


def main() -> None:
    import tempfile

    from avseg.registry import load_registry
    from avseg.spec import compose

    reg = load_registry()
    specs, arrays = {}, {}
    with tempfile.TemporaryDirectory() as d:
        clip = make_clip(Path(d))
        for name, (preset, sets) in CASES.items():
            spec = compose(preset, sets=sets, registry=reg)
            masks = run_case(spec, clip)
            specs[name] = spec
            arrays[name] = np.stack(masks)
            print(f"{name}: {[int(m.sum()) for m in masks]} mask pixels per frame")
    np.savez_compressed(HERE / "presets.npz", **arrays)
    (HERE / "presets.json").write_text(json.dumps(specs, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
