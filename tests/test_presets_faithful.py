"""Paper presets are the paper: provenance marks, no hidden deny list, one NMS at 0.5 in sam-bind,
tau_BB / NMS / top-k of owod-bind as traced filters that give what the old in-proposer steps gave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avseg.audioset import NON_VISUAL_TAGS
from avseg.errors import ConfigError
from avseg.registry import load_registry
from avseg.spec import all_presets, compose, resolve
from tests.deps import requires
from tests.helpers import cli, steps_of

REGISTRY = load_registry()
PAPER = {"at-gdino-sam", "owod-bind", "sam-bind"}


def _resolved(name: str, *sets: str):  # type: ignore[no-untyped-def]
    return resolve(compose(name, sets=list(sets), registry=REGISTRY), REGISTRY)


def test_every_preset_is_marked(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "presets")
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}
    assert set(rows) == set(all_presets(REGISTRY))
    assert set(rows.values()) <= {"paper", "authors-code", "extended"}
    assert {n for n, p in rows.items() if p == "paper"} >= PAPER
    assert rows["at-gdino-sam-plus"] == "extended" and rows["owod-bind-softmax"] == "extended"
    for name in sorted(rows):
        code, out, _ = cli(capsys, "presets", "show", name)
        assert code == 0 and f"provenance: {rows[name]}\n" in out


def test_a_bad_provenance_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text("provenance: papr\nproposer: {type: owod}\nsegmenter: {type: sam}\n")
    with pytest.raises(ConfigError, match="provenance: 'papr' is not one of paper, authors-code, extended"):
        compose(str(spec), registry=REGISTRY)
    code, _, err = cli(capsys, "presets", "show", str(spec))
    assert code == 2 and err.count("\n") == 1 and "did you mean 'paper'" in err


def test_at_gdino_sam_has_no_deny_list_and_plus_has_the_documented_one() -> None:
    paper = _resolved("at-gdino-sam").of_kind("filter")[0]
    assert paper.name == "tag-threshold" and paper.config.deny == []  # type: ignore[attr-defined]
    plus = _resolved("at-gdino-sam-plus").of_kind("filter")[0]
    assert sorted(plus.config.deny) == sorted(NON_VISUAL_TAGS) and len(plus.config.deny) == 31  # type: ignore[attr-defined]


def test_sam_bind_has_one_nms_at_0_5_and_random_points() -> None:
    rs = _resolved("sam-bind")
    cfg = rs.proposer.config
    assert (rs.proposer.name, cfg.box_nms_thresh, cfg.points) == ("sam-grid", 0.5, "random")  # type: ignore[attr-defined]
    assert [f.name for f in rs.of_kind("filter")] == ["bind"]  # no extra mask NMS


def test_owod_bind_thresholds_are_filters() -> None:
    rs = _resolved("owod-bind")
    cfg = rs.proposer.config
    assert (cfg.box_threshold, cfg.nms_iou, cfg.top_k) == (None, None, None)  # type: ignore[attr-defined]
    assert [(f.name, f.config.threshold if f.name == "score-threshold" else f.config.cosine_threshold)  # type: ignore[attr-defined]
            for f in rs.of_kind("filter")] == [("score-threshold", 0.5), ("bind", 0.7)]


def test_random_points_are_seeded_one_per_grid_cell() -> None:
    from avseg_sam.grid import random_point_grid
    from segment_anything.utils.amg import build_point_grid

    n = 6
    pts, grid = random_point_grid(n, 0), build_point_grid(n)
    assert pts.shape == (n * n, 2) and np.array_equal(pts, random_point_grid(n, 0))
    assert not np.array_equal(pts, random_point_grid(n, 1))
    # point k sits in the cell whose centre is SAM's grid point k
    assert np.array_equal(np.floor(pts * n), np.floor(grid * n))
    assert not np.allclose(pts, grid)


def test_sam_grid_random_points_reach_the_generator() -> None:
    requires("segment_anything")
    from avseg_sam.grid import SamGridConfig, SamGridProposer, random_point_grid

    from avseg.runtime import Runtime

    rt = Runtime(device="cpu", tiny=True)
    prop = SamGridProposer(SamGridConfig(points_per_side=3, points="random", seed=4, box_nms_thresh=0.5), rt)
    assert np.array_equal(prop.generator.point_grids[0], random_point_grid(3, 4))
    assert prop.generator.box_nms_thresh == 0.5
    grid = SamGridProposer(SamGridConfig(points_per_side=3), rt)
    assert not np.array_equal(grid.generator.point_grids[0], prop.generator.point_grids[0])


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from avseg.data import open_input
    from avseg.testing import make_frames_folder

    return open_input(make_frames_folder(tmp_path_factory.mktemp("owod") / "f", n=2, size=64), fps=1.0)


def test_owod_filters_give_what_the_in_proposer_steps_gave(clip) -> None:  # type: ignore[no-untyped-def]
    """Old: tau_BB, NMS and top-k inside the proposer. New: raw candidates, then score-threshold,
    nms (box IoU) and top-k filters. Same parameters, same kept boxes and masks; the drops now show
    in the trace."""
    requires("transformers")
    from avseg.pipeline import Pipeline
    from avseg.runtime import Runtime

    thr, iou, k = 0.505, 0.01, 3  # tiny OWLv2 scores lie near 0.5 and its boxes barely overlap
    base = {"tagger": None, "embedder": None, "segmenter": {"type": "sam"}}
    old = {**base, "proposer": {"type": "owod", "box_threshold": thr, "nms_iou": iou, "top_k": k}, "filters": []}
    new = {**base, "proposer": {"type": "owod"}, "filters": [
        {"type": "score-threshold", "threshold": thr}, {"type": "nms", "iou_threshold": iou, "use_masks": False},
        {"type": "top-k", "k": k}]}
    rt = Runtime(device="cpu", tiny=True)
    a = Pipeline(resolve(old, REGISTRY), rt).run_clip(clip)
    b = Pipeline(resolve(new, REGISTRY), rt).run_clip(clip)
    dropped_by: set[str] = set()
    for fa, fb in zip(a.frames, b.frames, strict=True):
        assert np.array_equal(fa.kept.boxes, fb.kept.boxes) and np.array_equal(fa.kept.scores, fb.kept.scores)
        assert np.array_equal(fa.mask, fb.mask) and fa.mask.any()
        dropped_by |= {r["dropped_by"] for r in fb.trace if not r["kept"]}
        assert not any(not r["kept"] for r in fa.trace)  # the old way traced nothing
    assert dropped_by == {"score-threshold", "nms", "top-k"}  # every step dropped something, visibly


def test_owod_box_threshold_still_accepted_for_stored_specs() -> None:
    rs = resolve({"proposer": {"type": "owod", "box_threshold": 0.0}, "segmenter": {"type": "sam"}}, REGISTRY)
    assert rs.proposer.config.box_threshold == 0.0  # type: ignore[attr-defined]


def test_bind_modes_grid_runs_tiny(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """examples/grids/bind-modes.yaml: every mode over its range, one clip, models computed once."""
    import csv
    import json

    from avseg.testing import make_s4_tree

    root = make_s4_tree(tmp_path / "s4", n_per_split={"test": 1}, size=48)
    grid = Path(__file__).parents[1] / "examples" / "grids" / "bind-modes.yaml"
    out = tmp_path / "out"
    code, _, err = cli(capsys, "ablate", str(grid), "--root", str(root), "--subset", "s4", "--split", "test",
                       "--out", str(out), "--tiny", "--limit", "1", "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, err
    rows = list(csv.DictReader((out / "results.csv").open()))
    expected = {"cosine": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7], "softmax": [0.1, 0.2, 0.3, 0.4, 0.5],
                "minmax": [0.5, 0.6, 0.7, 0.8, 0.9]}
    got: dict[str, list[float]] = {}
    for r in rows:
        assert r["failed"] == "0" and r["n_clips"] == "1"
        bind = steps_of(json.loads((out / "cells" / r["cell"] / "config.json").read_text())["pipeline"], "filter")[-1]
        mode = r["filter.bind.mode"]
        assert bind["mode"] == mode and bind[f"{mode}_threshold"] == float(r[f"filter.bind.{mode}_threshold"])
        got.setdefault(mode, []).append(bind[f"{mode}_threshold"])
    assert got == expected
    assert all(int(r["computed"]) > 0 for r in rows[:1]) and (out / "plot_miou_vs_filter.bind.minmax_threshold.png").is_file()


def test_reproducing_doc_states_the_rule_and_the_grid() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "reproducing.md").read_text()
    assert "avseg ablate examples/grids/bind-modes.yaml" in doc
    for name, spec in all_presets(REGISTRY).items():
        if spec.get("provenance"):  # every bundled preset says what it is, and the doc agrees
            row = next(line for line in doc.splitlines() if line.startswith(f"| `{spec['provenance']}`"))
            assert f"`{name}`" in row, f"docs/reproducing.md does not list {name} as {spec['provenance']}"
