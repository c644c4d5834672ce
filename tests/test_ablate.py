"""`avseg ablate`: grids, tables, plots, cache reuse across cells, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from avseg.ablate import cell_pipeline, expand_cells, load_grid
from avseg.cli import main
from avseg.errors import ConfigError

S4_TREE = {"n_per_split": {"test": 2}, "size": 48}  # the shared s4 fixture (tests/conftest.py)


def ablate(capsys: pytest.CaptureFixture[str], *args: str) -> int:
    with pytest.raises(SystemExit) as e:
        main(["ablate", *args])
    capsys.readouterr()
    return int(e.value.code or 0)


def test_cells_are_the_cartesian_product_or_an_explicit_list(tmp_path: Path) -> None:
    g = {"base": "owod-bind", "axes": {"proposer": ["owod", "sam-grid"], "filter.bind.cosine_threshold": [0.5, 0.7]}}
    cells = expand_cells(g)
    assert len(cells) == 4 and cells[1] == {"proposer": "owod", "filter.bind.cosine_threshold": 0.7}
    assert cell_pipeline(g, cells[1]) == {"preset": "owod-bind", "sets": ["filter.bind.cosine_threshold=0.7"], "proposer": "owod"}
    assert expand_cells({"cells": [{"proposer": "owod"}]}) == [{"proposer": "owod"}]
    bad = tmp_path / "bad.yaml"
    bad.write_text("axes: {proposer: owod}\n")
    with pytest.raises(ConfigError, match="non-empty list"):
        expand_cells(load_grid(bad), bad)


def test_threshold_sweep_reuses_every_model_stage(capsys: pytest.CaptureFixture[str], s4: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "base: owod-bind\n"
        "axes:\n"
        "  filter.bind.cosine_threshold: [0.0, 0.5, 0.9]\n"
    )
    out = tmp_path / "out"
    args = [str(grid), "--root", str(s4), "--subset", "s4", "--split", "test", "--out", str(out), "--tiny",
            "--cache-dir", str(tmp_path / "cache")]
    assert ablate(capsys, *args) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["filter.bind.cosine_threshold"] for r in rows] == ["0.0", "0.5", "0.9"]
    assert all(r["n_clips"] == "2" and r["failed"] == "0" for r in rows)
    first, *rest = rows
    assert int(first["computed"]) > 0
    for r in rest:  # model stages come from the cache; only SAM's decoder may see new boxes
        counters = json.loads((out / "cells" / r["cell"] / "metrics.json").read_text())["counters"]
        recomputed = {k for k, v in counters.items() if k.endswith(".computed") and v}
        assert recomputed <= {"segmenter.sam.computed"}, recomputed
        assert counters.get("sam.image_encoder", 0) == 0
        assert counters["proposer.owod.cache_hit"] == 2 and counters["embedder.imagebind.regions.cache_hit"] == 2
    md = (out / "results.md").read_text()
    assert md.startswith("| cell |") and md.count("\n") == 5
    plots = sorted(p.name for p in out.glob("plot_*.png"))
    assert plots == ["plot_fscore_dataset_vs_filter.bind.cosine_threshold.png", "plot_fscore_vs_filter.bind.cosine_threshold.png",
                     "plot_miou_vs_filter.bind.cosine_threshold.png"]
    for r in rows:
        cfg = json.loads((out / "cells" / r["cell"] / "config.json").read_text())
        [bind] = [x["filter"] for x in cfg["pipeline"]["steps"] if x.get("filter", {}).get("type") == "bind"]
        assert bind["cosine_threshold"] == float(r["filter.bind.cosine_threshold"])
    # a rerun (as after a kill) resumes: every clip of every cell is already finished
    assert ablate(capsys, *args) == 0
    for r in rows:
        m = json.loads((out / "cells" / r["cell"] / "metrics.json").read_text())
        assert m["n_skipped_finished"] == 2


def test_a_bad_cell_fails_before_anything_runs(capsys: pytest.CaptureFixture[str], s4: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: owod-bind\naxes:\n  proposer: [owod, owdo]\n")
    out = tmp_path / "out"
    assert ablate(capsys, str(grid), "--root", str(s4), "--subset", "s4", "--out", str(out), "--tiny") == 2
    assert not (out / "cells").exists()


def _docs_grids() -> list[str]:
    import re

    text = (Path(__file__).parent.parent / "docs" / "ablations.md").read_text()
    return re.findall(r"```yaml\n(.*?)```", text, flags=re.S)


def test_docs_examples_are_valid_grids(tmp_path: Path) -> None:
    """Every grid in docs/ablations.md passes the checks that run before any cell (no model loads)."""
    from avseg.ablate import apply_scoped_axes, cell_name, validate_cells
    from avseg.registry import load_registry

    reg = load_registry()
    grids = _docs_grids()
    assert len(grids) == 3
    counts = []
    for i, text in enumerate(grids):
        path = tmp_path / f"grid{i}.yaml"
        path.write_text(text)
        grid = load_grid(path)
        cells = apply_scoped_axes(grid, expand_cells(grid, path), reg, path)
        validate_cells(grid, [cell_name(j, c) for j, c in enumerate(cells)], cells, reg)
        counts.append(len(cells))
    assert counts == [8, 3, 3]


def test_cells_with_different_keys_run_and_plot(capsys: pytest.CaptureFixture[str], s4: Path, tmp_path: Path) -> None:
    """Explicit cells that set different keys (as in docs/ablations.md) run, tabulate and plot;
    a weight-free chain keeps it fast."""
    pipeline = tmp_path / "saliency.yaml"
    pipeline.write_text("proposer: saliency\nfilters: [score-threshold]\n")
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"base: {pipeline}\ncells:\n"
                    "  - {filter.score-threshold.threshold: 0.0}\n"
                    "  - {filter.score-threshold.threshold: 0.9, proposer.blur: 7}\n"
                    "  - {proposer.blur: 7}\n")
    out = tmp_path / "out"
    assert ablate(capsys, str(grid), "--root", str(s4), "--subset", "s4", "--out", str(out), "--no-cache",
                  "--limit", "1") == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["filter.score-threshold.threshold"] for r in rows] == ["0.0", "0.9", ""]
    assert [r["proposer.blur"] for r in rows] == ["", "7", "7"]
    assert all(r["n_clips"] == "1" for r in rows)
    # each cell's share of GT-positive frames predicted empty, as in its metrics.json
    for r in rows:
        m = json.loads((out / "cells" / r["cell"] / "metrics.json").read_text())
        assert float(r["gt_positive_predicted_empty"]) == m["gt_positive_predicted_empty_share"]
    # the threshold varies over the cells that have it; blur has one value: no plot for it
    plots = sorted(p.name for p in out.glob("plot_*.png"))
    assert plots == [f"plot_{m}_vs_filter.score-threshold.threshold.png" for m in ("fscore_dataset", "fscore", "miou")]


def test_scoped_axis_applies_only_to_its_component(tmp_path: Path) -> None:
    from avseg.ablate import apply_scoped_axes
    from avseg.registry import load_registry

    reg = load_registry()
    g = {"base": "owod-bind", "axes": {"proposer": ["owod", "sam-grid"], "proposer[owod].box_threshold": [0.3, 0.5]}}
    cells = apply_scoped_axes(g, expand_cells(g), reg)
    assert cells == [{"proposer": "owod", "proposer[owod].box_threshold": 0.3},
                     {"proposer": "owod", "proposer[owod].box_threshold": 0.5}, {"proposer": "sam-grid"}]
    assert cell_pipeline(g, cells[1])["sets"] == ["proposer.box_threshold=0.5"]
    g = {"base": "owod-bind", "axes": {"filter[bind].cosine_threshold": [0.1], "filters": [["bind"], ["score-threshold"]]}}
    cells = apply_scoped_axes(g, expand_cells(g), reg)
    assert cells == [{"filter[bind].cosine_threshold": 0.1, "filters": ["bind"]}, {"filters": ["score-threshold"]}]
    assert cell_pipeline(g, cells[0])["sets"] == ["filter.bind.cosine_threshold=0.1"]
    g = {"base": "owod-bind", "axes": {"proposer[motion].threshold": [0.1]}}
    with pytest.raises(ConfigError, match=r"axis 'proposer\[motion\].threshold' applies to no cell: no cell uses "
                                          r"proposer 'motion'"):
        apply_scoped_axes(g, expand_cells(g), reg)


@pytest.mark.parametrize("text,needle", [
    ("base: owod-bind\naxes:\n  proposer: [[owod, sam-grid]]\n",
     "axis 'proposer': expected a component name, got a list [owod, sam-grid]"),
    ("base: owod-bind\ncells: []\n", "'cells' is empty"),
    ("base: [owod-bind]\naxes:\n  filter.bind.cosine_threshold: [0.5]\n",
     "base: expected a preset name or a pipeline YAML path, got a list [owod-bind]"),
    ("base: owod-bind\nset: proposer.top_k=5\naxes:\n  filter.bind.cosine_threshold: [0.5]\n",
     "set: expected a list of KEY=VALUE strings"),
    ("base: owod-bind\naxes:\n  proposer: [{type: owod, box_threshold: 0.3}]\n",
     "axis 'proposer': expected a component name, got a mapping {box_threshold: 0.3, type: owod}; vary its "
     "parameters with a 'proposer[NAME].KEY' axis"),
    ("base: owod-bind\ncells:\n  - {filters: [[bind]]}\n", "cells[0]: axis 'filters': expected a filter name"),
    (b"base: owod-bind\naxes:\n  filter.bind.cosine_threshold: [0.5]\n# caf\xe9\n", "not UTF-8 text"),
])
def test_bad_grids_are_one_line(capsys: pytest.CaptureFixture[str], s4: Path, tmp_path: Path,
                                text: str | bytes, needle: str) -> None:
    grid = tmp_path / "grid.yaml"
    if isinstance(text, bytes):
        grid.write_bytes(text)
    else:
        grid.write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["ablate", str(grid), "--root", str(s4), "--subset", "s4", "--out", str(tmp_path / "o"), "--tiny"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_no_numeric_axis_claims_no_plots(capsys: pytest.CaptureFixture[str], s4: Path, tmp_path: Path) -> None:
    """One value per axis: no plot is drawn, the CLI says so, and an earlier grid's plot is gone."""
    pipeline = tmp_path / "saliency.yaml"
    pipeline.write_text("proposer: saliency\nfilters: [score-threshold]\n")
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"base: {pipeline}\ncells:\n  - {{proposer.blur: 7}}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "plot_miou_vs_old.png").write_bytes(b"an earlier grid's plot")
    with pytest.raises(SystemExit) as e:
        main(["ablate", str(grid), "--root", str(s4), "--subset", "s4", "--out", str(out), "--no-cache",
              "--limit", "1", "--no-report"])
    printed = capsys.readouterr().out
    assert (e.value.code or 0) == 0
    assert not list(out.glob("plot_*.png"))
    assert "no plots (no axis with two or more numeric values)" in printed and "and plots" not in printed


def test_scoped_axis_on_a_steps_preset_runs(capsys: pytest.CaptureFixture[str], s4: Path, tmp_path: Path) -> None:
    """owod-bind-authors is written as steps: a scoped axis on it crashed with KeyError 'filters'."""
    from avseg.ablate import apply_scoped_axes
    from avseg.registry import load_registry

    g = {"base": "owod-bind-authors", "axes": {"filter[bind].softmax_threshold": [0.0, 0.9],
                                               "proposer[sam-grid].points_per_side": [4]}}
    with pytest.raises(ConfigError, match="no cell uses proposer 'sam-grid'"):  # looked up in its steps
        apply_scoped_axes(g, expand_cells(g), load_registry())
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: owod-bind-authors\nset: [filter.score-threshold.threshold=0.0]\n"
                    "axes:\n  filter[bind].softmax_threshold: [0.0, 0.9]\n")
    out = tmp_path / "out"
    assert ablate(capsys, str(grid), "--root", str(s4), "--subset", "s4", "--split", "test", "--out", str(out),
                  "--tiny", "--limit", "1", "--cache-dir", str(tmp_path / "cache")) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["filter[bind].softmax_threshold"] for r in rows] == ["0.0", "0.9"]
    assert all(r["failed"] == "0" for r in rows)
    for r in rows:
        cfg = json.loads((out / "cells" / r["cell"] / "config.json").read_text())["pipeline"]
        [bind] = [x["filter"] for x in cfg["steps"] if x.get("filter", {}).get("type") == "bind"]
        assert bind["softmax_threshold"] == float(r["filter[bind].softmax_threshold"])
